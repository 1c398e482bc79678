"""``ganrepro report``: the statistics (exact values on small cases), the tables, and the whole
report built twice from the same runs giving the same bytes."""
from __future__ import annotations

import io
import math

import numpy as np
import pandas as pd
import pytest

from ganrepro import sweep as sw
from ganrepro.cli import main
from ganrepro.grids import Grid
from ganrepro.impls import FRAMEWORKS
from ganrepro.report import stats, tables
from ganrepro.report.build import IncompleteRunsError, build_report, load_grid

# ---- statistics -------------------------------------------------------------------------------


def test_iqm_is_the_mean_of_the_middle_half():
    assert stats.iqm([1, 2, 3, 4, 5, 6, 7, 100]) == pytest.approx(4.5)  # mean of 3, 4, 5, 6
    # n = 5: cuts at 1.25 and 3.75 -> weights 0, .75, 1, .75, 0
    assert stats.iqm([0, 1, 2, 3, 1000]) == pytest.approx((0.75 * 1 + 2 + 0.75 * 3) / 2.5)
    assert stats.iqm([np.nan, 2.0]) == 2.0 and math.isnan(stats.iqm([np.nan]))
    rows = np.random.default_rng(0).normal(size=(7, 13))
    assert np.allclose(stats.iqm_rows(rows), [stats.iqm(r) for r in rows], rtol=1e-14)


def test_bootstrap_interval_is_deterministic_and_brackets_the_estimate():
    x = np.random.default_rng(1).lognormal(size=32)
    lo, hi = stats.bootstrap_interval(x)
    assert lo < stats.iqm(x) < hi and (lo, hi) == stats.bootstrap_interval(x)
    assert stats.bootstrap_interval([3.0]) == (3.0, 3.0)
    assert all(math.isnan(v) for v in stats.bootstrap_interval([np.nan]))


def test_probability_of_improvement_counts_pairs_ties_half_and_diverged_runs_lose():
    # lower is better: technique [1, 2] vs baseline [2, 3]: pairs (1,2) (1,3) (2,3) win, (2,2) ties
    assert stats.probability_of_improvement([1, 2], [2, 3], lower_is_better=True) == pytest.approx(3.5 / 4)
    assert stats.probability_of_improvement([1, 2], [2, 3], lower_is_better=False) == pytest.approx(0.5 / 4)
    assert stats.probability_of_improvement([np.nan], [5.0], lower_is_better=True) == 0.0
    assert stats.probability_of_improvement([np.nan], [np.nan], lower_is_better=False) == 0.5
    assert stats.cliffs_delta([1, 2], [2, 3], lower_is_better=True) == pytest.approx(0.75)
    lo, hi = stats.probability_of_improvement_interval(np.arange(20.0), np.arange(20.0) + 5, lower_is_better=True)
    assert lo < 0.64 < hi  # P = 0.6375 here


@pytest.mark.parametrize("sizes", [(1, 3), (5, 7), (32, 32), (300, 1024)])
@pytest.mark.parametrize("kind", ["continuous", "ties", "diverged"])
def test_resampled_probability_of_improvement_equals_the_per_resample_count_bitwise(sizes, kind):
    """The interval's fast path (draw counts and cumulative sums) gives the same value, bit for
    bit, as counting each resample's pairs (``_prob_greater``) on the same draws."""
    rng = np.random.default_rng(sum(sizes))
    a, b = rng.normal(size=sizes[0]), rng.normal(0.3, size=sizes[1])
    if kind == "ties":
        a, b = np.round(a), np.round(b)
    if kind == "diverged":
        a[::3], b[::4] = np.nan, np.nan
    a, b = stats._oriented(a, False), stats._oriented(b, False)
    ia, ib = rng.integers(0, a.size, size=(200, a.size)), rng.integers(0, b.size, size=(200, b.size))
    counted = np.array([stats._prob_greater(a[i], b[j]) for i, j in zip(ia, ib, strict=True)])
    assert stats._resampled_prob_greater(a, b, ia, ib).tobytes() == counted.tobytes()


def test_effect_sizes_are_oriented_so_positive_means_better():
    better, worse = [1.0, 1.1, 0.9], [2.0, 2.1, 1.9]
    assert stats.cohens_d(better, worse, lower_is_better=True) > 0
    assert stats.cohens_d(better, worse, lower_is_better=False) < 0
    assert stats.effect_label(0.1) == "negligible" and stats.effect_label(-0.5) == "large"
    assert math.isnan(stats.cohens_d([1.0], worse, lower_is_better=True))
    assert stats.sign(0.2) == 1 and stats.sign(-1e-3) == -1 and stats.sign(0.0) == 0 and stats.sign(np.nan) == 0


# ---- tables -------------------------------------------------------------------------------------
def fake_runs() -> pd.DataFrame:
    rows = []
    for variant, shift in (("base", 0.0), ("tech", -0.05)):
        for framework in ("torch", "tf"):
            for seed in range(8):
                ks = 0.1 + shift + 0.01 * seed + (0.001 if framework == "tf" else 0.0)
                status = "diverged" if (variant, framework, seed) == ("base", "tf", 7) else "ok"
                value = math.nan if status == "diverged" else ks
                rows.append({"variant": variant, "framework": framework, "seed": seed, "status": status,
                             "ks": value, "w1": value, "kde_ll": -value, "mean": 4.0, "std": 0.5})
    return pd.DataFrame(rows)


def test_summary_counts_statuses_and_summarises_runs_with_a_value():
    summary = tables.summary_table(fake_runs(), {"seeds": [0, 1], "per_seed": {"ks": [0.01, 0.02],
                                                                               "w1": [0.01, 0.02],
                                                                               "kde_ll": [-0.7, -0.8]}})
    row = summary[(summary["variant"] == "base") & (summary["framework"] == "tf")].iloc[0]
    assert (row["n"], row["ok"], row["diverged"], row["divergence_rate"]) == (8, 7, 1, 1 / 8)
    assert row["ks_median"] == pytest.approx(0.131)  # seeds 0..6 of tf: 0.101 .. 0.161
    assert row["ks_iqm_lo"] <= row["ks_iqm"] <= row["ks_iqm_hi"]
    assert summary.iloc[-1]["variant"] == tables.FLOOR_LABEL and summary.iloc[-1]["ks_median"] == pytest.approx(0.015)


def test_comparisons_pairing_and_sign_agreement():
    runs = fake_runs()
    comp = tables.comparison_table(runs, [("tech", "base")])
    assert len(comp) == 2 * 3
    ks = comp[(comp["metric"] == "ks") & (comp["framework"] == "torch")].iloc[0]
    assert ks["p_improve"] > 0.5 and ks["cliffs_delta"] > 0 and ks["cohens_d"] > 0 and ks["median_diff"] < 0
    kde = comp[(comp["metric"] == "kde_ll") & (comp["framework"] == "tf")].iloc[0]
    assert kde["p_improve"] > 0.5  # higher kde_ll is better; the technique's is higher
    signs = tables.sign_table(comp)
    assert len(signs) == 3 and signs["agree"].all()
    pairing = tables.pairing_table(runs)
    row = pairing[(pairing["variant"] == "tech") & (pairing["metric"] == "ks")].iloc[0]
    assert row["median_paired_diff"] == pytest.approx(0.001) and row["share_tf_better"] == 0.0
    base = pairing[(pairing["variant"] == "base") & (pairing["metric"] == "ks")].iloc[0]
    assert base["pairs_with_value"] == 7 and base["same_status"] == pytest.approx(7 / 8)


def test_markdown_and_csv_text():
    df = pd.DataFrame({"a": ["x|y", "z"], "b": [0.123456789, math.nan], "c": [True, False]})
    assert tables.markdown(df) == "| a | b | c |\n|---|---|---|\n| x\\|y | 0.1235 | yes |\n| z | - | no |\n"
    assert tables.to_csv(df).splitlines()[1] == "x|y,0.123456789,True"


# ---- the whole report ---------------------------------------------------------------------------
GRID = Grid(name="tiny", description="test grid", variants=("blog2017/vanilla", "blog2017/minibatch"),
            frameworks=tuple(FRAMEWORKS), seeds=(0, 1, 2, 3),
            overrides=(("num_steps", 60), ("curve_interval", 5)))


@pytest.fixture(scope="module")
def swept(tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    sw.sweep(GRID, root, executor=sw.LocalExecutor(1))
    return root


@pytest.mark.slow
def test_report_regenerates_byte_for_byte(swept, tmp_path):
    first = build_report(GRID, swept, tmp_path / "a")
    second = build_report(GRID, swept, tmp_path / "b", html=True)
    files = sorted(p.relative_to(first) for p in first.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(second) for p in second.rglob("*") if p.is_file())
    names = {str(p) for p in files}
    assert {"README.md", "index.html", "runs.csv", "summary.csv", "comparisons.csv", "pairing.csv",
            "signs.csv"} <= names
    assert sum(n.endswith(".png") for n in names) == 3 + 1 + 2 * 2  # distributions, scatter, 2 cells x 2
    for rel in files:
        assert (first / rel).read_bytes() == (second / rel).read_bytes(), rel
    text = (first / "README.md").read_text()
    for needle in ("IQM 95% CI", "perfect generator (floor)", "blog2017/minibatch", "signs agree",
                   "seed by seed", "figures/distribution-ks.png"):
        assert needle in text
    runs = pd.read_csv(first / "runs.csv")
    assert len(runs) == len(GRID.variants) * len(GRID.frameworks) * len(GRID.seeds)
    # rebuilding over an existing report replaces it whole, leaving no temporary folder behind
    build_report(GRID, swept, tmp_path / "a")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a", "b"]


@pytest.mark.slow
def test_report_of_an_unfinished_sweep_is_refused(swept, tmp_path, capsys):
    bigger = Grid(name="tiny", description="test grid", variants=GRID.variants, frameworks=GRID.frameworks,
                  seeds=(0, 1, 2, 3, 4), overrides=GRID.overrides)
    expected = r"runs missing .* 1 of its 5 seeds not stored \(seeds 4\).*ganrepro sweep --grid tiny"
    with pytest.raises(IncompleteRunsError, match=expected):
        load_grid(bigger, swept)
    (tmp_path / "runs").mkdir()  # an empty runs folder (the report may not lie inside it)
    assert main(["report", "--grid", "smoke", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "r")]) == 2
    assert "runs missing" in capsys.readouterr().err and not (tmp_path / "r").exists()


def test_resolution_table_marks_what_more_seeds_resolve():
    """An effect unresolved on few seeds and resolved on many is 'newly resolved'; one resolved at
    both sizes, or at neither, is not; the report's block lists only the newly resolved ones."""
    from ganrepro.report.build import resolution_blocks

    key = {"baseline": "base", "framework": "torch", "metric": "ks"}
    few = pd.DataFrame([{**key, "technique": "t1", "p_improve": 0.55, "p_lo": 0.40, "p_hi": 0.70},
                        {**key, "technique": "t2", "p_improve": 0.80, "p_lo": 0.65, "p_hi": 0.93},
                        {**key, "technique": "t3", "p_improve": 0.50, "p_lo": 0.35, "p_hi": 0.65}])
    many = pd.DataFrame([{**key, "technique": "t1", "p_improve": 0.56, "p_lo": 0.53, "p_hi": 0.59},
                         {**key, "technique": "t2", "p_improve": 0.79, "p_lo": 0.77, "p_hi": 0.81},
                         {**key, "technique": "t3", "p_improve": 0.49, "p_lo": 0.47, "p_hi": 0.51}])
    table = tables.resolution_table(few, many, 32, 1024)
    assert list(table["newly_resolved"]) == [True, False, False]
    assert list(table["verdict_32"]) == ["unresolved", "helps", "unresolved"]
    assert list(table["verdict_1024"]) == ["helps", "helps", "unresolved"]
    assert tables.verdict(float("nan"), 0.6) == "n/a" and tables.verdict(0.1, 0.4) == "hurts"
    text = "\n".join(str(getattr(b, "text", "")) for b in resolution_blocks(table, 1024))
    assert "Of 3 comparisons" in text and "1 are unresolved on the grid's first 32 seeds" in text


def test_a_grid_of_many_runs_writes_its_rows_as_one_csv_per_variant(monkeypatch):
    from ganrepro.report import build

    runs = pd.DataFrame({"variant": ["a/x", "a/x", "b", "b", "b"], "framework": ["torch", "tf", "torch", "tf", "tf"],
                         "seed": [0, 0, 0, 0, 1], "ks": [0.1, 0.2, 0.30000000000000004, 0.4, 0.5]})
    assert list(build.runs_csv_files(runs)) == ["runs.csv"]
    monkeypatch.setattr(build, "RUNS_CSV_MAX_ROWS", 4)
    files = build.runs_csv_files(runs)
    assert list(files) == ["runs/a__x.csv", "runs/b.csv"]
    back = pd.concat([pd.read_csv(io.StringIO(text)) for text in files.values()], ignore_index=True)
    pd.testing.assert_frame_equal(back, runs)
