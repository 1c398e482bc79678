"""The report's tables, as pandas DataFrames built from stored runs.

    runs_frame          one row per (variant, framework, seed): status and metrics
    summary_table       per variant and framework: median, IQR, IQM with bootstrap 95% interval of
                        every metric; divergence and collapse rates; the perfect-generator floor row
    comparison_table    per technique vs its baseline, framework and metric: probability of
                        improvement with interval, Cliff's delta, Cohen's d, difference of medians
    pairing_table       TF vs PyTorch per variant and metric: medians side by side and the per-seed
                        paired differences (TF - PyTorch)
    sign_table          per technique and metric: the sign of the effect in each framework, agree?
    resolution_table    per comparison: its verdict on the grid's first seeds (32) and on all of them

Framework-free; every number comes from ``stats`` and is deterministic.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from . import stats
from .runs import LOWER_IS_BETTER, METRIC_NAMES

STATUS_COLUMNS = ("ok", "collapsed", "diverged")
FLOOR_LABEL = "perfect generator (floor)"


def runs_frame(cells: dict) -> pd.DataFrame:
    """``cells``: {(variant, framework): [StoredRun, ...]} -> one row per run, in the given order."""
    rows = []
    for (variant, framework), runs in cells.items():
        for run in runs:
            row = {"variant": variant, "framework": framework, "seed": run.seed, "status": run.status}
            row.update({m: run.metrics.get(m, math.nan) for m in (*METRIC_NAMES, "mean", "std")})
            rows.append(row)
    columns = ["variant", "framework", "seed", "status", *METRIC_NAMES, "mean", "std"]
    return pd.DataFrame(rows, columns=columns)


def _metric_summary(values) -> dict:
    q1, med, q3 = stats.quartiles(values)
    lo, hi = stats.bootstrap_interval(values)
    return {"median": med, "q1": q1, "q3": q3, "iqm": stats.iqm(values), "iqm_lo": lo, "iqm_hi": hi}


def summary_table(runs: pd.DataFrame, floor: dict | None = None) -> pd.DataFrame:
    """Per (variant, framework), in first-appearance order: n, status counts and rates, and for
    each metric ``<m>_median, <m>_q1, <m>_q3, <m>_iqm, <m>_iqm_lo, <m>_iqm_hi`` over the runs with a
    value (diverged runs have none). ``floor``: {"seeds": [...], "per_seed": {metric: [...]}}
    (``metrics.perfect_generator_floor``) appended as a row with framework "-"."""
    rows = []
    for (variant, framework), group in runs.groupby(["variant", "framework"], sort=False):
        n = len(group)
        row = {"variant": variant, "framework": framework, "n": n}
        for status in STATUS_COLUMNS:
            row[status] = int((group["status"] == status).sum())
        row["divergence_rate"] = row["diverged"] / n
        row["collapse_rate"] = row["collapsed"] / n
        for m in METRIC_NAMES:
            row.update({f"{m}_{k}": v for k, v in _metric_summary(group[m].to_numpy()).items()})
        rows.append(row)
    if floor is not None:
        n = len(floor["seeds"])
        row = {"variant": FLOOR_LABEL, "framework": "-", "n": n, "ok": n, "collapsed": 0, "diverged": 0,
               "divergence_rate": 0.0, "collapse_rate": 0.0}
        for m in METRIC_NAMES:
            row.update({f"{m}_{k}": v for k, v in _metric_summary(floor["per_seed"][m]).items()})
        rows.append(row)
    return pd.DataFrame(rows)


def comparison_table(runs: pd.DataFrame, pairs) -> pd.DataFrame:
    """Per (technique, baseline) in ``pairs``, framework and metric: ``p_improve`` (P(technique
    run better than baseline run)) with its bootstrap interval, ``cliffs_delta`` and its label,
    ``cohens_d`` (positive: better) and ``median_diff`` (technique - baseline, raw units)."""
    rows = []
    frameworks = list(dict.fromkeys(runs["framework"]))
    for technique, baseline in pairs:
        for framework in frameworks:
            t = runs[(runs["variant"] == technique) & (runs["framework"] == framework)]
            b = runs[(runs["variant"] == baseline) & (runs["framework"] == framework)]
            if t.empty or b.empty:
                continue
            for m in METRIC_NAMES:
                lower = LOWER_IS_BETTER[m]
                tv, bv = t[m].to_numpy(), b[m].to_numpy()
                p = stats.probability_of_improvement(tv, bv, lower_is_better=lower)
                lo, hi = stats.probability_of_improvement_interval(tv, bv, lower_is_better=lower)
                delta = 2.0 * p - 1.0
                rows.append({"technique": technique, "baseline": baseline, "framework": framework, "metric": m,
                             "p_improve": p, "p_lo": lo, "p_hi": hi, "cliffs_delta": delta,
                             "effect": stats.effect_label(delta),
                             "cohens_d": stats.cohens_d(tv, bv, lower_is_better=lower),
                             "median_diff": stats.quartiles(tv)[1] - stats.quartiles(bv)[1]})
    return pd.DataFrame(rows)


def paired_frame(runs: pd.DataFrame, a: str = "torch", b: str = "tf") -> pd.DataFrame:
    """One row per (variant, seed) run in both frameworks: status and metrics of each, suffixed
    ``_<framework>``."""
    keep = ["variant", "seed", "status", *METRIC_NAMES]
    left = runs[runs["framework"] == a][keep]
    right = runs[runs["framework"] == b][keep]
    return left.merge(right, on=["variant", "seed"], suffixes=(f"_{a}", f"_{b}"), sort=False)


def pairing_table(runs: pd.DataFrame, a: str = "torch", b: str = "tf") -> pd.DataFrame:
    """Per variant and metric: the median in each framework, and over the seeds run in both,
    the median and the largest absolute paired difference (b - a), the share of seeds where
    b's run is better, and the share of seeds whose status is the same in both."""
    paired = paired_frame(runs, a, b)
    rows = []
    for variant, group in paired.groupby("variant", sort=False):
        same_status = float((group[f"status_{a}"] == group[f"status_{b}"]).mean())
        for m in METRIC_NAMES:
            va, vb = group[f"{m}_{a}"].to_numpy(), group[f"{m}_{b}"].to_numpy()
            diff = vb - va
            ok = np.isfinite(diff)
            better = -diff[ok] if LOWER_IS_BETTER[m] else diff[ok]
            rows.append({"variant": variant, "metric": m, "pairs": len(group), "pairs_with_value": int(ok.sum()),
                         f"median_{a}": stats.quartiles(va)[1], f"median_{b}": stats.quartiles(vb)[1],
                         "median_paired_diff": float(np.median(diff[ok])) if ok.any() else math.nan,
                         "max_abs_paired_diff": float(np.max(np.abs(diff[ok]))) if ok.any() else math.nan,
                         f"share_{b}_better": float(np.mean(better > 0)) if ok.any() else math.nan,
                         "same_status": same_status})
    return pd.DataFrame(rows)


def sign_table(comparisons: pd.DataFrame, a: str = "torch", b: str = "tf") -> pd.DataFrame:
    """Per technique and metric: the effect's sign in each framework (+1 the technique helps,
    -1 it hurts, 0 exactly no difference: P(improvement) = 0.5), and whether they agree; also
    whether each framework's 95% interval excludes 0.5 (the effect is resolved)."""
    rows: list[dict] = []
    if comparisons.empty:
        return pd.DataFrame(rows)
    for (technique, metric), group in comparisons.groupby(["technique", "metric"], sort=False):
        by_fw = {r["framework"]: r for _, r in group.iterrows()}
        if a not in by_fw or b not in by_fw:
            continue
        ra, rb = by_fw[a], by_fw[b]
        sa, sb = stats.sign(ra["p_improve"] - 0.5), stats.sign(rb["p_improve"] - 0.5)
        rows.append({"technique": technique, "baseline": ra["baseline"], "metric": metric,
                     f"p_improve_{a}": ra["p_improve"], f"p_improve_{b}": rb["p_improve"],
                     f"sign_{a}": sa, f"sign_{b}": sb, "agree": sa == sb,
                     f"resolved_{a}": not (ra["p_lo"] <= 0.5 <= ra["p_hi"]),
                     f"resolved_{b}": not (rb["p_lo"] <= 0.5 <= rb["p_hi"])})
    return pd.DataFrame(rows)


def verdict(p_lo: float, p_hi: float) -> str:
    """"helps" when the P(improvement) interval lies above 0.5, "hurts" below, else "unresolved"."""
    if not (math.isfinite(p_lo) and math.isfinite(p_hi)):
        return "n/a"
    return "helps" if p_lo > 0.5 else "hurts" if p_hi < 0.5 else "unresolved"


def resolution_table(few: pd.DataFrame, many: pd.DataFrame, n_few: int, n_many: int) -> pd.DataFrame:
    """Per comparison (technique, baseline, framework, metric) of ``many`` (``comparison_table`` of
    all the grid's seeds, ``n_many`` per cell) beside the same comparison in ``few`` (the grid's
    first ``n_few`` seeds): P(improvement) with interval and :func:`verdict` at each size, and
    ``newly_resolved``: unresolved with ``n_few`` seeds, resolved with ``n_many``."""
    key = ["technique", "baseline", "framework", "metric"]
    keep = [*key, "p_improve", "p_lo", "p_hi"]
    merged = many[keep].merge(few[keep], on=key, how="left", suffixes=(f"_{n_many}", f"_{n_few}"), sort=False)
    rows = []
    for _, r in merged.iterrows():
        before = verdict(r[f"p_lo_{n_few}"], r[f"p_hi_{n_few}"])
        after = verdict(r[f"p_lo_{n_many}"], r[f"p_hi_{n_many}"])
        rows.append({**{k: r[k] for k in key},
                     **{f"{c}_{n}": r[f"{c}_{n}"] for n in (n_few, n_many) for c in ("p_improve", "p_lo", "p_hi")},
                     f"verdict_{n_few}": before, f"verdict_{n_many}": after,
                     "newly_resolved": before == "unresolved" and after in ("helps", "hurts")})
    return pd.DataFrame(rows)


# ---- text -------------------------------------------------------------------------------------
def fmt(value, digits: int = 4) -> str:
    """A table cell: '-' for missing/NaN, integers as is, floats with ``digits`` significant digits."""
    if value is None:
        return "-"
    if isinstance(value, (bool, np.bool_)):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        v = float(value)
        if not math.isfinite(v):
            return "-" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        return f"{v:.{digits}g}"
    return str(value)


def markdown(df: pd.DataFrame, columns=None, headers=None, digits: int = 4) -> str:
    """A GitHub Markdown table of ``df``'s ``columns`` (all by default), cells by :func:`fmt`."""
    columns = list(columns or df.columns)
    headers = list(headers or columns)
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(fmt(row[c], digits).replace("|", "\\|") for c in columns) + " |")
    return "\n".join(lines) + "\n"


def to_csv(df: pd.DataFrame) -> str:
    """CSV text with full float precision (repr round-trips) and Unix line ends."""
    return df.to_csv(index=False, lineterminator="\n", float_format="%.17g")
