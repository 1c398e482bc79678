"""The report's figures, rendered to deterministic PNG bytes.

    density_figure               real density, generated density and D(x) of representative runs (post 003)
    curves_figure                the diagnostics loss/G, loss/real, loss/fake, norms/G, norms/D (post 004)
    metric_distributions_figure  one metric over seeds, per variant and framework (box + strip plot)
    framework_scatter_figure     per-seed metrics, TensorFlow against PyTorch

Every figure function returns a :class:`matplotlib.figure.Figure` built without pyplot (no global
backend, no figure manager: the caller's matplotlib state is untouched) and with a fixed size;
:func:`save_png` renders it and writes the file atomically.

Byte-for-byte reproducibility. The same figure gives the same PNG bytes in any process when:
- every rcParam that drawing reads is fixed: figures are built and rendered inside
  :func:`figure_style` (matplotlib's default style plus :data:`RC`), so a user's matplotlibrc or
  style does not leak in; the font is DejaVu Sans, shipped with matplotlib;
- the PNG carries no varying metadata (matplotlib writes "Software: matplotlib version ..." by
  default; it is removed) and the dpi is fixed (:data:`DPI`);
- every order is explicit: variants in the order given (or of first appearance), frameworks
  torch, tf, then others by name, seeds ascending; no randomness (strip-plot offsets are spaced
  by seed rank, not jittered).
The bytes still depend on the matplotlib, Pillow and zlib versions (rasterisation, compression).

Framework-free: nothing here imports torch or tensorflow.
"""
from __future__ import annotations

import contextlib
import io
import math
import sys
import warnings
from pathlib import Path

import matplotlib
import numpy as np
from matplotlib import style
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.ticker import FormatStrFormatter, LogLocator, NullFormatter
from matplotlib.transforms import blended_transform_factory

from ..files import write_bytes_atomic
from ..impls.interface import CURVES
from ..labels import FRAMEWORK_LABELS, METRIC_LABELS, framework_label  # noqa: F401 (FRAMEWORK_LABELS: interface)
from ..metrics import MU, SIGMA, target_pdf
from .runs import LOWER_IS_BETTER, METRIC_NAMES, StoredRun

DPI = 100
"""Resolution of every PNG (pixels per inch); figure sizes are in inches."""

RC = {
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "mathtext.fontset": "dejavusans",
    "text.usetex": False,
    "font.size": 9.0,
    "axes.titlesize": 9.0,
    "axes.labelsize": 9.0,
    "xtick.labelsize": 8.0,
    "ytick.labelsize": 8.0,
    "legend.fontsize": 8.0,
    "figure.titlesize": 11.0,
    "figure.dpi": DPI,
    "savefig.dpi": DPI,
    "savefig.bbox": "standard",
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    "figure.facecolor": "white",
    "axes.grid": False,
    "path.simplify": True,
    "agg.path.chunksize": 0,
}
"""rcParams fixed on top of matplotlib's default style while figures are built and rendered."""

FRAMEWORK_ORDER = ("torch", "tf")
FRAMEWORK_COLORS = {"torch": "#1f77b4", "tf": "#ff7f0e"}
FRAMEWORK_LINESTYLES = {"torch": "-", "tf": "--"}
_EXTRA_COLORS = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")

REAL_COLOR = "black"
GENERATED_COLOR = "#2ca02c"
BOUNDARY_COLOR = "#d62728"

DIAGNOSTICS = ("loss/G", "loss/real", "loss/fake", "norms/G", "norms/D")
"""The curves of post 004's training diagnostics that :func:`curves_figure` draws (a subset of CURVES)."""

DIAGNOSTIC_LABELS = {
    "loss/G": "loss/G = mean -log D(G(z))",
    "loss/real": "loss/real = mean -log D(x)",
    "loss/fake": "loss/fake = mean -log(1 - D(G(z)))",
    "norms/G": "norms/G = ||dL_G / d theta_G||",
    "norms/D": "norms/D = ||dL_G / d G(z)||",
}

LOG_SCALE_METRICS = ("ks", "w1")
"""Metrics drawn on a log axis when all their finite values are positive (they span decades)."""

REPRESENTATIVES = ("best", "median", "worst")

X_CLIP = (MU - 28.0 * SIGMA, MU + 28.0 * SIGMA)
"""The density figures' x range never extends beyond this (-10 .. 18): far outliers are counted, not drawn."""

HIST_BINS = 120
Y_CAP = 3.0
"""The density axis stops at Y_CAP x the target's peak; a taller (collapsed) generated peak is labelled."""

DENSITY_COLUMNS = 3
"""Panels per row of :func:`density_figure` (best, median, worst of one framework per row)."""

TARGET_PEAK = 1.0 / (SIGMA * math.sqrt(2.0 * math.pi))


# ---- style, rendering and files --------------------------------------------------------------
@contextlib.contextmanager
def figure_style():
    """matplotlib's default style plus :data:`RC`, for building and rendering a figure (restored after)."""
    with style.context("default"), matplotlib.rc_context(RC):
        yield


def png_bytes(fig: Figure) -> bytes:
    """The PNG bytes of ``fig`` at :data:`DPI`, without the "Software" metadata; the figure stays open."""
    buf = io.BytesIO()
    with figure_style():
        fig.savefig(buf, format="png", dpi=DPI, metadata={"Software": None}, facecolor="white")
    return buf.getvalue()


def close_figure(fig: Figure) -> None:
    """Release ``fig``: closes it in pyplot if pyplot made it (our figures never enter pyplot)."""
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None and pyplot.fignum_exists(getattr(getattr(fig.canvas, "manager", None), "num", -1)):
        pyplot.close(fig)
    fig.clear()


def save_png(fig: Figure, path) -> Path:
    """Render ``fig`` to deterministic PNG bytes (see the module docstring), write them atomically
    to ``path`` and close the figure. Returns the path."""
    data = png_bytes(fig)
    close_figure(fig)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(path, data)
    return path


# ---- small helpers ---------------------------------------------------------------------------
def framework_order(frameworks) -> list[str]:
    """torch, tf (those present), then any other framework by name."""
    present = set(frameworks)
    return [f for f in FRAMEWORK_ORDER if f in present] + sorted(present - set(FRAMEWORK_ORDER))


def framework_color(framework: str) -> str:
    if framework in FRAMEWORK_COLORS:
        return FRAMEWORK_COLORS[framework]
    return _EXTRA_COLORS[sum(map(ord, framework)) % len(_EXTRA_COLORS)]


def _fmt(value, digits: int = 4) -> str:
    value = float(value)
    return f"{value:.{digits}f}" if math.isfinite(value) else "nan"


def _check_metric(metric: str) -> None:
    if metric not in LOWER_IS_BETTER:
        raise ValueError(f"unknown metric {metric!r}; allowed: {', '.join(METRIC_NAMES)}")


def _finite(values) -> np.ndarray:
    a = np.asarray(values, dtype=np.float64).reshape(-1)
    return a[np.isfinite(a)]


def _use_log_scale(metric: str, values) -> bool:
    finite = _finite(values)
    return metric in LOG_SCALE_METRICS and finite.size > 0 and bool(np.all(finite > 0))


def _log_axis(ax, which: str) -> None:
    """A log scale on ``ax``'s "x" or "y" axis, labelled plainly at 1, 2 and 5 x 10^k (no crowded minor labels)."""
    getattr(ax, f"set_{which}scale")("log")
    axis = getattr(ax, f"{which}axis")
    axis.set_major_locator(LogLocator(base=10.0, subs=(1.0, 2.0, 5.0)))
    axis.set_major_formatter(FormatStrFormatter("%g"))
    axis.set_minor_formatter(NullFormatter())


# ---- representative runs ---------------------------------------------------------------------
def rank_runs(runs, metric: str = "ks") -> list[StoredRun]:
    """``runs`` from best to worst by ``metric``.

    Lower is better for ks and w1, higher for kde_ll. A run whose metric is not finite (a
    diverged run: NaN) ranks below every finite one. Ties, NaNs among themselves included, are
    broken by seed (the lower seed ranks better), then by framework name.
    """
    _check_metric(metric)
    sign = 1.0 if LOWER_IS_BETTER[metric] else -1.0

    def key(run: StoredRun):
        value = float(run.metrics.get(metric, math.nan))
        finite = math.isfinite(value)
        return (not finite, sign * value if finite else 0.0, int(run.seed), str(run.framework))

    return sorted(runs, key=key)


def representative_runs(runs, metric: str = "ks") -> dict:
    """{"best", "median", "worst"} -> StoredRun by ``metric``, ranked by :func:`rank_runs`.

    best is the first of the ranking, worst the last, median the lower median (index
    (n - 1) // 2; with 8 seeds the 4th best). Non-finite runs count as worst. With fewer than
    three runs labels share a run. Raises ValueError for no runs or an unknown metric.
    """
    ranked = rank_runs(runs, metric)
    if not ranked:
        raise ValueError("no runs to choose representatives from")
    return {"best": ranked[0], "median": ranked[(len(ranked) - 1) // 2], "worst": ranked[-1]}


# ---- densities -------------------------------------------------------------------------------
def density_range(sample_arrays) -> tuple[float, float]:
    """The x range of a density plot: the target's mu +- 4 sigma, widened to the 0.5-99.5 %
    quantiles of each array's finite samples, clipped to :data:`X_CLIP`, rounded outwards to
    multiples of 0.5 and padded by 0.5."""
    lo, hi = MU - 4.0 * SIGMA, MU + 4.0 * SIGMA
    for samples in sample_arrays:
        finite = _finite(samples)
        if finite.size:
            q_lo, q_hi = np.quantile(finite, [0.005, 0.995])
            lo, hi = min(lo, float(q_lo)), max(hi, float(q_hi))
    lo, hi = max(lo, X_CLIP[0]), min(hi, X_CLIP[1])
    return math.floor(lo * 2.0) / 2.0 - 0.5, math.ceil(hi * 2.0) / 2.0 + 0.5


def density_histogram(samples, lo: float, hi: float, bins: int = HIST_BINS):
    """(heights, edges, n_finite, fraction outside [lo, hi]) of the finite samples.

    Heights are a density over all finite samples (the area inside the range is the fraction of
    samples in it), so mass outside the plotted range is not redistributed. No finite samples:
    all-zero heights and n_finite 0.
    """
    finite = _finite(samples)
    edges = np.linspace(lo, hi, bins + 1)
    if finite.size == 0:
        return np.zeros(bins), edges, 0, 0.0
    counts, _ = np.histogram(finite, bins=edges)
    heights = counts / (finite.size * (edges[1] - edges[0]))
    outside = 1.0 - counts.sum() / finite.size
    return heights, edges, int(finite.size), float(outside)


def density_ylim(peaks) -> float:
    """The top of a density axis: room for the target's and the generated peaks, at most Y_CAP x the target's."""
    top = max([TARGET_PEAK * 1.15] + [1.05 * float(p) for p in peaks if math.isfinite(p)])
    return min(top, Y_CAP * TARGET_PEAK)


def draw_target(ax, lo: float, hi: float) -> Line2D:
    """The real data density N(MU, SIGMA) on [lo, hi]."""
    x = np.linspace(lo, hi, 600)
    (line,) = ax.plot(x, target_pdf(x, mu=MU, sigma=SIGMA), color=REAL_COLOR, lw=1.4,
                      label=f"real data N({MU:g}, {SIGMA:g})")
    return line


def boundary_axis(ax):
    """A twin y axis on [0, 1] for D(x), with a dotted line at 1/2."""
    ax2 = ax.twinx()
    ax2.set_ylim(-0.02, 1.02)
    ax2.set_ylabel("D(x)", color=BOUNDARY_COLOR)
    ax2.tick_params(axis="y", colors=BOUNDARY_COLOR)
    ax2.axhline(0.5, color=BOUNDARY_COLOR, lw=0.6, ls=":", alpha=0.7)
    return ax2


def _density_panel(ax, label: str, run: StoredRun, data: dict, hist, lo: float, hi: float, ytop: float) -> list:
    """One representative run: target pdf, generated histogram and D(x); returns the legend handles."""
    heights, edges, n_finite, outside = hist
    target = draw_target(ax, lo, hi)
    generated = ax.stairs(heights, edges, fill=True, color=GENERATED_COLOR, alpha=0.45, lw=0,
                          label="generated: G(z), z ~ U(-8, 8)")
    ax2 = boundary_axis(ax)
    bx, by = np.asarray(data["boundary_x"], float), np.asarray(data["boundary"], float)
    (boundary,) = ax2.plot(bx, np.where(np.isfinite(by), by, np.nan), color=BOUNDARY_COLOR, lw=1.1,
                           label="D(x): decision boundary")
    ax.set_xlim(lo, hi)
    ax.set_ylim(0.0, ytop)
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    notes = density_notes(heights, n_finite, outside, ytop, np.isfinite(by).any())
    if notes:
        ax.text(0.02, 0.97, "\n".join(notes), transform=ax.transAxes, va="top", ha="left", fontsize=7,
                bbox={"boxstyle": "round,pad=0.25", "fc": "white", "ec": "0.7", "alpha": 0.9})
    m = run.metrics
    ax.set_title(f"{label}: seed {run.seed}, {run.framework} ({run.status})\n"
                 f"KS {_fmt(m.get('ks'))}  W1 {_fmt(m.get('w1'))}  KDE LL {_fmt(m.get('kde_ll'))}")
    return [target, generated, boundary]


def density_notes(heights, n_finite: int, outside: float, ytop: float, boundary_finite: bool) -> list[str]:
    """What the panel cannot show: no finite samples, mass outside the range, a clipped peak, no D."""
    notes = []
    if n_finite == 0:
        notes.append("diverged: no finite samples")
    else:
        if outside > 0.0:
            notes.append(f"{100.0 * outside:.1f}% of samples outside the plot")
        peak = float(np.max(heights))
        if peak > ytop:
            notes.append(f"generated peak {peak:.3g} (clipped)")
    if not boundary_finite:
        notes.append("D(x) not finite")
    return notes


def density_figure(runs_by_label: dict, title: str) -> Figure:
    """One panel per representative run (in the dict's order, DENSITY_COLUMNS per row: e.g. best,
    median, worst of PyTorch, then of TensorFlow), as in post 003:
    the real density N(4, 0.5) (black), the generated density (green histogram of G on the 10,000
    U(-8, 8) draws that were scored) and D's decision boundary D(x) on a [0, 1] twin axis (red);
    the panel title names the run's seed, framework, status and metrics. All panels share one x
    range (:func:`density_range`) and one density scale (capped at Y_CAP x the target's peak; a
    taller collapsed peak is labelled). Diverged runs (no finite samples) say so in the panel.
    """
    if not runs_by_label:
        raise ValueError("density_figure needs at least one run")
    with figure_style():
        labels = list(runs_by_label)
        data = {label: runs_by_label[label].samples() for label in labels}
        lo, hi = density_range([data[label]["samples_uniform"] for label in labels])
        hists = {label: density_histogram(data[label]["samples_uniform"], lo, hi) for label in labels}
        ytop = density_ylim([np.max(h[0]) for h in hists.values()])
        ncols = min(len(labels), DENSITY_COLUMNS)
        nrows = -(-len(labels) // ncols)
        fig = Figure(figsize=(4.3 * ncols, 0.6 + 3.4 * nrows), layout="constrained")
        axes = fig.subplots(nrows, ncols, squeeze=False).reshape(-1)
        handles = []
        for ax, label in zip(axes, labels, strict=False):  # a partial last row has spare panels
            handles = _density_panel(ax, label, runs_by_label[label], data[label], hists[label], lo, hi, ytop)
        for ax in axes[len(labels):]:
            ax.set_visible(False)
        fig.suptitle(title)
        fig.legend(handles, [h.get_label() for h in handles], loc="outside lower center", ncols=3, frameon=False)
    return fig


# ---- training curves -------------------------------------------------------------------------
def stack_curves(runs) -> tuple[np.ndarray, dict]:
    """(steps, {name: (n_runs, L) values}) of ``runs`` on the steps every run recorded."""
    loaded = [run.curves() for run in runs]
    steps = loaded[0][0]
    for other, _ in loaded[1:]:
        steps = np.intersect1d(steps, other)
    stacked = {}
    for name in CURVES:
        rows = [values[name][np.isin(s, steps)] for s, values in loaded if name in values]
        if len(rows) == len(loaded):
            stacked[name] = np.stack(rows)
    return steps, stacked


def quartiles(values: np.ndarray) -> np.ndarray:
    """(3, L): the 25th, 50th and 75th percentile over runs (axis 0), ignoring NaN; +-inf kept for
    ranking, then shown as gaps (NaN); NaN where no run has a value."""
    with warnings.catch_warnings(), np.errstate(invalid="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)
        q = np.nanpercentile(values, [25.0, 50.0, 75.0], axis=0)
    return np.where(np.isfinite(q), q, np.nan)


def _curve_panel(ax, name: str, series: dict) -> None:
    """One diagnostic: per framework, the median over seeds and the interquartile band."""
    plotted = []
    for framework, (steps, q) in series.items():
        color = framework_color(framework)
        ok = np.isfinite(q[0]) & np.isfinite(q[2])
        ax.fill_between(steps, np.nan_to_num(q[0]), np.nan_to_num(q[2]), where=ok, color=color, alpha=0.22,
                        lw=0, interpolate=False)
        ax.plot(steps, q[1], color=color, lw=1.2, ls=FRAMEWORK_LINESTYLES.get(framework, "-"))
        plotted.append(q[:, np.isfinite(q).all(axis=0)])
    values = np.concatenate([p.reshape(-1) for p in plotted]) if plotted else np.zeros(0)
    if name.startswith("norms/") and values.size and np.all(values > 0):
        _log_axis(ax, "y")
    ax.set_title(DIAGNOSTIC_LABELS.get(name, name))
    ax.set_xlabel("step")
    ax.grid(True, lw=0.4, alpha=0.5)


def curves_figure(runs_by_framework: dict, title: str) -> Figure:
    """Post 004's diagnostics against the training step, one panel each: loss/G, loss/real,
    loss/fake, norms/G, norms/D. Per framework (PyTorch blue, TensorFlow orange) the median over
    its seeds (line; TensorFlow dashed, so that agreeing frameworks stay visible) and the 25-75 %
    band; NaN values are ignored, infinite ones ranked (a quartile that is infinite leaves a gap).
    Norm panels use a log axis when every drawn value is positive. The sixth panel is the legend.
    """
    frameworks = [f for f in framework_order(runs_by_framework) if runs_by_framework[f]]
    if not frameworks:
        raise ValueError("curves_figure needs at least one run")
    with figure_style():
        curves = {f: stack_curves(sorted(runs_by_framework[f], key=lambda r: r.seed)) for f in frameworks}
        fig = Figure(figsize=(12.0, 6.6), layout="constrained")
        axes = fig.subplots(2, 3).reshape(-1)
        for ax, name in zip(axes, DIAGNOSTICS, strict=False):  # the sixth panel is the legend
            series = {f: (curves[f][0], quartiles(curves[f][1][name])) for f in frameworks if name in curves[f][1]}
            _curve_panel(ax, name, series)
        _curves_legend(axes[-1], frameworks, curves, runs_by_framework)
        fig.suptitle(title)
    return fig


def _curves_legend(ax, frameworks, curves, runs_by_framework) -> None:
    """The last panel: one entry per framework (seeds, and how many have non-finite values)."""
    handles: list[Artist] = []
    for f in frameworks:
        n = len(runs_by_framework[f])
        bad = sum(1 for i in range(n) if not all(np.isfinite(v[i]).all() for v in curves[f][1].values()))
        text = f"{framework_label(f)}: median of {n} seed(s)" + (f", {bad} with non-finite values" if bad else "")
        handles.append(Line2D([], [], color=framework_color(f), lw=1.5, ls=FRAMEWORK_LINESTYLES.get(f, "-"),
                              label=text))
    handles.append(Patch(color="0.5", alpha=0.3, label="25-75 % of seeds"))
    ax.axis("off")
    ax.legend(handles=handles, loc="center", frameon=False)


# ---- metric distributions --------------------------------------------------------------------
def _ordered(values) -> list:
    """Distinct values in order of first appearance."""
    return list(dict.fromkeys(values))


def _group_rows(df, variant: str, framework: str):
    rows = df[(df["variant"] == variant) & (df["framework"] == framework)]
    return rows.sort_values("seed", kind="stable")


def _strip_offsets(n: int, width: float) -> np.ndarray:
    """Evenly spaced offsets across a box's height, by seed rank (deterministic, no jitter)."""
    return np.zeros(n) if n < 2 else np.linspace(-width / 2.0, width / 2.0, n)


def _distribution_group(ax, y: float, rows, metric: str, color: str, height: float) -> int:
    """Box and points of one (variant, framework) at height y; returns how many runs have a non-finite metric."""
    values = rows[metric].to_numpy(dtype=np.float64)
    collapsed = rows["status"].astype(str).to_numpy() == "collapsed"
    finite = np.isfinite(values)
    if finite.any():
        ax.boxplot([values[finite]], positions=[y], orientation="horizontal", widths=height, showfliers=False,
                   patch_artist=True, manage_ticks=False,
                   boxprops={"facecolor": color, "alpha": 0.25, "edgecolor": color},
                   medianprops={"color": color, "lw": 1.6}, whiskerprops={"color": color},
                   capprops={"color": color})
        offsets = _strip_offsets(len(values), 0.7 * height)
        for sel, marker, face in ((finite & ~collapsed, "o", color), (finite & collapsed, "v", "none")):
            if sel.any():
                ax.scatter(values[sel], y + offsets[sel], s=14, marker=marker, zorder=3, facecolors=face,
                           edgecolors=color, linewidths=0.8)
    return int((~finite).sum())


def metric_distributions_figure(df, metric: str, floor: float | None = None, title: str | None = None,
                                order=None) -> Figure:
    """``metric`` over seeds, one row per variant (top to bottom in ``order``, else in order of first
    appearance in ``df``), one horizontal box per framework side by side (PyTorch above
    TensorFlow): box = quartiles, whiskers to 1.5 IQR, every seed a point (filled: ok, open
    triangle: collapsed). Runs whose metric is not finite (diverged) cannot be placed: their count
    is written at the row's right end. ``floor`` (the perfect generator's value) is a dashed line.
    ks and w1 use a log axis when all values are positive. The height grows with the variants.
    """
    _check_metric(metric)
    missing = {"variant", "framework", "seed", "status", metric} - set(df.columns)
    if missing:
        raise ValueError(f"metric_distributions_figure: missing column(s) {sorted(missing)}")
    variants = list(order) if order is not None else _ordered(df["variant"])
    frameworks = framework_order(df["framework"].unique())
    with figure_style():
        fig = Figure(figsize=(8.5, 2.0 + 0.42 * max(len(variants), 3) * max(len(frameworks), 2) / 2.0),
                     layout="constrained")
        ax = fig.subplots()
        slot = 0.8 / max(len(frameworks), 1)
        right = blended_transform_factory(ax.transAxes, ax.transData)
        for i, variant in enumerate(variants):
            for j, framework in enumerate(frameworks):
                y = i - 0.4 + slot * (j + 0.5)
                color = framework_color(framework)
                bad = _distribution_group(ax, y, _group_rows(df, variant, framework), metric, color, 0.8 * slot)
                if bad:
                    ax.text(1.01, y, f"{bad} diverged", transform=right, color=color, fontsize=7, va="center",
                            ha="left", clip_on=False)
        _distribution_axes(ax, df, metric, variants, floor)
        _distribution_legend(fig, frameworks, floor)
        fig.suptitle(title or f"{METRIC_LABELS[metric]}: distribution over seeds, per variant")
    return fig


def _distribution_axes(ax, df, metric: str, variants, floor) -> None:
    """Variant tick labels top to bottom, metric axis (log for ks/w1 when positive), floor line."""
    ax.set_yticks(range(len(variants)), variants)
    ax.set_ylim(len(variants) - 0.5, -0.5)
    values = np.append(df[metric].to_numpy(dtype=np.float64), [] if floor is None else [floor])
    if _use_log_scale(metric, values):
        _log_axis(ax, "x")
    if floor is not None and math.isfinite(floor):
        ax.axvline(floor, color="0.35", ls="--", lw=1.0, zorder=1)
    ax.set_xlabel(METRIC_LABELS[metric])
    ax.grid(True, axis="x", lw=0.4, alpha=0.5)
    for y in np.arange(0.5, len(variants) - 0.5):
        ax.axhline(y, color="0.85", lw=0.5, zorder=0)


def _distribution_legend(fig, frameworks, floor) -> None:
    handles: list[Artist] = [Patch(facecolor=framework_color(f), alpha=0.4, edgecolor=framework_color(f),
                                   label=framework_label(f)) for f in frameworks]
    handles.append(Line2D([], [], ls="none", marker="o", color="0.3", markersize=4, label="seed (ok)"))
    handles.append(Line2D([], [], ls="none", marker="v", markerfacecolor="none", color="0.3", markersize=4,
                          label="seed (collapsed)"))
    if floor is not None and math.isfinite(floor):
        handles.append(Line2D([], [], color="0.35", ls="--", lw=1.0, label=f"perfect generator ({floor:.4g})"))
    fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)


# ---- TensorFlow against PyTorch --------------------------------------------------------------
AGREE_RTOL = 1e-3
"""A pair "agrees" when |tf - torch| <= AGREE_RTOL x max(|tf|, |torch|) (counted in the panel titles)."""


def _variant_colors(variants) -> dict:
    from matplotlib import colormaps

    tab20 = colormaps["tab20"].colors  # type: ignore[attr-defined]  # tab20 is a ListedColormap
    palette = tab20[0::2] + tab20[1::2]  # the ten strong colours first, then their light partners
    return {v: palette[i % len(palette)] for i, v in enumerate(variants)}


def _scatter_panel(ax, paired, metric: str, colors: dict) -> None:
    """TF (y) against PyTorch (x) for one metric, coloured by variant, with the line y = x."""
    x_all = paired[f"{metric}_torch"].to_numpy(dtype=np.float64)
    y_all = paired[f"{metric}_tf"].to_numpy(dtype=np.float64)
    both = np.isfinite(x_all) & np.isfinite(y_all)
    variants = paired["variant"].astype(str).to_numpy()
    for variant, color in colors.items():
        sel = both & (variants == variant)
        if sel.any():
            ax.scatter(x_all[sel], y_all[sel], s=16, color=color, alpha=0.85, linewidths=0, zorder=3)
    values = np.concatenate([x_all[both], y_all[both]])
    if _use_log_scale(metric, values):
        _log_axis(ax, "x")
        _log_axis(ax, "y")
    lim = _square_limits(values, ax.get_xscale() == "log")
    ax.plot(lim, lim, color="0.4", ls="--", lw=0.8, zorder=2)
    ax.set_xlim(lim)
    ax.set_ylim(lim)
    ax.set_aspect("equal", adjustable="box")
    agree = np.abs(y_all[both] - x_all[both]) <= AGREE_RTOL * np.maximum(np.abs(x_all[both]), np.abs(y_all[both]))
    one_side = int((np.isfinite(x_all) != np.isfinite(y_all)).sum())
    note = f"\n{one_side} with one side non-finite (not drawn)" if one_side else ""
    ax.set_title(f"{METRIC_LABELS[metric]}\n{int(both.sum())} pairs, {int(agree.sum())} agree "
                 f"within {AGREE_RTOL:g} (relative){note}")
    ax.set_xlabel(f"{metric}, PyTorch")
    ax.set_ylabel(f"{metric}, TensorFlow")
    ax.grid(True, lw=0.4, alpha=0.5)


def _square_limits(values: np.ndarray, log: bool) -> tuple[float, float]:
    """Common limits for both axes: the values' range padded by 5 % (of the decades on a log axis)."""
    if values.size == 0:
        return (0.0, 1.0)
    lo, hi = float(values.min()), float(values.max())
    if log:
        a, b = math.log10(lo), math.log10(hi)
        pad = 0.05 * max(b - a, 0.2)
        return 10.0 ** (a - pad), 10.0 ** (b + pad)
    pad = 0.05 * max(hi - lo, 1e-3 * max(abs(lo), abs(hi), 1.0))
    return lo - pad, hi + pad


def framework_scatter_figure(paired, metrics=METRIC_NAMES, title: str | None = None) -> Figure:
    """One panel per metric: each (variant, seed) pair as a point, its TensorFlow value (y) against
    its PyTorch value (x), coloured by variant (legend on the right, in order of first appearance),
    with the line y = x; equal axes, log axes for ks/w1 when positive. Each panel title counts the
    pairs, those agreeing within :data:`AGREE_RTOL`, and pairs where only one side is finite.
    ``paired`` has columns variant, seed, and ``<metric>_torch``, ``<metric>_tf`` for each metric.
    """
    metrics = tuple(metrics)
    for metric in metrics:
        _check_metric(metric)
    missing = {"variant", "seed"} | {f"{m}_{f}" for m in metrics for f in ("torch", "tf")}
    missing -= set(paired.columns)
    if missing:
        raise ValueError(f"framework_scatter_figure: missing column(s) {sorted(missing)}")
    variants = _ordered(paired["variant"].astype(str))
    colors = _variant_colors(variants)
    with figure_style():
        fig = Figure(figsize=(4.3 * len(metrics) + 2.6, 4.8), layout="constrained")
        axes = fig.subplots(1, len(metrics), squeeze=False)[0]
        for ax, metric in zip(axes, metrics, strict=True):
            _scatter_panel(ax, paired, metric, colors)
        handles = [Line2D([], [], ls="none", marker="o", markersize=5, color=colors[v], label=v) for v in variants]
        fig.legend(handles=handles, loc="outside right upper", frameon=False, fontsize=7, title="variant")
        fig.suptitle(title or "Per-seed metrics: TensorFlow against PyTorch (same seed, same experiment)")
    return fig
