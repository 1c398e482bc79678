"""Build the report of a sweep: ``reports/<grid>/`` from the runs stored under a runs folder.

    README.md        the report (Markdown): tables, figures, how it was made
    index.html       the same as one HTML page (optional)
    runs.csv         one row per run (variant, framework, seed, status, metrics); a grid of more
                     than RUNS_CSV_MAX_ROWS runs writes runs/<variant>.csv instead, one per variant
    summary.csv      per variant and framework (tables.summary_table), floor row last
    comparisons.csv  technique vs baseline (tables.comparison_table)
    pairing.csv      TF vs PyTorch per variant (tables.pairing_table)
    signs.csv        sign agreement of every effect (tables.sign_table)
    figures/*.png    distributions, TF-vs-PyTorch scatter, per stored cell density and curves

Everything is a function of the stored metrics, samples and curves (timings are not used), and
of fixed seeds (bootstrap, floor), so the same runs give the same bytes. The folder is built
complete in a temporary sibling (``.<name>.tmp-*``) and swapped in, so an interrupted build leaves
the previous report whole; the next build into the same folder removes such a leftover sibling.
The folder carries ``.ganrepro-output.json`` (``ganrepro.outdirs``): the command line replaces
only a folder that holds it (or an empty one).

Which stored cells hold the grid's runs comes from ``ganrepro.cells.plan`` (not from the sweep,
which this package never imports); display names from ``ganrepro.labels``; "same experiment
as" from ``ganrepro.variant_groups``.
"""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .. import outdirs
from ..cells import plan
from ..config import format_seeds
from ..errors import UsageError
from ..files import folder_atomic, write_text_atomic
from ..grids import Grid, comparisons
from ..labels import METRIC_TITLES, framework_label
from ..metrics import PUBLISHED_FLOOR, perfect_generator_floor
from ..variant_groups import same_as as same_config_groups
from ..variants import VARIANTS
from . import document as doc
from . import tables
from .runs import METRIC_NAMES, load_cell, stored_run  # noqa: F401 (load_cell: kept for callers)


class IncompleteRunsError(UsageError):
    """Some runs of the grid are not stored or not trusted (exit 2; the message names the fix)."""


@dataclass
class Loaded:
    grid: Grid
    cells: dict  # (variant, framework) -> [StoredRun]
    slugs: dict  # variant -> slug
    same_as: dict  # variant -> other variants of the same stored cell


def load_grid(grid: Grid, root, say: Callable[[str], None] | None = None) -> Loaded:
    """Every stored run of ``grid`` under ``root``, verified (``store.verify_run``).

    ``IncompleteRunsError`` naming the first run that cannot be trusted (its file, the reason,
    the sweep that repairs it), else naming what is missing. Entries of the grid's slug and cell
    folders that are not runs are told to ``say`` (one line each) and ignored.
    """
    from ..store import cell_config, scan_cell, unknown_in_slug

    cells, slugs, missing = {}, {}, []
    fix = f"run 'ganrepro sweep --grid {grid.name} --runs {root}' to move it aside and train it again"
    unknown = []
    for cell in plan(grid):
        scan = scan_cell(root, cell.slug, cell.framework, set(grid.seeds), cell_config(cell.config))
        if scan.damaged:
            raise IncompleteRunsError(f"{scan.damaged[0]}; {fix}")
        unknown += [p for p in unknown_in_slug(root, cell.slug) + scan.unknown if p not in unknown]
        runs = [stored_run(doc, scan.folder / f"seed-{seed}") for seed, doc in sorted(scan.verified.items())]
        have = {r.seed for r in runs}
        lacking = [s for s in grid.seeds if s not in have]
        if lacking:
            missing.append(f"{cell.variants[0]} [{cell.framework}]: {len(lacking)} of its {len(grid.seeds)} seeds "
                           f"not stored (seeds {format_seeds(tuple(lacking))})")
        for variant in cell.variants:
            cells[(variant, cell.framework)] = runs
            slugs[variant] = cell.slug
    for path in unknown:
        (say or (lambda text: None))(f"ignoring {str(path)!r}: not a run folder (runs are named seed-<k>)")
    if missing:
        shown = "; ".join(missing[:4]) + (f"; and {len(missing) - 4} more cells" if len(missing) > 4 else "")
        raise IncompleteRunsError(f"runs missing under {str(root)!r} for grid {grid.name!r}: {shown}; "
                                  f"run 'ganrepro sweep --grid {grid.name} --runs {root}' first (it resumes)")
    order = {(v, f): i for i, (v, f) in enumerate((v, f) for v in grid.variants for f in grid.frameworks)}
    cells = dict(sorted(cells.items(), key=lambda kv: order[kv[0]]))
    # Variants of one stored cell are those with equal configs (cells.plan): the rule of
    # ``ganrepro variants``' "same experiment as", here at the grid's overrides and seeds.
    return Loaded(grid, cells, slugs, same_config_groups(grid.variants, grid.config))


def versions_line(loaded: Loaded) -> str:
    """The library versions and the devices recorded by the runs (each distinct one once):
    "<versions>; device cpu" (the first run of each cell is read)."""
    seen, devices = [], []
    for runs in loaded.cells.values():
        for run in runs[:1]:
            record = json.loads((run.path / "record.json").read_text(encoding="utf-8"))
            text = ", ".join(f"{k} {v}" for k, v in sorted(record["versions"].items()))
            if text not in seen:
                seen.append(text)
            device = str(record.get("device", "cpu"))
            if device not in devices:
                devices.append(device)
    return f"{'; '.join(seen)}; device {', '.join(devices) or 'cpu'}"


# ---- figures ----------------------------------------------------------------------------------
def figure_name(slug: str, kind: str) -> str:
    return f"figures/{slug}-{kind}.png"


def make_figures(loaded: Loaded, runs_df: pd.DataFrame, paired: pd.DataFrame, floor: dict, folder: Path,
                 say: Callable[[str], None]) -> dict:
    """Write every PNG under ``folder/figures``; return {key: relative path}."""
    from . import figures

    (folder / "figures").mkdir(parents=True, exist_ok=True)
    paths: dict = {}
    for m in METRIC_NAMES:
        path = f"figures/distribution-{m}.png"
        figures.save_png(figures.metric_distributions_figure(runs_df, m, floor=floor[m]), folder / path)
        paths[("distribution", m)] = path
    if not paired.empty:
        path = "figures/tf-vs-torch.png"
        figures.save_png(figures.framework_scatter_figure(paired), folder / path)
        paths["scatter"] = path
    slugs = list(dict.fromkeys(loaded.slugs[v] for v in loaded.grid.variants))
    for i, slug in enumerate(slugs):
        variant = next(v for v in loaded.grid.variants if loaded.slugs[v] == slug)
        by_fw = {f: loaded.cells[(variant, f)] for f in loaded.grid.frameworks}
        say(f"figures {i + 1}/{len(slugs)}: {slug}")
        picked = {}
        for f, runs in by_fw.items():
            for label, run in figures.representative_runs(runs, metric="ks").items():
                picked[f"{framework_label(f)}, {label} KS"] = run
        names = " = ".join([variant] + loaded.same_as[variant])
        figures.save_png(figures.density_figure(picked, f"{names}: real and generated density, D(x)"),
                         folder / figure_name(slug, "density"))
        figures.save_png(figures.curves_figure(by_fw, f"{names}: training diagnostics (median, IQR over seeds)"),
                         folder / figure_name(slug, "curves"))
    return paths


# ---- the document -----------------------------------------------------------------------------
def _with_ci(df, m, prefix="") -> pd.DataFrame:
    out = df.copy()
    out[f"{m}_iqr"] = [f"[{tables.fmt(a)}, {tables.fmt(b)}]"
                       for a, b in zip(out[f"{m}_q1"], out[f"{m}_q3"], strict=True)]
    out[f"{m}_ci"] = [f"[{tables.fmt(a)}, {tables.fmt(b)}]"
                      for a, b in zip(out[f"{m}_iqm_lo"], out[f"{m}_iqm_hi"], strict=True)]
    return out


def _interval(lo, hi) -> str:
    return f"[{tables.fmt(lo, 3)}, {tables.fmt(hi, 3)}]"


def comparison_view(comp: pd.DataFrame, signs: pd.DataFrame, metric: str, frameworks) -> pd.DataFrame:
    """One row per technique: P(improvement) [95% CI] and Cliff's delta per framework, sign agreement."""
    rows = []
    sub = comp[comp["metric"] == metric]
    for (technique, baseline), group in sub.groupby(["technique", "baseline"], sort=False):
        row = {"technique": technique, "baseline": baseline}
        for _, r in group.iterrows():
            name = framework_label(r["framework"])
            row[f"P {name}"] = f"{tables.fmt(r['p_improve'], 3)} {_interval(r['p_lo'], r['p_hi'])}"
            row[f"delta {name}"] = f"{tables.fmt(r['cliffs_delta'], 3)} ({r['effect']})"
            row[f"d {name}"] = r["cohens_d"]
        s = signs[(signs["technique"] == technique) & (signs["metric"] == metric)] if not signs.empty else signs
        row["signs agree"] = bool(s["agree"].iloc[0]) if len(s) else None
        rows.append(row)
    return pd.DataFrame(rows)


def build_blocks(loaded: Loaded, t: dict, figs: dict, floor: dict) -> list:
    grid = loaded.grid
    fw_names = [framework_label(f) for f in grid.frameworks]
    n_cells = len(plan(grid))
    B: list = [doc.Heading(1, f"Report: grid `{grid.name}`")]
    B.append(doc.Paragraph(
        f"{grid.describe()}. {len(grid.variants)} named variants in {n_cells // len(grid.frameworks)} distinct "
        f"configs; {len(t['runs'])} runs (variant x framework x seed). Regenerate with "
        f"`ganrepro sweep --grid {grid.name}` then `ganrepro report --grid {grid.name}` (the sweep resumes; "
        "the same runs give this folder byte for byte)."))
    B.append(doc.Paragraph(
        "Each run is scored on 10,000 samples of G(z), z ~ U(-8, 8) fresh draws, against the exact "
        "target N(4, 0.5^2): KS statistic and Wasserstein-1 (lower is better), KDE (Parzen) log-likelihood "
        "(higher is better; it does not see mode collapse alone: read it with the collapse rate). "
        "Status: **diverged** (non-finite output; no metric), **collapsed** (std < 0.2 sigma), else **ok**. "
        "Summaries are over the runs with a value; the IQM is the interquartile mean with a "
        f"percentile-bootstrap 95% interval ({loaded_stats_note()}). P(improvement) is the probability that a "
        "random run with the technique beats a random baseline run (ties half; a diverged run loses), with a "
        "stratified bootstrap 95% interval; Cliff's delta = 2P - 1 and Cohen's d (positive: the technique is "
        "better) are the effect sizes. The perfect-generator floor (10,000 draws of the target itself, "
        f"scored the same way, over the grid's seeds) is the last row: published floor KS {PUBLISHED_FLOOR['ks']}, "
        f"W1 {PUBLISHED_FLOOR['w1']}, KDE {PUBLISHED_FLOOR['kde_ll']}."))
    B.append(doc.Paragraph(f"Runs recorded: {versions_line(loaded)}."))

    signs = t["signs"]
    B.append(doc.Heading(2, "Headline"))
    if not signs.empty:
        agree = int(signs["agree"].sum())
        resolved = signs[signs[f"resolved_{grid.frameworks[0]}"] & signs[f"resolved_{grid.frameworks[-1]}"]]
        B.append(doc.Paragraph(
            f"{' and '.join(fw_names)} agree on the sign of {agree} of {len(signs)} effects "
            f"(technique x metric); {len(resolved)} effects are resolved (95% interval of P(improvement) "
            f"excludes 0.5) in both frameworks, of which {int(resolved['agree'].sum())} agree."))
        lines = []
        for _, r in t["comparisons_mean"].iterrows():
            lines.append(f"- `{r['technique']}` vs `{r['baseline']}`: {r['verdict']}")
        if lines:
            B.append(doc.Paragraph("Per technique (KS, both frameworks):\n" + "\n".join(lines)))
    if has_resolution(t):
        B.extend(resolution_blocks(t["resolution"], len(grid.seeds)))
    outcome = t["summary"][t["summary"]["framework"] != "-"]
    B.append(doc.Paragraph(
        f"Across the grid: {int(outcome['diverged'].sum())} diverged and {int(outcome['collapsed'].sum())} "
        f"collapsed runs of {int(outcome['n'].sum())}."))

    B.append(doc.Heading(2, "Per variant and framework"))
    for m in METRIC_NAMES:
        B.append(doc.Heading(3, METRIC_TITLES[m]))
        view = _with_ci(t["summary"], m)
        B.append(doc.Table(view, ("variant", "framework", "n", "diverged", "collapsed", f"{m}_median", f"{m}_iqr",
                                  f"{m}_iqm", f"{m}_ci"),
                           ("variant", "framework", "runs", "diverged", "collapsed", "median", "IQR", "IQM",
                            "IQM 95% CI")))
        if ("distribution", m) in figs:
            B.append(doc.Image(figs[("distribution", m)], f"distribution of {m} over seeds"))

    if not t["comparisons"].empty:
        B.append(doc.Heading(2, "Techniques against their baselines"))
        B.append(doc.Paragraph("P = P(improvement) [95% CI]; delta = Cliff's delta (Romano's label); d = Cohen's "
                               "d; both positive when the technique is better. 'signs agree': the two "
                               "frameworks find an effect of the same sign."))
        for m in METRIC_NAMES:
            B.append(doc.Heading(3, METRIC_TITLES[m]))
            B.append(doc.Table(comparison_view(t["comparisons"], signs, m, grid.frameworks), digits=3))

    if len(grid.frameworks) == 2 and not t["pairing"].empty:
        a, b = grid.frameworks
        B.append(doc.Heading(2, f"{framework_label(b)} vs {framework_label(a)}, seed by seed"))
        B.append(doc.Paragraph(
            f"The same seed is the same experiment in both frameworks (same initial weights, batches and noise). "
            f"Paired difference = {b} - {a} per seed. Trajectories of a GAN amplify last-bit differences "
            "(see the README's agreement section), so single seeds may end in different places; the "
            "distributions over seeds are what must agree."))
        B.append(doc.Table(t["pairing"], ("variant", "metric", "pairs", f"median_{a}", f"median_{b}",
                                          "median_paired_diff", "max_abs_paired_diff", f"share_{b}_better",
                                          "same_status"),
                           ("variant", "metric", "seeds", f"median {a}", f"median {b}", "median paired diff",
                            "max abs paired diff", f"share {b} better", "same status")))
        if "scatter" in figs:
            B.append(doc.Image(figs["scatter"], "TF vs PyTorch, per seed"))

    B.append(doc.Heading(2, "Variants"))
    B.append(doc.Paragraph("Densities: the target N(4, 0.5^2), the generated density and D(x), for the best, "
                           "median and worst seed by KS in each framework, as in the source posts. Curves: post "
                           "004's diagnostics, median and interquartile band over seeds."))
    shown = set()
    for variant in grid.variants:
        slug = loaded.slugs[variant]
        B.append(doc.Heading(3, f"`{variant}`"))
        B.append(doc.Paragraph(VARIANTS[variant].description + f". Config `{slug}`."))
        if loaded.same_as[variant]:
            B.append(doc.Paragraph("Same experiment as " + ", ".join(f"`{v}`" for v in loaded.same_as[variant])
                                   + " (one stored cell)."))
        if slug in shown:
            continue
        shown.add(slug)
        B.append(doc.Image(figure_name(slug, "density"), f"{variant}: densities"))
        B.append(doc.Image(figure_name(slug, "curves"), f"{variant}: training curves"))
    return B


RUNS_CSV_MAX_ROWS = 10_000
"""Above this many runs, the per-run rows go to one CSV per variant (``runs/``) rather than one file:
the large grid's 34,816 rows would make a 5 MiB file; a variant's are about 250 KiB."""


def runs_csv_files(runs: pd.DataFrame) -> dict[str, str]:
    """{relative path: CSV text} of the per-run rows: ``runs.csv``, or for more than ``RUNS_CSV_MAX_ROWS``
    rows ``runs/<variant>.csv`` per variant in the table's order ("/" in a name becomes "__"), the same
    columns and rows."""
    if len(runs) <= RUNS_CSV_MAX_ROWS:
        return {"runs.csv": tables.to_csv(runs)}
    return {f"runs/{variant.replace('/', '__')}.csv": tables.to_csv(runs[runs["variant"] == variant])
            for variant in dict.fromkeys(runs["variant"])}


FEW_SEEDS = 32
"""A grid with more seeds per cell than this also reports what its first FEW_SEEDS seeds
resolve (the default grid's size), beside what all of them resolve."""


def has_resolution(t: dict) -> bool:
    """Whether the tables hold a non-empty resolution table (grids of more than FEW_SEEDS seeds)."""
    resolution = t.get("resolution")
    return resolution is not None and not resolution.empty


def resolution_blocks(resolution: pd.DataFrame, n_many: int) -> list:
    """"What more seeds resolve": the effects unresolved on the first FEW_SEEDS seeds and resolved
    on all ``n_many``, then the counts of each verdict at both sizes."""
    n_few = FEW_SEEDS
    B: list = [doc.Heading(3, f"What {n_many} seeds resolve that {n_few} did not")]
    new = resolution[resolution["newly_resolved"]]
    counts = {n: resolution[f"verdict_{n}"].value_counts() for n in (n_few, n_many)}
    summary = "; ".join(f"with {n} seeds per cell {int(counts[n].get('helps', 0))} help, "
                        f"{int(counts[n].get('hurts', 0))} hurt, {int(counts[n].get('unresolved', 0))} unresolved"
                        for n in (n_few, n_many))
    B.append(doc.Paragraph(
        f"Of {len(resolution)} comparisons (technique x framework x metric), {len(new)} are unresolved on the "
        f"grid's first {n_few} seeds (the 95% interval of P(improvement) contains 0.5) and resolved on all "
        f"{n_many} ({summary}). The same runs, the same statistics: only the number of seeds differs "
        "(resolution.csv lists every comparison)."))
    if not new.empty:
        view = new.assign(
            interval_few=[_interval(lo, hi) for lo, hi in zip(new[f"p_lo_{n_few}"], new[f"p_hi_{n_few}"], strict=True)],
            interval_many=[_interval(lo, hi)
                           for lo, hi in zip(new[f"p_lo_{n_many}"], new[f"p_hi_{n_many}"], strict=True)])
        B.append(doc.Table(view, ("technique", "baseline", "framework", "metric", f"p_improve_{n_few}",
                                  "interval_few", f"p_improve_{n_many}", "interval_many", f"verdict_{n_many}"),
                           ("technique", "baseline", "framework", "metric", f"P ({n_few} seeds)", "95% CI",
                            f"P ({n_many} seeds)", "95% CI", "verdict"), digits=3))
    return B


def loaded_stats_note() -> str:
    from . import stats

    return f"{stats.BOOTSTRAP_RESAMPLES} resamples, fixed bootstrap seed {stats.BOOTSTRAP_SEED}"


def verdicts(comp: pd.DataFrame, frameworks, metric: str = "ks") -> pd.DataFrame:
    """Per technique: a one-line verdict on ``metric`` from each framework's P(improvement) interval."""
    rows = []
    sub = comp[comp["metric"] == metric]
    for (technique, baseline), group in sub.groupby(["technique", "baseline"], sort=False):
        words = []
        for _, r in group.iterrows():
            verdict = "helps" if r["p_lo"] > 0.5 else "hurts" if r["p_hi"] < 0.5 else "no resolved effect"
            words.append(f"{framework_label(r['framework'])} {verdict} "
                         f"(P = {tables.fmt(r['p_improve'], 3)})")
        rows.append({"technique": technique, "baseline": baseline, "verdict": "; ".join(words)})
    return pd.DataFrame(rows, columns=["technique", "baseline", "verdict"])


# ---- writing ----------------------------------------------------------------------------------
def compute_tables(loaded: Loaded) -> tuple[dict, dict]:
    grid = loaded.grid
    runs_df = tables.runs_frame(loaded.cells)
    floor_raw = perfect_generator_floor(seeds=grid.seeds)
    floor = {m: floor_raw[m] for m in METRIC_NAMES}
    comp = tables.comparison_table(runs_df, comparisons(grid.variants))
    t = {"runs": runs_df, "summary": tables.summary_table(runs_df, floor_raw), "comparisons": comp,
         "comparisons_mean": verdicts(comp, grid.frameworks), "resolution": pd.DataFrame()}
    if len(grid.seeds) > FEW_SEEDS:
        first = runs_df[runs_df["seed"].isin(grid.seeds[:FEW_SEEDS])]
        few = tables.comparison_table(first, comparisons(grid.variants))
        t["resolution"] = tables.resolution_table(few, comp, FEW_SEEDS, len(grid.seeds))
    if len(grid.frameworks) == 2:
        a, b = grid.frameworks
        t["pairing"] = tables.pairing_table(runs_df, a, b)
        t["signs"] = tables.sign_table(comp, a, b)
        t["paired"] = tables.paired_frame(runs_df, a, b)
    else:
        t["pairing"] = t["signs"] = t["paired"] = pd.DataFrame()
    return t, floor


def build_report(grid: Grid, runs_root, out, *, html: bool = True,
                 say: Callable[[str], None] | None = None) -> Path:
    """Write the report of ``grid`` from the runs under ``runs_root`` to the folder ``out``."""
    if grid.track == "image":  # the image track's report (same contract): report/image_build.py
        from .image_build import build_image_report

        return build_image_report(grid, runs_root, out, html=html, say=say)
    say = say or (lambda text: None)
    out = Path(out)
    say("loading runs")
    loaded = load_grid(grid, runs_root, say=say)
    say("computing tables")
    t, floor = compute_tables(loaded)
    out.parent.mkdir(parents=True, exist_ok=True)
    # A report killed earlier may have left its temporary folder (.<name>.tmp-*) beside ``out``:
    # remove those of this output only, then build the new folder whole in a temporary sibling and
    # swap it in (files.folder_atomic): ``out`` is the old report or the new one, never a mix.
    outdirs.remove_stale_temporaries(out.parent, out.name)
    with folder_atomic(out) as tmp:
        outdirs.write_manifest(tmp, "report")
        figs = make_figures(loaded, t["runs"], t["paired"], floor, tmp, say)
        blocks = build_blocks(loaded, t, figs, floor)
        write_text_atomic(tmp / "README.md", doc.to_markdown(blocks))
        if html:
            write_text_atomic(tmp / "index.html", doc.to_html(blocks, f"ganrepro report: grid {grid.name}"))
        for rel, text in runs_csv_files(t["runs"]).items():
            (tmp / rel).parent.mkdir(exist_ok=True)
            write_text_atomic(tmp / rel, text)
        for name in ("summary", "comparisons", "pairing", "signs"):
            write_text_atomic(tmp / f"{name}.csv", tables.to_csv(t[name]))
        if has_resolution(t):
            write_text_atomic(tmp / "resolution.csv", tables.to_csv(t["resolution"]))
    return out
