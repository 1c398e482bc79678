"""Build the report of an image-track sweep (docs/images.md): ``reports/<grid>/`` from the stored runs.

    README.md        the report (Markdown): what was run, tables, figures, how to regenerate it
    index.html       the same as one HTML page (optional)
    runs.csv         one row per run: variant, framework, seed, status, every stored score and diagnostic
    summary.csv      per variant and framework: median, IQR, IQM [95% CI] of each score, divergence;
                     the real images' floor row last (image_tables.summary_table)
    comparisons.csv  each comparison of ``grids.image_comparisons``: P(variant better) [95% CI], verdict
    signs.csv        TF vs PyTorch: the sign of every effect in each framework, agree?
    frozen.csv       the frozen-G experiment: where norms/G vanished (when the grid has it)
    figures/*.png    curves, frozen vs trained G, latent grids, samples, scores over seeds, and post
                     004's sigmoid-gradient plot

The contract is ``build.build_report``'s (which dispatches here for a grid whose ``track`` is
"image"): the runs come from ``build.load_grid`` (``cells.plan``'s cells, every run verified by
``store.verify_run``; ``IncompleteRunsError``, exit 2, naming a missing or damaged run and the sweep
that repairs it), the folder is built whole in a temporary sibling and swapped in
(``files.folder_atomic``), it carries the ``outdirs`` manifest, and everything in it is a function of
the stored metrics, samples and curves and of fixed seeds (bootstrap), so the same runs give the
same bytes: no timings, paths, dates or host names are written.

The floor (the data set's real images scored as if generated) is computed here by
``metrics.images.image_floor(data, classifier)`` with ``image.scoring.prepare(dataset)`` (the data
set, and the suite's classifier, cached after its first training); for 28x28 sets the IDX files are
read from ``$GANREPRO_DATA_DIR``. Framework-free: imports no framework, sweep or training driver.
"""
from __future__ import annotations

import json
import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from .. import outdirs
from ..cells import plan
from ..config import format_seeds
from ..files import folder_atomic, write_text_atomic
from ..grids import Grid, image_comparisons
from ..image.config import IMAGE_SIZE, ImageConfig
from ..labels import framework_label
from ..variants import get_variant
from . import document as doc
from . import image_tables as it
from . import stats
from .build import IncompleteRunsError, Loaded, load_grid  # noqa: F401 (IncompleteRunsError: for callers)
from .tables import fmt, to_csv

DATASET_TITLES = {"digits8": "digits8", "mnist": "MNIST", "fashion-mnist": "Fashion-MNIST"}
SPLITS = {"digits8": (1197, 300, 300), "mnist": (50_000, 10_000, 10_000), "fashion-mnist": (50_000, 10_000, 10_000)}
"""(train, validation, test) images of each data set (docs/images.md#splits)."""
SPLIT_RULES = {
    "digits8": "one fixed permutation of the 1,797 images: first 300 test, next 300 validation, the rest training",
    "mnist": "the first 50,000 of the training file, its last 10,000, the 10,000 of the test file",
    "fashion-mnist": "the first 50,000 of the training file, its last 10,000, the 10,000 of the test file",
}

THEIS_CAVEAT = ("Parzen-window log-likelihoods are a poor guide in high dimensions: they can be far from a "
                "model's true log-likelihood and can rank models differently from it (Theis, van den Oord and "
                "Bethge 2016, \"A note on the evaluation of generative models\", https://arxiv.org/abs/1511.01844); "
                "read them beside the other scores.")
THEIS_URL = "https://arxiv.org/abs/1511.01844"

PUBLISHED_MNIST_PARZEN_FALLBACK = {"Adversarial nets (GAN)": (225.0, 2.0), "Deep GSN": (214.0, 1.1),
                                   "DBN": (138.0, 2.0), "Stacked CAE": (121.0, 1.6)}
"""Goodfellow et al. 2014, Table 1 (MNIST, nats): used only while ``metrics.images`` does not
export ``PUBLISHED_MNIST_PARZEN`` (TODO: remove once it does)."""

SIGMOID_FIGURE = "figures/sigmoid-gradients.png"
FROZEN_FIGURE = "figures/frozen-g-curves.png"
STRIP_METRICS = ("mapping_instability", "fid")


# ---- the floor --------------------------------------------------------------------------------
def real_images_floor(dataset: str) -> it.Floor:
    """The real images of ``dataset`` scored as if generated, and the classifier's test accuracy.

    ``metrics.images.image_floor(data, classifier)`` with ``(data, classifier) =
    image.scoring.prepare(dataset)``. While those are not importable (the metrics are being
    written), the floor is reported as not computed (TODO: drop this guard once they exist).
    """
    try:
        from ..image.scoring import prepare
        from ..metrics.images import image_floor  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return it.Floor(dataset, None, None, "not computed: metrics.images.image_floor is not available in this "
                                             "version of ganrepro (TODO)")
    data, classifier = prepare(dataset)
    accuracy = getattr(classifier, "test_accuracy", None)
    return it.Floor(dataset, dict(image_floor(data, classifier)), None if accuracy is None else float(accuracy))


def published_mnist_parzen() -> list[tuple[str, float, float]]:
    """[(model, nats, standard error or NaN)] of Goodfellow et al. 2014's Table 1 (MNIST test set),
    from ``metrics.images.PUBLISHED_MNIST_PARZEN`` (a mapping model -> number, (mean, stderr) or
    {"mean"/"ll", "stderr"/"se"}), else the fallback above."""
    try:
        from ..metrics.images import PUBLISHED_MNIST_PARZEN as table  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        table = PUBLISHED_MNIST_PARZEN_FALLBACK
    out = []
    value: Any
    mean: Any
    se: Any
    for name, value in dict(table).items():
        if isinstance(value, dict):
            mean = value.get("mean", value.get("ll", value.get("parzen_ll", math.nan)))
            se = value.get("stderr", value.get("se", value.get("parzen_ll_stderr", math.nan)))
        elif isinstance(value, (tuple, list)):
            mean, se = value[0], value[1] if len(value) > 1 else math.nan
        else:
            mean, se = value, math.nan
        out.append((str(name), float(mean), math.nan if se is None else float(se)))
    return out


# ---- what the grid is -------------------------------------------------------------------------
def image_config(grid: Grid, variant: str) -> ImageConfig:
    """The variant's ``ImageConfig`` at the grid's overrides and seeds."""
    config = grid.config(variant)
    if not isinstance(config, ImageConfig):
        raise ValueError(f"{variant!r} is not an image variant")
    return config


@dataclass(frozen=True)
class GridFacts:
    """What the report says about the grid: its data sets, sizes, and which variants play which role."""

    datasets: tuple[str, ...]
    batch_size: dict  # variant -> B
    frozen: tuple[str, ...]  # the frozen-G variants
    counterpart: dict  # frozen variant -> the same config with G trained (or None)
    latent: tuple[str, ...]  # the DCGAN variants whose latent grids are drawn


def grid_facts(grid: Grid) -> GridFacts:
    configs = {v: image_config(grid, v) for v in grid.variants}
    frozen = tuple(v for v, c in configs.items() if c.freeze_g)
    counterpart = {}
    for v in frozen:
        trained = configs[v].replace(freeze_g=False)
        counterpart[v] = next((w for w, c in configs.items() if c == trained), None)
    latent = tuple(v for v, c in configs.items()
                   if c.model == "dcgan" and not c.freeze_g and c.g_loss == "non_saturating")
    return GridFacts(tuple(dict.fromkeys(c.dataset for c in configs.values())),
                     {v: c.batch_size for v, c in configs.items()}, frozen, counterpart, latent)


def recorded_line(loaded: Loaded) -> str:
    """The library versions and devices the runs recorded (each distinct set once, in grid order)."""
    seen: list[str] = []
    devices: list[str] = []
    for runs in loaded.cells.values():
        for run in runs[:1]:
            record = json.loads((run.path / "record.json").read_text(encoding="utf-8"))
            text = ", ".join(f"{k} {v}" for k, v in sorted(record["versions"].items()))
            if text not in seen:
                seen.append(text)
            if str(record.get("device")) not in devices:
                devices.append(str(record.get("device")))
    return f"Runs recorded: {'; '.join(seen)}; device {', '.join(devices)}."


# ---- tables -----------------------------------------------------------------------------------
def compute_image_tables(loaded: Loaded, floors) -> dict:
    grid = loaded.grid
    facts = grid_facts(grid)
    runs_df = it.runs_frame(loaded.cells)
    scored = it.scored_frame(runs_df)
    compared = [c for c in image_comparisons(grid.variants) if c[0] not in facts.frozen and c[1] not in facts.frozen]
    comp = it.comparison_table(scored, compared, grid.frameworks)
    t = {"runs": runs_df, "scored": scored, "summary": it.summary_table(scored, floors), "comparisons": comp}
    if len(grid.frameworks) == 2:
        t["signs"] = it.sign_table(comp, *grid.frameworks)
    else:
        t["signs"] = pd.DataFrame()
    shown = [v for f in facts.frozen for v in (f, facts.counterpart[f]) if v is not None]
    t["frozen"] = it.frozen_table(runs_df, list(dict.fromkeys(shown)), facts.batch_size) if facts.frozen \
        else pd.DataFrame()
    return t


def count_text(value) -> str:
    """A step or image count: "-" for NaN, "1,280" for a whole number, "1,280.5" for a median between two."""
    v = float(value)
    if not math.isfinite(v):
        return "-"
    return f"{int(v):,}" if v == int(v) else f"{v:,.1f}"


def _pair(lo, hi, digits: int = 4) -> str:
    if all(not (isinstance(v, (int, float)) and math.isfinite(v)) for v in (lo, hi)):
        return "-"
    return f"[{fmt(lo, digits)}, {fmt(hi, digits)}]"


def summary_view(summary: pd.DataFrame, metric: str) -> pd.DataFrame:
    out = summary.copy()
    out["iqr"] = [_pair(a, b) for a, b in zip(out[f"{metric}_q1"], out[f"{metric}_q3"], strict=True)]
    out["ci"] = [_pair(a, b) for a, b in zip(out[f"{metric}_iqm_lo"], out[f"{metric}_iqm_hi"], strict=True)]
    return out


def comparison_view(comp: pd.DataFrame, signs: pd.DataFrame, metric: str, frameworks) -> pd.DataFrame:
    """One row per comparison: P(variant better) [95% CI] and the verdict per framework, signs agree."""
    rows = []
    sub = comp[comp["metric"] == metric]
    for (variant, baseline, question), group in sub.groupby(["variant", "baseline", "question"], sort=False):
        row = {"variant": variant, "baseline": baseline, "question": question}
        for _, r in group.iterrows():
            name = framework_label(r["framework"])
            row[f"P {name}"] = f"{fmt(r['p_improve'], 3)} {_pair(r['p_lo'], r['p_hi'], 3)}"
            row[f"verdict {name}"] = r["verdict"]
        s = signs[(signs["variant"] == variant) & (signs["baseline"] == baseline) & (signs["metric"] == metric)] \
            if not signs.empty else signs
        row["signs agree"] = bool(s["agree"].iloc[0]) if len(s) else None
        rows.append(row)
    return pd.DataFrame(rows)


# ---- figures ----------------------------------------------------------------------------------
def figure_name(slug: str, kind: str) -> str:
    return f"figures/{slug}-{kind}.png"


def _first_seed_run(runs):
    return min(runs, key=lambda r: r.seed)


def make_image_figures(loaded: Loaded, t: dict, floors, folder: Path, say: Callable[[str], None]) -> dict:
    """Write every PNG under ``folder/figures``; return {key: relative path}."""
    from . import image_figures as imf
    from .figures import save_png

    grid = loaded.grid
    facts = grid_facts(grid)
    (folder / "figures").mkdir(parents=True, exist_ok=True)
    paths: dict = {}
    save_png(imf.sigmoid_gradient_figure(), folder / SIGMOID_FIGURE)
    paths["sigmoid"] = SIGMOID_FIGURE
    floor = floors[0] if len(floors) == 1 and floors[0].metrics is not None else None
    order = list(grid.variants)
    for m in STRIP_METRICS:
        path = f"figures/strip-{m}.png"
        value = it.floor_value(floor, m) if floor is not None else None
        save_png(imf.strip_figure(t["scored"], m, order=order, floor=value,
                                  title=f"{it.IMAGE_METRIC_SHORT[m]} over seeds, per variant and framework"),
                 folder / path)
        paths[("strip", m)] = path
    slugs = list(dict.fromkeys(loaded.slugs[v] for v in grid.variants))
    for i, slug in enumerate(slugs):
        variant = next(v for v in grid.variants if loaded.slugs[v] == slug)
        config = image_config(grid, variant)
        by_fw = {f: loaded.cells[(variant, f)] for f in grid.frameworks}
        say(f"figures {i + 1}/{len(slugs)}: {slug}")
        names = " = ".join([variant] + loaded.same_as[variant])
        save_png(imf.image_curves_figure(by_fw, config.batch_size, f"{names}: post 004's diagnostics (median, IQR "
                                         "over seeds)", g_loss=config.g_loss), folder / figure_name(slug, "curves"))
        panels = {}
        for f, runs in by_fw.items():
            run = _first_seed_run(runs)
            panels[f"{framework_label(f)}, seed {run.seed} ({run.status})"] = run.samples()["samples"]
        save_png(imf.samples_figure(panels, f"{names}: the first {imf.SAMPLES_SHOWN} stored samples"),
                 folder / figure_name(slug, "samples"))
        if variant in facts.latent:
            rows = {}
            for f, runs in by_fw.items():
                run = _first_seed_run(runs)
                data = run.samples()
                instability = run.metrics.get("mapping_instability", math.nan)
                rows[f"{framework_label(f)}, seed {run.seed}\ninstability {fmt(instability, 3)}"] = (
                    data["checkpoints"], data["checkpoint_steps"])
            note = ("latent points: the 15 x 15 grid over [-3, 3]^2, row-major" if config.z_dim == 2 else
                    f"latent points: 225 fixed draws of N(0, I_{config.z_dim}), shown 15 x 15 in draw order")
            save_png(imf.latent_grid_figure(rows, config.batch_size, f"{names}: G on the latent grid", note=note),
                     folder / figure_name(slug, "latent"))
            paths[("latent", slug)] = figure_name(slug, "latent")
    for v in facts.frozen:
        trained = facts.counterpart[v]
        frozen_runs = {f: loaded.cells[(v, f)] for f in grid.frameworks}
        trained_runs = {f: loaded.cells[(trained, f)] if trained else [] for f in grid.frameworks}
        path = FROZEN_FIGURE if len(facts.frozen) == 1 else figure_name(loaded.slugs[v], "frozen-vs-trained")
        title = f"{v} (D against a frozen G) beside {trained or 'no trained counterpart in this grid'}"
        save_png(imf.frozen_curves_figure(frozen_runs, trained_runs, facts.batch_size[v], title), folder / path)
        paths[("frozen", v)] = path
    return paths


# ---- the document -----------------------------------------------------------------------------
def _count(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _values(grid: Grid, field: str) -> str:
    return ", ".join(str(v) for v in dict.fromkeys(getattr(image_config(grid, v), field) for v in grid.variants))


def header_blocks(loaded: Loaded, t: dict, floors) -> list:
    grid = loaded.grid
    facts = grid_facts(grid)
    n_configs = len(plan(grid)) // max(len(grid.frameworks), 1)
    B: list = [doc.Heading(1, f"Report: grid `{grid.name}` (image track)")]
    B.append(doc.Paragraph(
        f"{grid.describe()}. {len(grid.variants)} named variants in {n_configs} distinct configs; {len(t['runs'])} "
        f"runs (variant x framework x seed: {len(grid.variants)} x {len(grid.frameworks)} x {len(grid.seeds)}, "
        f"seeds {format_seeds(grid.seeds)})."))
    data = []
    for ds in facts.datasets:
        train, val, test = SPLITS[ds]
        data.append(f"{DATASET_TITLES[ds]} ({IMAGE_SIZE[ds]}x{IMAGE_SIZE[ds]} grey images, 10 classes), split into "
                    f"train {train:,}, validation {val:,} and test {test:,} images ({SPLIT_RULES[ds]})")
    B.append(doc.Paragraph(
        f"Data: {'; '.join(data)} (docs/images.md#splits). Training uses the train split only; the Parzen "
        "window's sigma is chosen on the validation split; every score is on the test split."))
    steps, batch = _values(grid, "num_steps"), _values(grid, "batch_size")
    B.append(doc.Paragraph(
        f"Training: {steps} steps (one D update, then one G update on fresh z) of batch {batch}; Adam (lr 2e-4, "
        f"beta1 0.5); curves every {_values(grid, 'curve_interval')} steps and at the last; G on the 225-point "
        f"latent grid every {_values(grid, 'checkpoint_interval')} steps and after the last; dtype "
        f"{_values(grid, 'dtype')}. Curves are drawn against the images trained on, (step + 1) x B."))
    configs = {v: image_config(grid, v) for v in grid.variants}
    variants = pd.DataFrame([{"variant": v, "model": c.model, "z": c.z_dim, "g_loss": c.g_loss,
                              "G": "frozen" if c.freeze_g else "trained", "config": f"`{loaded.slugs[v]}`"}
                             for v, c in configs.items()])
    B.append(doc.Table(variants, ("variant", "model", "z", "g_loss", "G", "config"),
                       ("variant", "model", "z-dim", "G loss", "G", "stored config")))
    data_note = ""
    if any(ds in ("mnist", "fashion-mnist") for ds in facts.datasets):
        data_note = (" The 28x28 IDX files are read from `--data-dir` (of the sweep, and of the report for the "
                     "floor) or `$GANREPRO_DATA_DIR`; `ganrepro data download NAME --data-dir DIR` fetches them.")
    B.append(doc.Paragraph(
        f"Regenerate with `ganrepro sweep --grid {grid.name} --runs RUNS` then `ganrepro report --grid {grid.name} "
        f"--runs RUNS` (the sweep resumes; the same runs give this folder byte for byte).{data_note}"))
    B.append(doc.Paragraph(
        "Scores (docs/images.md#evaluation), each on 10,000 images G(z), z ~ N(0, I), of a seed's final G: "
        "**Parzen LL**, the mean log-likelihood in nats of the test images under a Gaussian Parzen window on the "
        "samples (Goodfellow et al. 2014's protocol; higher is better); **FID**, the Frechet distance between the "
        "samples' and the test images' penultimate features of the suite's own classifier (not Inception v3: "
        "comparable within this suite only; lower is better); **IS**, the Inception-score analogue "
        "exp(E KL(p(y|x) || p(y))) on the same classifier (1 to 10; higher is better); **classes covered**, the "
        "classes receiving at least 1% of the samples' predicted labels; **class KL**, KL(class histogram || "
        "uniform) in nats (0 is even coverage). **Mapping instability** (the z-dim question): G is evaluated on "
        "225 fixed latent points at every checkpoint and each image classified; it is the mean over consecutive "
        "checkpoints of the share of points whose class changes (0 = a mapping that keeps every point's class; "
        "lower is more stable). A G that draws no recognisable digits, or only one class, keeps its classes too: "
        "a low instability means a stable mapping only beside a good FID and coverage (compare variants that "
        "draw digits, e.g. the non-saturating DCGAN at z-dim 2 and 7)."))
    B.append(doc.Paragraph(
        "Status: **diverged** when a curve went non-finite; a diverged run has no score (it is counted in the "
        "divergence rate, and loses every comparison). Summaries are over the runs with a value: median, "
        "interquartile range, and the interquartile mean (IQM) with a percentile-bootstrap 95% interval "
        f"({stats.BOOTSTRAP_RESAMPLES} resamples, fixed bootstrap seed {stats.BOOTSTRAP_SEED})."))
    for floor in floors:
        if floor.metrics is None:
            B.append(doc.Paragraph(f"Real images (floor) of {DATASET_TITLES[floor.dataset]}: {floor.note}."))
        else:
            accuracy = ("" if floor.test_accuracy is None else
                        f" The suite's classifier, trained by the suite on the train split, classifies the "
                        f"{DATASET_TITLES[floor.dataset]} test split with accuracy {fmt(floor.test_accuracy, 4)}.")
            B.append(doc.Paragraph(
                f"The row **{it.FLOOR_LABEL}** scores real {DATASET_TITLES[floor.dataset]} images in place of "
                f"generated ones, the same way (`metrics.images.image_floor`): what a perfect generator would "
                f"reach.{accuracy}"))
    B.append(doc.Paragraph(recorded_line(loaded)))
    return B


def headline_blocks(loaded: Loaded, t: dict) -> list:
    grid = loaded.grid
    B: list = [doc.Heading(2, "Headline")]
    comp = t["comparisons"]
    zdim = comp[(comp["metric"] == "mapping_instability") & (comp["question"] == "z-dim 7 vs 2")]
    lines = []
    for (variant, baseline), group in zdim.groupby(["variant", "baseline"], sort=False):
        words = [f"{framework_label(r['framework'])} {fmt(r['p_improve'], 3)} {_pair(r['p_lo'], r['p_hi'], 3)} "
                 f"({r['verdict']})" for _, r in group.iterrows()]
        lines.append(f"- P(z-dim 7 more stable): `{variant}` vs `{baseline}`: " + "; ".join(words))
    if lines:
        B.append(doc.Paragraph("The z-dim question, P(a random z-dim 7 run has a lower mapping instability than a "
                               "random z-dim 2 run) [95% CI], per framework:"))
        B.append(doc.Paragraph("\n".join(lines)))
    signs = t["signs"]
    if len(grid.frameworks) == 2 and not signs.empty:
        a, b = grid.frameworks
        c = it.sign_counts(signs, a, b)
        B.append(doc.Paragraph(
            f"{framework_label(a)} and {framework_label(b)} agree on the sign of {c['agree']} of {c['n']} effects "
            f"(comparison x score); {c['resolved_both']} effects are resolved (95% interval of P(improvement) "
            f"excludes 0.5) in both frameworks, of which {c['resolved_agree']} agree."))
    summary = t["summary"][t["summary"]["framework"] != "-"]
    diverged = int(summary["diverged"].sum())
    B.append(doc.Paragraph(f"Across the grid: {diverged} diverged run{'' if diverged == 1 else 's'} of "
                           f"{int(summary['n'].sum())}."))
    return B


def summary_blocks(loaded: Loaded, t: dict, figs: dict, floors) -> list:
    facts = grid_facts(loaded.grid)
    B: list = [doc.Heading(2, "Per variant and framework")]
    for m in it.IMAGE_METRICS:
        B.append(doc.Heading(3, it.IMAGE_METRIC_TITLES[m]))
        view = summary_view(t["summary"], m)
        B.append(doc.Table(view, ("variant", "framework", "n", "diverged", "divergence_rate", f"{m}_median", "iqr",
                                  f"{m}_iqm", "ci"),
                           ("variant", "framework", "runs", "diverged", "divergence rate", "median", "IQR", "IQM",
                            "IQM 95% CI")))
        if m == "parzen_ll":
            B.extend(parzen_notes(facts.datasets))
        if ("strip", m) in figs:
            B.append(doc.Image(figs[("strip", m)], f"{m} over seeds"))
    return B


def parzen_notes(datasets) -> list:
    """The Theis et al. caveat; for MNIST, Goodfellow et al. 2014's published numbers (for MNIST only)."""
    B: list = [doc.Paragraph(THEIS_CAVEAT)]
    if "mnist" in datasets:
        published = pd.DataFrame([{"model": name, "ll": mean, "se": se} for name, mean, se in published_mnist_parzen()])
        B.append(doc.Paragraph("Published for MNIST (Goodfellow et al. 2014, \"Generative Adversarial Nets\", "
                               "Table 1: Parzen-window log-likelihood of the MNIST test set, nats; their networks "
                               "and training, not this suite's):"))
        B.append(doc.Table(published, ("model", "ll", "se"), ("model (published, MNIST)", "Parzen LL", "± s.e.")))
    if "fashion-mnist" in datasets:
        B.append(doc.Paragraph("Goodfellow et al. 2014's published Parzen numbers are for MNIST; no published "
                               "Fashion-MNIST counterpart is shown here, and the MNIST numbers do not apply to "
                               "Fashion-MNIST."))
    return B


def comparison_blocks(loaded: Loaded, t: dict) -> list:
    grid = loaded.grid
    comp = t["comparisons"]
    if comp.empty:
        return []
    B: list = [doc.Heading(2, "Comparisons")]
    B.append(doc.Paragraph(
        "P = P(variant better than baseline) [95% CI]: the chance that a random run of the variant beats a "
        "random run of its baseline in the same framework (ties half; a diverged run loses), with a stratified "
        "percentile-bootstrap interval. Better = lower mapping instability (more stable), lower FID, higher "
        "Parzen LL, higher IS. Verdict: **better** or **worse** when the interval excludes 0.5, else **no "
        "resolved effect**. 'signs agree': the frameworks' P lie on the same side of 0.5."))
    for m in it.COMPARED_METRICS:
        B.append(doc.Heading(3, it.IMAGE_METRIC_TITLES[m]))
        B.append(doc.Table(comparison_view(comp, t["signs"], m, grid.frameworks), digits=3))
    return B


def frozen_blocks(loaded: Loaded, t: dict, figs: dict) -> list:
    grid = loaded.grid
    facts = grid_facts(grid)
    if not facts.frozen:
        return []
    frozen = t["frozen"]
    B: list = [doc.Heading(2, "The frozen G: where does the gradient reaching G vanish?")]
    B.append(doc.Paragraph(
        "D trains alone against G's initial weights; G's gradient is still computed for the diagnostics. A seed's "
        "norms/G **vanished** at the first recorded step where it fell below 1e-3 times its first recorded value "
        "(`vanish_step`; images trained on = (step + 1) x B); `loss_g_at_vanish` is L^_G = mean -log sigmoid(D(G(z))) "
        f"there. Post 004 reports that the gradient reaching G vanished only once L^_G exceeded about "
        f"{it.CLAIMED_LOSS_AT_VANISH:g}. Medians of the vanish step and of L^_G are over the seeds where it vanished; "
        "the trained-G row is the same config with G trained, for contrast."))
    view = frozen.copy()
    view["step_range"] = ["-" if count_text(a) == "-" else f"[{count_text(a)}, {count_text(b)}]"
                          for a, b in zip(view["vanish_step_min"], view["vanish_step_max"], strict=True)]
    view["step_median"] = [count_text(v) for v in view["vanish_step_median"]]
    view["images_median"] = [count_text(v) for v in view["vanish_images_median"]]
    view["loss_range"] = [_pair(a, b) for a, b in zip(view["loss_g_at_vanish_min"], view["loss_g_at_vanish_max"],
                                                      strict=True)]
    view["vanished_of"] = [f"{v} of {n}" for v, n in zip(view["vanished"], view["n"], strict=True)]
    B.append(doc.Table(view, ("variant", "framework", "vanished_of", "step_median", "step_range", "images_median",
                              "loss_g_at_vanish_median", "loss_range", "loss_above_claim", "loss_g_final_median"),
                       ("variant", "framework", "norms/G vanished", "median vanish step", "range",
                        "median images by then", "median L^_G there", "range", f"L^_G > {it.CLAIMED_LOSS_AT_VANISH:g}",
                        "median final loss/G")))
    lines = []
    for v in facts.frozen:
        for _, r in frozen[frozen["variant"] == v].iterrows():
            name = framework_label(r["framework"])
            if r["vanished"] == 0:
                lines.append(f"- {name}: norms/G did not fall below the threshold in any of {r['n']} seeds within the "
                             f"run (median final L^_G {fmt(r['loss_g_final_median'])}); these runs do not test "
                             "where it vanishes.")
            else:
                lines.append(f"- {name}: norms/G vanished in {r['vanished']} of {r['n']} seeds, at median step "
                             f"{count_text(r['vanish_step_median'])} ({count_text(r['vanish_images_median'])} "
                             "images), where L^_G "
                             f"had median {fmt(r['loss_g_at_vanish_median'])} (range "
                             f"{_pair(r['loss_g_at_vanish_min'], r['loss_g_at_vanish_max'])}); in "
                             f"{r['loss_above_claim']} of those seeds L^_G exceeded {it.CLAIMED_LOSS_AT_VANISH:g}.")
        if lines:
            B.append(doc.Paragraph("\n".join(lines)))
        if ("frozen", v) in figs:
            B.append(doc.Image(figs[("frozen", v)], f"{v}: diagnostics beside the trained G"))
        lines = []
    return B


def figure_blocks(loaded: Loaded, figs: dict) -> list:
    grid = loaded.grid
    B: list = [doc.Heading(2, "Figures")]
    B.append(doc.Heading(3, "Post 004's sigmoid-gradient plot"))
    B.append(doc.Paragraph(
        "The derivatives in D's logit x of the two G losses, computed by central finite differences (h = 1e-5) of "
        "the losses written with the exact softplus, log(1 - sigmoid(x)) = -softplus(x) and -log sigmoid(x) = "
        "softplus(-x), softplus(x) = max(x, 0) + log1p(exp(-|x|)); the closed forms -sigmoid(x) and sigmoid(x) - 1 "
        "are overlaid dashed (they agree within 1e-6). The saturating loss's derivative vanishes as D rejects G's "
        "samples (x -> -inf); the non-saturating one tends to -1."))
    B.append(doc.Image(figs["sigmoid"], "derivatives of the two G losses in D's logit"))
    B.append(doc.Heading(3, "Variants"))
    B.append(doc.Paragraph(
        "Per variant: post 004's five diagnostics (median and interquartile band over seeds, one line per "
        "framework, against the images trained on; log scale for the norms), and the first 64 of the 100 stored "
        "samples of the first seed in each framework. For the DCGAN with z-dim 2 and 7: G's images of the "
        "latent grid at four checkpoints spread over the run (first seed, each framework)."))
    shown = set()
    for variant in grid.variants:
        slug = loaded.slugs[variant]
        B.append(doc.Heading(4, f"`{variant}`"))
        B.append(doc.Paragraph(get_variant(variant).description + f". Config `{slug}`."))
        if loaded.same_as[variant]:
            B.append(doc.Paragraph("Same experiment as " + ", ".join(f"`{v}`" for v in loaded.same_as[variant])
                                   + " (one stored cell)."))
        if slug in shown:
            continue
        shown.add(slug)
        B.append(doc.Image(figure_name(slug, "curves"), f"{variant}: training curves"))
        if ("latent", slug) in figs:
            B.append(doc.Image(figs[("latent", slug)], f"{variant}: latent grid at four checkpoints"))
        B.append(doc.Image(figure_name(slug, "samples"), f"{variant}: samples"))
    return B


def image_blocks(loaded: Loaded, t: dict, figs: dict, floors) -> list:
    return (header_blocks(loaded, t, floors) + headline_blocks(loaded, t) + summary_blocks(loaded, t, figs, floors)
            + comparison_blocks(loaded, t) + frozen_blocks(loaded, t, figs) + figure_blocks(loaded, figs))


# ---- writing ----------------------------------------------------------------------------------
CSV_NAMES = ("runs", "summary", "comparisons", "signs")


def build_image_report(grid: Grid, runs_root, out, *, html: bool = True,
                       say: Callable[[str], None] | None = None) -> Path:
    """Write the report of the image grid ``grid`` from the runs under ``runs_root`` to the folder ``out``.

    ``IncompleteRunsError`` (nothing written) when a run of the grid is missing or damaged.
    """
    if grid.track != "image":
        raise ValueError(f"grid {grid.name!r} is not an image grid; use build.build_report")
    say = say or (lambda text: None)
    out = Path(out)
    say("loading runs")
    loaded = load_grid(grid, runs_root, say=say)
    floors = []
    for dataset in grid_facts(grid).datasets:
        say(f"scoring the real {DATASET_TITLES[dataset]} images (floor)")
        floors.append(real_images_floor(dataset))
    say("computing tables")
    t = compute_image_tables(loaded, floors)
    out.parent.mkdir(parents=True, exist_ok=True)
    outdirs.remove_stale_temporaries(out.parent, out.name)
    with folder_atomic(out) as tmp:
        outdirs.write_manifest(tmp, "report")
        figs = make_image_figures(loaded, t, floors, tmp, say)
        blocks = image_blocks(loaded, t, figs, floors)
        write_text_atomic(tmp / "README.md", doc.to_markdown(blocks))
        if html:
            write_text_atomic(tmp / "index.html", doc.to_html(blocks, f"ganrepro report: grid {grid.name}"))
        for name in CSV_NAMES:
            write_text_atomic(tmp / f"{name}.csv", to_csv(t[name]))
        if not t["frozen"].empty:
            write_text_atomic(tmp / "frozen.csv", to_csv(t["frozen"]))
    return out
