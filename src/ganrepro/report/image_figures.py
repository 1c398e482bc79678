"""The image track's figures (post 004), rendered to deterministic PNG bytes like ``figures``'.

    image_curves_figure        the five diagnostics of post 004 (loss/G, loss/real, loss/fake, norms/G,
                               norms/D) against the images trained on: median and IQR band over seeds
    frozen_curves_figure       the same for D against a frozen G, beside its trained counterpart
    latent_grid_figure         G's images of the fixed latent grid at four checkpoints (15 x 15 mosaics)
    samples_figure             the first 64 stored samples of a run, as an 8 x 8 mosaic
    strip_figure               one score over seeds, per variant and framework (box + one point a seed)
    sigmoid_gradient_figure    post 004's plot of the two G losses' derivatives in D's logit, computed

Every figure is built without pyplot inside ``figures.figure_style`` (fixed rcParams, DejaVu Sans)
and rendered by ``figures.save_png`` (no metadata, fixed dpi), so the same inputs give the same
bytes; orders are explicit (variants as given, frameworks torch then tf, seeds ascending) and
nothing is random. Framework-free.

Images are the stored bytes (uint8, 0 = black, 255 = white, ``round(255 p)`` of G's sigmoid output),
drawn in grey levels with nearest-neighbour sampling.
"""
from __future__ import annotations

import math

import numpy as np
from matplotlib.artist import Artist
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch
from matplotlib.transforms import blended_transform_factory

from ..labels import framework_label
from . import figures
from .figures import FRAMEWORK_LINESTYLES, figure_style, framework_color, framework_order, quartiles, stack_curves
from .image_tables import CLAIMED_LOSS_AT_VANISH, IMAGE_METRIC_TITLES, lower_is_better

DIAGNOSTICS = ("loss/G", "loss/real", "loss/fake", "norms/G", "norms/D")
"""Post 004's five curves, one panel each."""

LOSS_G_LABELS = {
    "non_saturating": "loss/G = mean -log sigmoid(l_f) (non-saturating)",
    "saturating": "loss/G = mean log(1 - sigmoid(l_f)) (saturating)",
}
IMAGE_DIAGNOSTIC_LABELS = {
    "loss/real": "loss/real = mean softplus(-l_r)",
    "loss/fake": "loss/fake = mean softplus(l_f)",
    "norms/G": "norms/G = ||d loss/G / d theta_G||",
    "norms/D": "norms/D = ||d loss/G / d G(z')||",
}

FROZEN_COLOR = "#d62728"
TRAINED_COLOR = "#2ca02c"
CHECKPOINTS_SHOWN = 4
MOSAIC_FILL = 128
"""Grey level of the one-pixel gaps between the tiles of a mosaic."""
SAMPLES_SHOWN = 64
FD_STEP = 1e-5
"""Step h of the central differences of :func:`sigmoid_gradients`."""


# ---- the sigmoid-gradient plot ----------------------------------------------------------------
def softplus(x) -> np.ndarray:
    """softplus(x) = log(1 + e^x) = max(x, 0) + log1p(exp(-|x|)): exact, no overflow."""
    x = np.asarray(x, dtype=np.float64)
    return np.maximum(x, 0.0) + np.log1p(np.exp(-np.abs(x)))


def sigmoid(x) -> np.ndarray:
    """sigmoid(x) = 1 / (1 + e^-x), written as e^(min(x, 0)) / (1 + e^-|x|) (no overflow)."""
    x = np.asarray(x, dtype=np.float64)
    return np.exp(np.minimum(x, 0.0)) / (1.0 + np.exp(-np.abs(x)))


def sigmoid_gradients(x, h: float = FD_STEP) -> dict[str, np.ndarray]:
    """The derivatives in D's logit x of post 004's two G losses, by central finite differences
    f'(x) ~ (f(x + h) - f(x - h)) / 2h of the losses written with the exact softplus,

        saturating      f(x) = log(1 - sigmoid(x)) = -softplus(x)
        non_saturating  f(x) = -log sigmoid(x)     = softplus(-x),

    beside their closed forms d/dx log(1 - sigmoid(x)) = -sigmoid(x) and
    d/dx -log sigmoid(x) = sigmoid(x) - 1 (keys ``closed_saturating``, ``closed_non_saturating``).
    The error of a central difference is h^2 f'''/6 plus the rounding of f over 2h: under 1e-9 for
    |x| <= 10 at h = 1e-5.
    """
    x = np.asarray(x, dtype=np.float64)

    def central(f):
        return (f(x + h) - f(x - h)) / (2.0 * h)

    return {"fd_saturating": central(lambda v: -softplus(v)), "fd_non_saturating": central(lambda v: softplus(-v)),
            "closed_saturating": -sigmoid(x), "closed_non_saturating": sigmoid(x) - 1.0}


def sigmoid_gradient_figure(lo: float = -10.0, hi: float = 10.0, points: int = 2001) -> Figure:
    """Post 004's plot: d/dx log(1 - sigmoid(x)) (saturating G loss) and d/dx -log sigmoid(x)
    (non-saturating) for x (D's logit on a generated image) in [lo, hi], computed by
    :func:`sigmoid_gradients` (solid) with the closed forms overlaid (dashed)."""
    x = np.linspace(lo, hi, points)
    g = sigmoid_gradients(x)
    with figure_style():
        fig = Figure(figsize=(7.5, 4.8), layout="constrained")
        ax = fig.subplots()
        ax.plot(x, g["fd_saturating"], color="#1f77b4", lw=2.2, label="d/dx log(1 - sigmoid(x)), finite differences")
        ax.plot(x, g["closed_saturating"], color="black", lw=1.0, ls="--", label="-sigmoid(x), closed form")
        ax.plot(x, g["fd_non_saturating"], color="#ff7f0e", lw=2.2,
                label="d/dx -log sigmoid(x), finite differences")
        ax.plot(x, g["closed_non_saturating"], color="0.35", lw=1.0, ls="--", label="sigmoid(x) - 1, closed form")
        ax.axhline(0.0, color="0.6", lw=0.6)
        ax.axvline(0.0, color="0.6", lw=0.6)
        ax.set_xlim(lo, hi)
        ax.set_ylim(-1.1, 0.1)
        ax.set_xlabel("x = D's logit on a generated image (x -> -inf: D rejects it)")
        ax.set_ylabel("derivative of the G loss in x")
        ax.grid(True, lw=0.4, alpha=0.5)
        ax.text(-9.7, -0.08, "saturating: -> 0 as x -> -inf", fontsize=8, color="#1f77b4",
                va="top", ha="left")
        ax.text(-9.7, -0.92, "non-saturating: -> -1 as x -> -inf", fontsize=8, color="#ff7f0e", va="bottom",
                ha="left")
        fig.legend(loc="outside lower center", ncols=2, frameon=False)
        fig.suptitle("Post 004's two G losses: derivative in D's logit (computed, closed forms dashed)")
    return fig


# ---- training curves --------------------------------------------------------------------------
def _band(ax, x, q, color: str, ls: str) -> None:
    """Median (line) and 25-75 % band of ``q`` (3, L) against ``x``; non-finite quartiles leave gaps."""
    ok = np.isfinite(q[0]) & np.isfinite(q[2])
    ax.fill_between(x, np.nan_to_num(q[0]), np.nan_to_num(q[2]), where=ok, color=color, alpha=0.22, lw=0)
    ax.plot(x, q[1], color=color, lw=1.2, ls=ls)


def _finish_panel(ax, name: str, drawn: list, title: str) -> None:
    values = np.concatenate([q[:, np.isfinite(q).all(axis=0)].reshape(-1) for q in drawn]) if drawn else np.zeros(0)
    if name.startswith("norms/") and values.size and np.all(values > 0):
        figures._log_axis(ax, "y")
    ax.set_title(title)
    ax.set_xlabel("images trained on")
    ax.grid(True, lw=0.4, alpha=0.5)


def _diagnostic_title(name: str, g_loss: str) -> str:
    return LOSS_G_LABELS.get(g_loss, "loss/G") if name == "loss/G" else IMAGE_DIAGNOSTIC_LABELS[name]


def _stacked(runs) -> tuple[np.ndarray, dict]:
    return stack_curves(sorted(runs, key=lambda r: r.seed))


def image_curves_figure(runs_by_framework: dict, batch_size: int, title: str,
                        g_loss: str = "non_saturating") -> Figure:
    """Post 004's diagnostics of one variant, one panel each, against the images trained on,
    (step + 1) x B: per framework (PyTorch blue solid, TensorFlow orange dashed) the median over
    its seeds and the 25-75 % band. Norm panels use a log axis when every drawn value is positive.
    The sixth panel is the legend (seeds per framework, and how many have non-finite values)."""
    frameworks = [f for f in framework_order(runs_by_framework) if runs_by_framework[f]]
    if not frameworks:
        raise ValueError("image_curves_figure needs at least one run")
    with figure_style():
        curves = {f: _stacked(runs_by_framework[f]) for f in frameworks}
        fig = Figure(figsize=(12.0, 6.6), layout="constrained")
        axes = fig.subplots(2, 3).reshape(-1)
        for ax, name in zip(axes, DIAGNOSTICS, strict=False):
            drawn = []
            for f in frameworks:
                steps, stacked = curves[f]
                if name in stacked:
                    q = quartiles(stacked[name])
                    _band(ax, (steps + 1) * batch_size, q, framework_color(f), FRAMEWORK_LINESTYLES.get(f, "-"))
                    drawn.append(q)
            _finish_panel(ax, name, drawn, _diagnostic_title(name, g_loss))
        figures._curves_legend(axes[-1], frameworks, curves, runs_by_framework)
        fig.suptitle(title)
    return fig


def frozen_curves_figure(frozen: dict, trained: dict, batch_size: int, title: str) -> Figure:
    """The diagnostics of D against a frozen G (red) beside the same config with G trained (green),
    per framework (PyTorch solid, TensorFlow dashed): median and 25-75 % band over seeds against the
    images trained on. The loss/G panel marks L^_G = 16, where post 004 saw norms/G vanish."""
    parts = [(kind, color, by_fw) for kind, color, by_fw in (("frozen G", FROZEN_COLOR, frozen),
                                                             ("trained G", TRAINED_COLOR, trained))
             if any(by_fw.values())]
    if not parts:
        raise ValueError("frozen_curves_figure needs at least one run")
    with figure_style():
        curves = {(kind, f): _stacked(by_fw[f]) for kind, _, by_fw in parts for f in framework_order(by_fw)
                  if by_fw[f]}
        fig = Figure(figsize=(12.0, 6.6), layout="constrained")
        axes = fig.subplots(2, 3).reshape(-1)
        for ax, name in zip(axes, DIAGNOSTICS, strict=False):
            drawn = []
            for kind, color, by_fw in parts:
                for f in framework_order(by_fw):
                    if (kind, f) in curves and name in curves[(kind, f)][1]:
                        steps, stacked = curves[(kind, f)]
                        q = quartiles(stacked[name])
                        _band(ax, (steps + 1) * batch_size, q, color, FRAMEWORK_LINESTYLES.get(f, "-"))
                        drawn.append(q)
            if name == "loss/G":
                ax.axhline(CLAIMED_LOSS_AT_VANISH, color="0.3", ls=":", lw=1.0)
            _finish_panel(ax, name, drawn, _diagnostic_title(name, "non_saturating"))
        handles: list[Artist] = []
        for kind, color, by_fw in parts:
            for f in framework_order(by_fw):
                if by_fw[f]:
                    handles.append(Line2D([], [], color=color, lw=1.5, ls=FRAMEWORK_LINESTYLES.get(f, "-"),
                                          label=f"{kind}, {framework_label(f)}: median of {len(by_fw[f])} seed(s)"))
        handles.append(Patch(color="0.5", alpha=0.3, label="25-75 % of seeds"))
        handles.append(Line2D([], [], color="0.3", ls=":", lw=1.0,
                              label=f"L^_G = {CLAIMED_LOSS_AT_VANISH:g} (where post 004 reports norms/G vanished)"))
        axes[-1].axis("off")
        axes[-1].legend(handles=handles, loc="center", frameon=False)
        fig.suptitle(title)
    return fig


# ---- image mosaics ----------------------------------------------------------------------------
def mosaic(images, cols: int, pad: int = 1, fill: int = MOSAIC_FILL) -> np.ndarray:
    """(N, H, W) uint8 images tiled row-major into ceil(N / cols) rows of ``cols`` tiles, with
    ``pad`` pixels of grey ``fill`` around and between tiles (empty tiles stay grey)."""
    images = np.asarray(images, dtype=np.uint8)
    n, h, w = images.shape
    rows = -(-n // cols)
    out = np.full((rows * (h + pad) + pad, cols * (w + pad) + pad), fill, dtype=np.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        top, left = pad + r * (h + pad), pad + c * (w + pad)
        out[top:top + h, left:left + w] = images[i]
    return out


def checkpoint_picks(n: int, k: int = CHECKPOINTS_SHOWN) -> list[int]:
    """k checkpoint indices spread over 0..n-1: round(linspace(0, n - 1, k)), distinct (all if n <= k)."""
    if n <= k:
        return list(range(n))
    return list(dict.fromkeys(int(i) for i in np.rint(np.linspace(0.0, n - 1.0, k))))


def _scale(pixels: int) -> float:
    """Inches per mosaic: an integer number of screen pixels per image pixel, about 270 px or more."""
    return max(1, round(270 / pixels)) * pixels / figures.DPI


def _show(ax, image: np.ndarray) -> None:
    ax.imshow(image, cmap="gray", vmin=0, vmax=255, interpolation="nearest")
    ax.set_xticks([])
    ax.set_yticks([])


def latent_grid_figure(rows: dict, batch_size: int, title: str, note: str = "") -> Figure:
    """G's images of the 225 fixed latent points at :data:`CHECKPOINTS_SHOWN` checkpoints spread over
    the run (first, two middle, last: :func:`checkpoint_picks`), one row per entry of ``rows``
    (label -> (checkpoints (n_ck, 225, H, W) uint8, checkpoint_steps (n_ck,))), each a 15 x 15
    mosaic in the grid's row-major order, titled with the step and the images trained on (step x B).
    """
    if not rows:
        raise ValueError("latent_grid_figure needs at least one run")
    labels = list(rows)
    n_ck = min(len(rows[label][1]) for label in labels)
    picks = checkpoint_picks(n_ck)
    h, w = np.asarray(rows[labels[0]][0]).shape[-2:]
    side = _scale(15 * (max(h, w) + 1) + 1)
    with figure_style():
        fig = Figure(figsize=(side * len(picks) + 0.6, side * len(labels) + 0.9 + (0.3 if note else 0.0)),
                     layout="constrained")
        axes = fig.subplots(len(labels), len(picks), squeeze=False)
        for r, label in enumerate(labels):
            checkpoints, steps = rows[label]
            for c, k in enumerate(picks):
                ax = axes[r][c]
                _show(ax, mosaic(np.asarray(checkpoints)[k], 15))
                step = int(np.asarray(steps)[k])
                ax.set_title(f"step {step:,} ({step * batch_size:,} images)")
                if c == 0:
                    ax.set_ylabel(label)
        fig.suptitle(title + (f"\n{note}" if note else ""))
    return fig


def samples_figure(panels: dict, title: str, count: int = SAMPLES_SHOWN) -> Figure:
    """The first ``count`` (64) stored samples of each run in ``panels`` (label -> (N, H, W) uint8),
    as a sqrt(count)-wide mosaic, one panel per run side by side."""
    if not panels:
        raise ValueError("samples_figure needs at least one run")
    labels = list(panels)
    cols = math.isqrt(count)
    first = np.asarray(panels[labels[0]])
    side = _scale(cols * (max(first.shape[-2:]) + 1) + 1)
    with figure_style():
        fig = Figure(figsize=(side * len(labels) + 0.4, side + 0.8), layout="constrained")
        axes = fig.subplots(1, len(labels), squeeze=False)[0]
        for ax, label in zip(axes, labels, strict=True):
            _show(ax, mosaic(np.asarray(panels[label])[:count], cols))
            ax.set_title(label)
        fig.suptitle(title)
    return fig


# ---- scores over seeds ------------------------------------------------------------------------
def strip_figure(df, metric: str, order=None, floor: float | None = None, title: str | None = None) -> Figure:
    """``metric`` over seeds, one row per variant (top to bottom in ``order``, else first
    appearance), one horizontal box per framework (PyTorch above TensorFlow): box = quartiles,
    whiskers to 1.5 IQR, every seed a point at an offset by seed rank (no jitter). Runs without a
    value (diverged) are counted at the row's right end; ``floor`` (the real images' value) is a
    dashed line."""
    missing = {"variant", "framework", "seed", "status", metric} - set(df.columns)
    if missing:
        raise ValueError(f"strip_figure: missing column(s) {sorted(missing)}")
    variants = list(order) if order is not None else list(dict.fromkeys(df["variant"]))
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
                rows = df[(df["variant"] == variant) & (df["framework"] == framework)].sort_values("seed",
                                                                                                   kind="stable")
                bad = figures._distribution_group(ax, y, rows, metric, color, 0.8 * slot)
                if bad:
                    ax.text(1.01, y, f"{bad} without a value", transform=right, color=color, fontsize=7,
                            va="center", ha="left", clip_on=False)
        ax.set_yticks(range(len(variants)), variants)
        ax.set_ylim(len(variants) - 0.5, -0.5)
        has_floor = floor is not None and math.isfinite(floor)
        if floor is not None and has_floor:
            ax.axvline(floor, color="0.35", ls="--", lw=1.0, zorder=1)
        label = IMAGE_METRIC_TITLES.get(metric, metric)
        ax.set_xlabel(label)
        ax.grid(True, axis="x", lw=0.4, alpha=0.5)
        for y in np.arange(0.5, len(variants) - 0.5):
            ax.axhline(y, color="0.85", lw=0.5, zorder=0)
        handles: list[Artist] = [Patch(facecolor=framework_color(f), alpha=0.4, edgecolor=framework_color(f),
                                       label=framework_label(f)) for f in frameworks]
        handles.append(Line2D([], [], ls="none", marker="o", color="0.3", markersize=4, label="seed"))
        if has_floor:
            handles.append(Line2D([], [], color="0.35", ls="--", lw=1.0, label=f"real images ({floor:.4g})"))
        fig.legend(handles=handles, loc="outside lower center", ncols=len(handles), frameon=False)
        better = "lower" if lower_is_better(metric) else "higher"
        fig.suptitle(title or f"{metric} over seeds, per variant ({better} is better)")
    return fig
