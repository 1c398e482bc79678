"""The image track's report tables (docs/images.md), as pandas DataFrames built from stored runs.

    runs_frame          one row per (variant, framework, seed): status and every stored image metric
    scored_frame        the same with the metrics of diverged runs set to NaN (what is summarised)
    summary_table       per variant and framework: median, IQR, IQM with bootstrap 95% interval of each
                        of IMAGE_METRICS, the divergence rate; the real images' floor row(s) last
    comparison_table    per (variant, baseline, question) of ``grids.image_comparisons``, framework and
                        compared metric: P(variant better than baseline) with its bootstrap interval
                        and a verdict
    sign_table          per comparison and metric: the sign of the effect in each framework, agree?
    frozen_table        the frozen-G experiment: per variant and framework, where norms/G vanished

Orientation: "better" is lower for fid, class_kl_uniform and mapping_instability (a more stable
latent mapping), higher for parzen_ll, inception_score and classes_covered
(:data:`LOWER_IS_BETTER_IMAGE`). P(improvement) = P(X_variant better than X_baseline) + P(tie) / 2
over a random pair of runs (``stats.probability_of_improvement``; a diverged run loses to every run
with a value), so a variant whose every run has a lower fid than every baseline run gets P = 1.

Framework-free; every number comes from ``stats`` (fixed bootstrap seed) and is deterministic.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd

from . import stats

IMAGE_METRICS = ("parzen_ll", "fid", "inception_score", "classes_covered", "class_kl_uniform", "mapping_instability")
"""The scores summarised per variant and framework."""

COMPARED_METRICS = ("mapping_instability", "fid", "parzen_ll", "inception_score")
"""The scores on which each variant is compared with its baseline (mapping_instability first: the
z-dim question)."""

LOWER_IS_BETTER_IMAGE = {"parzen_ll": False, "fid": True, "inception_score": False, "classes_covered": False,
                         "class_kl_uniform": True, "mapping_instability": True}

IMAGE_METRIC_TITLES = {
    "parzen_ll": "Parzen-window log-likelihood of the test images, nats (higher is better)",
    "fid": "Frechet distance on the suite's classifier features (lower is better)",
    "inception_score": "Inception-score analogue on the suite's classifier (higher is better)",
    "classes_covered": "Classes covered, of 10 (higher is better)",
    "class_kl_uniform": "KL of the class histogram to uniform, nats (lower is better)",
    "mapping_instability": "Mapping instability of the latent grid (lower is more stable)",
}
"""Section titles of the report (the image track's; the 1D ones are ``labels.METRIC_TITLES``)."""

IMAGE_METRIC_SHORT = {"parzen_ll": "Parzen LL", "fid": "FID", "inception_score": "IS",
                      "classes_covered": "classes covered", "class_kl_uniform": "class KL",
                      "mapping_instability": "mapping instability"}

EXTRA_COLUMNS = ("parzen_ll_stderr", "parzen_sigma", "sample_mean", "vanish_step", "loss_g_at_vanish",
                 "norms_g_median", "norms_d_median", "loss_g_final", "loss_d_final")
"""The other stored per-run values, kept in runs.csv."""

FLOOR_LABEL = "real images (floor)"
CLAIMED_LOSS_AT_VANISH = 16.0
"""Post 004: the gradient reaching G vanished only once L^_G exceeded about 16."""


def lower_is_better(metric: str) -> bool:
    return LOWER_IS_BETTER_IMAGE[metric]


def _value(metrics: dict, key: str) -> float:
    v = metrics.get(key, math.nan)
    return math.nan if v is None or isinstance(v, str) else float(v)


# ---- per run ----------------------------------------------------------------------------------
def runs_frame(cells: dict) -> pd.DataFrame:
    """``cells``: {(variant, framework): [StoredRun, ...]} -> one row per run, in the given order.

    Missing or null values (a vanish step that never came, a metric not stored) are NaN.
    """
    columns = ["variant", "framework", "seed", "status", *IMAGE_METRICS, *EXTRA_COLUMNS]
    rows = []
    for (variant, framework), runs in cells.items():
        for run in runs:
            row = {"variant": variant, "framework": framework, "seed": run.seed, "status": run.status}
            row.update({k: _value(run.metrics, k) for k in (*IMAGE_METRICS, *EXTRA_COLUMNS)})
            rows.append(row)
    return pd.DataFrame(rows, columns=columns)


def scored_frame(runs: pd.DataFrame) -> pd.DataFrame:
    """``runs`` with every metric of a diverged run set to NaN: a diverged run has no score (it is
    counted in the divergence rate, and loses every comparison)."""
    out = runs.copy()
    diverged = out["status"] == "diverged"
    for m in IMAGE_METRICS:
        out.loc[diverged, m] = math.nan
    return out


# ---- summary ----------------------------------------------------------------------------------
def _metric_summary(values) -> dict:
    q1, med, q3 = stats.quartiles(values)
    lo, hi = stats.bootstrap_interval(values)
    return {"median": med, "q1": q1, "q3": q3, "iqm": stats.iqm(values), "iqm_lo": lo, "iqm_hi": hi}


@dataclass(frozen=True)
class Floor:
    """The real images scored as if generated (``metrics.images.image_floor``) for one data set.

    ``metrics``: {metric: value} or None when it could not be computed (``note`` says why);
    ``test_accuracy``: the suite's classifier's accuracy on the test split.
    """

    dataset: str
    metrics: dict | None
    test_accuracy: float | None = None
    note: str = ""


def floor_value(floor: Floor, metric: str) -> float:
    """The floor's value of ``metric`` (NaN when not computed or not given)."""
    return math.nan if floor.metrics is None else _value(floor.metrics, metric)


def summary_table(scored: pd.DataFrame, floors=()) -> pd.DataFrame:
    """Per (variant, framework), in first-appearance order: n, ok, diverged, divergence_rate, and per
    metric ``<m>_n`` (runs with a value), ``<m>_median, <m>_q1, <m>_q3, <m>_iqm, <m>_iqm_lo, <m>_iqm_hi``.

    ``floors``: :class:`Floor` values; each computed one adds a row (variant :data:`FLOOR_LABEL`,
    framework "-") whose value is in the median column (one evaluation: no spread, no interval).
    """
    rows = []
    for (variant, framework), group in scored.groupby(["variant", "framework"], sort=False):
        n = len(group)
        row = {"variant": variant, "framework": framework, "n": n, "ok": int((group["status"] == "ok").sum()),
               "diverged": int((group["status"] == "diverged").sum())}
        row["divergence_rate"] = row["diverged"] / n
        for m in IMAGE_METRICS:
            values = group[m].to_numpy(dtype=np.float64)
            row[f"{m}_n"] = int(np.isfinite(values).sum())
            row.update({f"{m}_{k}": v for k, v in _metric_summary(values).items()})
        rows.append(row)
    for floor in floors:
        if floor.metrics is None:
            continue
        label = FLOOR_LABEL if len(floors) == 1 else f"{FLOOR_LABEL}, {floor.dataset}"
        row = {"variant": label, "framework": "-", "n": math.nan, "ok": math.nan, "diverged": math.nan,
               "divergence_rate": math.nan}
        for m in IMAGE_METRICS:
            value = _value(floor.metrics, m)
            row[f"{m}_n"] = math.nan
            row.update({f"{m}_{k}": math.nan for k in ("q1", "q3", "iqm", "iqm_lo", "iqm_hi")})
            row[f"{m}_median"] = value
        rows.append(row)
    return pd.DataFrame(rows)


# ---- comparisons ------------------------------------------------------------------------------
def verdict(p: float, lo: float, hi: float) -> str:
    """"better" when the 95% interval of P(improvement) lies above 0.5, "worse" below it, else "no
    resolved effect" (the interval contains 0.5); "n/a" without runs."""
    if not (math.isfinite(p) and math.isfinite(lo) and math.isfinite(hi)):
        return "n/a"
    return "better" if lo > 0.5 else "worse" if hi < 0.5 else "no resolved effect"


def comparison_table(scored: pd.DataFrame, comparisons, frameworks, metrics=COMPARED_METRICS) -> pd.DataFrame:
    """Per (variant, baseline, question) in ``comparisons``, framework and metric: the runs on each
    side, ``p_improve`` = P(variant run better than baseline run) (ties half, diverged runs lose),
    its stratified bootstrap interval ``p_lo, p_hi``, the ``verdict``, and the medians (over runs
    with a value) with ``median_diff`` = variant - baseline in the metric's units."""
    columns = ["variant", "baseline", "question", "framework", "metric", "n_variant", "n_baseline", "p_improve",
               "p_lo", "p_hi", "verdict", "median_variant", "median_baseline", "median_diff"]
    rows = []
    for variant, baseline, question in comparisons:
        for framework in frameworks:
            t = scored[(scored["variant"] == variant) & (scored["framework"] == framework)]
            b = scored[(scored["variant"] == baseline) & (scored["framework"] == framework)]
            if t.empty or b.empty:
                continue
            for m in metrics:
                tv, bv = t[m].to_numpy(dtype=np.float64), b[m].to_numpy(dtype=np.float64)
                lower = lower_is_better(m)
                p = stats.probability_of_improvement(tv, bv, lower_is_better=lower)
                lo, hi = stats.probability_of_improvement_interval(tv, bv, lower_is_better=lower)
                mt, mb = stats.quartiles(tv)[1], stats.quartiles(bv)[1]
                rows.append({"variant": variant, "baseline": baseline, "question": question, "framework": framework,
                             "metric": m, "n_variant": len(tv), "n_baseline": len(bv), "p_improve": p, "p_lo": lo,
                             "p_hi": hi, "verdict": verdict(p, lo, hi), "median_variant": mt, "median_baseline": mb,
                             "median_diff": mt - mb})
    return pd.DataFrame(rows, columns=columns)


def sign_table(comparisons: pd.DataFrame, a: str = "torch", b: str = "tf") -> pd.DataFrame:
    """Per (variant, baseline, metric) compared in both frameworks: sign(P - 0.5) in each (+1 the variant is
    better, -1 worse, 0 exactly even), whether the signs agree, and whether each framework's 95%
    interval excludes 0.5 (the effect is resolved)."""
    columns = ["variant", "baseline", "question", "metric", f"p_improve_{a}", f"p_improve_{b}", f"sign_{a}",
               f"sign_{b}", "agree", f"resolved_{a}", f"resolved_{b}"]
    rows: list[dict] = []
    if comparisons.empty:
        return pd.DataFrame(rows, columns=columns)
    for (variant, baseline, metric), group in comparisons.groupby(["variant", "baseline", "metric"], sort=False):
        by_fw = {r["framework"]: r for _, r in group.iterrows()}
        if a not in by_fw or b not in by_fw:
            continue
        ra, rb = by_fw[a], by_fw[b]
        sa, sb = stats.sign(ra["p_improve"] - 0.5), stats.sign(rb["p_improve"] - 0.5)
        rows.append({"variant": variant, "baseline": baseline, "question": ra["question"], "metric": metric,
                     f"p_improve_{a}": ra["p_improve"], f"p_improve_{b}": rb["p_improve"], f"sign_{a}": sa,
                     f"sign_{b}": sb, "agree": sa == sb, f"resolved_{a}": ra["verdict"] in ("better", "worse"),
                     f"resolved_{b}": rb["verdict"] in ("better", "worse")})
    return pd.DataFrame(rows, columns=columns)


def sign_counts(signs: pd.DataFrame, a: str = "torch", b: str = "tf") -> dict:
    """{"n", "agree", "resolved_both", "resolved_agree"}: how many effects agree in sign between the
    frameworks, and of those resolved in both frameworks."""
    if signs.empty:
        return {"n": 0, "agree": 0, "resolved_both": 0, "resolved_agree": 0}
    both = signs[signs[f"resolved_{a}"].astype(bool) & signs[f"resolved_{b}"].astype(bool)]
    return {"n": len(signs), "agree": int(signs["agree"].astype(bool).sum()), "resolved_both": len(both),
            "resolved_agree": int(both["agree"].astype(bool).sum())}


# ---- the frozen-G experiment ------------------------------------------------------------------
def _median(values) -> float:
    return stats.quartiles(values)[1]


def frozen_table(runs: pd.DataFrame, variants, batch_size: dict) -> pd.DataFrame:
    """Per variant in ``variants`` (the frozen-G one, then its trained counterpart) and framework:
    n seeds, ``vanished`` (seeds whose norms/G fell below 1e-3 x its first recorded value) and its
    share, over those seeds the median, min and max ``vanish_step`` and the median images trained
    on by then, (vanish_step + 1) x B (``batch_size``: variant -> B), the median, min and max
    ``loss_g_at_vanish`` (L^_G at that step) and how many exceed :data:`CLAIMED_LOSS_AT_VANISH`;
    over all seeds the median final loss/G and the median norms/G."""
    rows = []
    for variant in variants:
        for framework in dict.fromkeys(runs["framework"]):
            g = runs[(runs["variant"] == variant) & (runs["framework"] == framework)]
            if g.empty:
                continue
            step = g["vanish_step"].to_numpy(dtype=np.float64)
            loss = g["loss_g_at_vanish"].to_numpy(dtype=np.float64)
            hit = np.isfinite(step)
            at = loss[hit & np.isfinite(loss)]
            rows.append({
                "variant": variant, "framework": framework, "n": len(g), "vanished": int(hit.sum()),
                "vanished_share": float(hit.mean()),
                "vanish_step_median": _median(step),
                "vanish_step_min": float(step[hit].min()) if hit.any() else math.nan,
                "vanish_step_max": float(step[hit].max()) if hit.any() else math.nan,
                "vanish_images_median": _median((step + 1.0) * batch_size[variant]),
                "loss_g_at_vanish_median": _median(at),
                "loss_g_at_vanish_min": float(at.min()) if at.size else math.nan,
                "loss_g_at_vanish_max": float(at.max()) if at.size else math.nan,
                "loss_above_claim": int((at > CLAIMED_LOSS_AT_VANISH).sum()),
                "loss_g_final_median": _median(g["loss_g_final"].to_numpy(dtype=np.float64)),
                "norms_g_median": _median(g["norms_g_median"].to_numpy(dtype=np.float64)),
            })
    return pd.DataFrame(rows)
