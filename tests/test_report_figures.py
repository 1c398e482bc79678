"""The report's figures and the training animation: PNG/GIF output, byte-for-byte repeatability
(same process, fresh process with another PYTHONHASHSEED, a user's rcParams in force), the choice
of representative runs, diverged and collapsed runs, and that the animation's chunking leaves the
run unchanged.

Stored runs are built once per module: a real PyTorch cell (blog2017/vanilla, 100 steps, seeds
0-2, saved as ``ganrepro run --out`` saves them) and a synthetic cell written with the same saver
from hand-made arrays (a good seed, a zero-width collapse, a diverged seed with NaN samples and
non-finite curves, a wide seed with far outliers). Figures need no framework; the real cell and
the animation need PyTorch (skipped without it, failed under GANREPRO_REQUIRE_FRAMEWORKS=1).
"""
from __future__ import annotations

import dataclasses
import hashlib
import io
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pandas as pd
import pytest
from PIL import Image

from ganrepro import impls, records
from ganrepro.animate import animate_run, frame_steps
from ganrepro.report import figures
from ganrepro.report.runs import METRIC_NAMES, StoredRun, load_cell
from ganrepro.training import CURVES, TrainingOutput, recorded_steps, train
from ganrepro.variants import variant_config

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
REAL_VARIANT = "blog2017/vanilla"
SYNTH_VARIANT = "synthetic"


def need_torch() -> None:
    if not impls.available("torch"):
        if os.environ.get("GANREPRO_REQUIRE_FRAMEWORKS") == "1":
            pytest.fail("framework 'torch' is required (GANREPRO_REQUIRE_FRAMEWORKS=1) but not installed")
        pytest.skip("framework 'torch' not installed")


# ---- stored runs --------------------------------------------------------------------------------
def synthetic_output() -> TrainingOutput:
    """Four hand-made seeds: good, collapsed to one value, diverged (NaN), wide with outliers."""
    config = variant_config(REAL_VARIANT, num_steps=50, seeds=(0, 1, 2, 3))
    rng = np.random.default_rng(1234)
    n = 2_000  # fewer than a real run's 10,000 samples: scoring is the slow part
    samples = np.stack([
        rng.normal(4.0, 0.5, n),
        np.full(n, 4.0),
        np.full(n, np.nan),
        np.concatenate([rng.normal(3.0, 6.0, n - 10), np.full(10, 1e6)]),
    ]).astype(np.float32)
    boundary_x = np.linspace(-8.0, 8.0, n)
    boundary = np.stack([1.0 / (1.0 + np.exp(-(boundary_x - 3.0) * k)) for k in (1.0, 5.0, 0.0, -0.5)])
    boundary[2] = np.nan
    steps = recorded_steps(config.iterations, config.curve_interval)
    curves = np.abs(rng.normal(1.0, 0.3, (len(steps), 4, len(CURVES))))
    curves[len(steps) // 2:, 2, :] = np.inf
    curves[-1, 2, :] = np.nan
    return TrainingOutput(config=config, framework="torch", weights={}, samples_grid=samples,
                          samples_uniform=samples, boundary_x=boundary_x, boundary=boundary.astype(np.float32),
                          curve_steps=steps, curves=curves.astype(np.float32), timings={})


def save(output: TrainingOutput, root: Path) -> list[StoredRun]:
    records.save_runs(output, records.score(output), root)
    return load_cell(root, output.config.slug, output.framework)


@pytest.fixture(scope="module")
def synthetic_runs(tmp_path_factory) -> list[StoredRun]:
    return save(synthetic_output(), tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="module")
def real_runs(tmp_path_factory) -> list[StoredRun]:
    need_torch()
    config = variant_config(REAL_VARIANT, num_steps=100, seeds=(0, 1, 2))
    return save(train(config, "torch"), tmp_path_factory.mktemp("real"))


@pytest.fixture(scope="module")
def run_sets(real_runs, synthetic_runs) -> dict:
    return {REAL_VARIANT: real_runs, SYNTH_VARIANT: synthetic_runs}


# ---- the figures, as the report builds them ----------------------------------------------------
def metrics_frame(run_sets: dict) -> pd.DataFrame:
    """One row per run; the real runs appear a second time as "tf" (the figures only group by name)."""
    rows = []
    for variant, runs in run_sets.items():
        for framework in ("torch", "tf"):
            for run in runs:
                rows.append({"variant": variant, "framework": framework, "seed": run.seed, "status": run.status,
                             **{m: run.metrics[m] for m in METRIC_NAMES}})
    return pd.DataFrame(rows)


def paired_frame(df: pd.DataFrame) -> pd.DataFrame:
    torch_rows = df[df["framework"] == "torch"].drop(columns=["framework", "status"])
    tf_rows = df[df["framework"] == "tf"].drop(columns=["framework", "status"]).copy()
    tf_rows["ks"] = tf_rows["ks"] * 1.01  # off the diagonal a little
    return torch_rows.merge(tf_rows, on=["variant", "seed"], suffixes=("_torch", "_tf"))


def build_figures(run_sets: dict, names=None) -> dict:
    """name -> Figure for each of ``names`` (default: every figure kind), from the stored runs."""
    real, synth = run_sets[REAL_VARIANT], run_sets[SYNTH_VARIANT]
    df = metrics_frame(run_sets)
    makers = {
        "density": lambda: figures.density_figure(figures.representative_runs(real), f"{REAL_VARIANT}, PyTorch"),
        "density_synthetic": lambda: figures.density_figure(figures.representative_runs(synth, "w1"), "synthetic"),
        "curves": lambda: figures.curves_figure({"tf": real, "torch": real}, REAL_VARIANT),
        "curves_synthetic": lambda: figures.curves_figure({"torch": synth}, "synthetic"),
        "distribution_ks": lambda: figures.metric_distributions_figure(df, "ks", floor=0.0091),
        "distribution_kde": lambda: figures.metric_distributions_figure(df, "kde_ll", floor=-0.728),
        "scatter": lambda: figures.framework_scatter_figure(paired_frame(df)),
    }
    return {name: makers[name]() for name in (names or makers)}


def render_all(roots: dict, out_dir) -> None:
    """Write every figure as ``<name>.png`` under ``out_dir`` from runs under ``roots`` (the fresh-process test)."""
    run_sets = {variant: load_cell(root, slug, "torch") for variant, (root, slug) in roots.items()}
    for name, fig in build_figures(run_sets).items():
        figures.save_png(fig, Path(out_dir) / f"{name}.png")


def rendered(run_sets: dict, names=None) -> dict:
    return {name: figures.png_bytes(fig) for name, fig in build_figures(run_sets, names).items()}


def digests(blobs: dict) -> dict:
    return {name: hashlib.sha256(data).hexdigest() for name, data in blobs.items()}


@pytest.fixture(scope="module")
def pngs(run_sets) -> dict:
    return rendered(run_sets)


# ---- representative runs ------------------------------------------------------------------------
def fake_run(seed: int, ks: float, kde_ll: float = -1.0, framework: str = "torch") -> StoredRun:
    status = "diverged" if math.isnan(ks) else "ok"
    return StoredRun(slug="s", framework=framework, seed=seed, status=status,
                     metrics={"ks": ks, "w1": ks, "kde_ll": kde_ll}, config={}, path=Path("."))


def test_representative_runs_rank_lower_is_better_nan_worst_ties_by_seed():
    runs = [fake_run(4, 0.3), fake_run(0, math.nan), fake_run(2, 0.1), fake_run(1, 0.3), fake_run(3, 0.2),
            fake_run(5, math.nan)]
    assert [r.seed for r in figures.rank_runs(runs, "ks")] == [2, 3, 1, 4, 0, 5]
    chosen = figures.representative_runs(runs, "ks")
    assert list(chosen) == ["best", "median", "worst"]
    assert {k: r.seed for k, r in chosen.items()} == {"best": 2, "median": 1, "worst": 5}


def test_representative_runs_kde_higher_is_better():
    runs = [fake_run(0, 0.1, -2.0), fake_run(1, 0.1, -0.8), fake_run(2, 0.1, math.nan), fake_run(3, 0.1, -1.0)]
    chosen = figures.representative_runs(runs, "kde_ll")
    assert {k: r.seed for k, r in chosen.items()} == {"best": 1, "median": 3, "worst": 2}


def test_representative_runs_one_run_and_errors():
    only = fake_run(7, 0.5)
    assert all(run is only for run in figures.representative_runs([only]).values())
    with pytest.raises(ValueError, match="no runs"):
        figures.representative_runs([])
    with pytest.raises(ValueError, match="unknown metric"):
        figures.representative_runs([only], "fid")


def test_synthetic_cell_has_the_intended_statuses(synthetic_runs):
    assert [r.status for r in synthetic_runs] == ["ok", "collapsed", "diverged", "ok"]
    assert figures.representative_runs(synthetic_runs, "ks")["worst"].status == "diverged"


# ---- PNG output and byte-for-byte repeatability --------------------------------------------------
def test_every_figure_is_a_png_of_its_fixed_size(pngs):
    for name, data in pngs.items():
        assert data.startswith(PNG_SIGNATURE), name
        assert b"Software" not in data and b"matplotlib version" not in data, name
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "PNG" and min(im.size) > 200, name


def test_png_bytes_repeat_in_process_and_ignore_user_rcparams(run_sets, pngs):
    assert digests(rendered(run_sets)) == digests(pngs)
    user = {"font.size": 17.0, "lines.linewidth": 4.0, "axes.facecolor": "#eeeeee", "figure.dpi": 33.0,
            "axes.prop_cycle": matplotlib.cycler(color=["#000000"]), "xtick.direction": "in"}
    some = ("density_synthetic", "distribution_ks", "scatter")
    with matplotlib.rc_context(user):
        assert digests(rendered(run_sets, some)) == digests({name: pngs[name] for name in some})


def test_figures_leave_global_matplotlib_state_alone(run_sets):
    before = dict(matplotlib.rcParams)
    fig = build_figures(run_sets, ["density"])["density"]
    figures.png_bytes(fig)
    assert dict(matplotlib.rcParams) == before
    assert "matplotlib.pyplot" not in sys.modules or not sys.modules["matplotlib.pyplot"].get_fignums()


def test_png_bytes_identical_in_a_fresh_process(run_sets, pngs, tmp_path):
    roots = {variant: (str(runs[0].path.parents[2]), runs[0].slug) for variant, runs in run_sets.items()}
    here = Path(__file__).resolve().parent
    code = ("import json, sys; sys.path.insert(0, sys.argv[1]); import test_report_figures as t; "
            "t.render_all(json.loads(sys.argv[2]), sys.argv[3])")
    seed = os.environ.get("PYTHONHASHSEED", "")
    env = {**os.environ, "PYTHONHASHSEED": "12345" if seed != "12345" else "54321"}
    subprocess.run([sys.executable, "-c", code, str(here), json.dumps(roots), str(tmp_path)], check=True, env=env,
                   timeout=120)
    fresh = {p.stem: p.read_bytes() for p in sorted(tmp_path.glob("*.png"))}
    assert digests(fresh) == digests(pngs)
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left


def test_save_png_writes_atomically_what_png_bytes_gives(run_sets, pngs, tmp_path):
    target = tmp_path / "sub" / "density.png"
    target.parent.mkdir()
    target.write_bytes(b"old")
    assert figures.save_png(build_figures(run_sets, ["density"])["density"], target) == target
    assert target.read_bytes() == pngs["density"]
    assert sorted(p.name for p in target.parent.iterdir()) == ["density.png"]


# ---- awkward runs -------------------------------------------------------------------------------
def test_density_figure_draws_diverged_and_collapsed_runs(synthetic_runs, tmp_path):
    by_status = {r.status: r for r in synthetic_runs}
    chosen = {"collapsed": by_status["collapsed"], "diverged": by_status["diverged"], "wide": synthetic_runs[3]}
    fig = figures.density_figure(chosen, "awkward runs")
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert any("diverged: no finite samples" in t for t in texts)
    assert any("(clipped)" in t for t in texts)  # the zero-width spike is taller than the axis
    assert any("outside the plot" in t for t in texts)  # the 1e6 outliers
    lo, hi = fig.axes[0].get_xlim()
    assert figures.X_CLIP[0] - 1 <= lo < 2.0 and 6.0 < hi <= figures.X_CLIP[1] + 1
    assert figures.save_png(fig, tmp_path / "awkward.png").read_bytes().startswith(PNG_SIGNATURE)


def test_distribution_figure_counts_diverged_runs(run_sets):
    df = metrics_frame(run_sets)
    fig = figures.metric_distributions_figure(df, "w1")
    assert sorted(t.get_text() for t in fig.axes[0].texts) == ["1 diverged", "1 diverged"]
    assert [t.get_text() for t in fig.axes[0].get_yticklabels()] == [REAL_VARIANT, SYNTH_VARIANT]
    assert fig.axes[0].get_xscale() == "log"


def test_scatter_figure_counts_agreement(run_sets):
    fig = figures.framework_scatter_figure(paired_frame(metrics_frame(run_sets)), metrics=("ks", "kde_ll"))
    ks_title, kde_title = (ax.get_title() for ax in fig.axes[:2])
    assert "6 pairs, 0 agree" in ks_title  # 7 seeds, one diverged on both sides; ks moved by 1 %
    assert "6 pairs, 6 agree" in kde_title
    with pytest.raises(ValueError, match="missing column"):
        figures.framework_scatter_figure(pd.DataFrame({"variant": [], "seed": []}))


# ---- the training animation --------------------------------------------------------------------
ANIM_STEPS, ANIM_FRAMES = 60, 6


def test_animation_is_a_deterministic_gif_with_the_expected_frames(tmp_path):
    need_torch()
    config = variant_config(REAL_VARIANT, num_steps=ANIM_STEPS, seeds=(3, 5))
    seen = []
    first = animate_run(config, "torch", tmp_path / "a.gif", frames=ANIM_FRAMES, seed=5,
                        progress=lambda done, total: seen.append((done, total)))
    second = animate_run(config, "torch", tmp_path / "b.gif", frames=ANIM_FRAMES, seed=5)
    assert first.read_bytes() == second.read_bytes()
    steps = frame_steps(config.iterations, ANIM_FRAMES)
    assert steps[-1] == config.iterations and len(steps) == ANIM_FRAMES
    assert [done for done, _ in seen] == steps
    with Image.open(first) as im:
        assert im.format == "GIF" and im.n_frames == len(steps) and im.size == (512, 320)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gif", "b.gif"]


def test_frame_chunking_does_not_change_the_run():
    need_torch()
    config = variant_config(REAL_VARIANT, num_steps=100, seeds=(0, 1))
    whole = train(config, "torch")
    seen = []
    pieces = train(config, "torch", max_chunk=13, on_chunk=lambda done, w: seen.append(done))
    assert seen == frame_steps(config.iterations, len(seen)) and len(seen) > 5
    for player in ("G", "D"):
        for name, value in whole.weights[player].items():
            np.testing.assert_array_equal(pieces.weights[player][name], value, err_msg=f"{player}/{name}")
    np.testing.assert_array_equal(pieces.samples_uniform, whole.samples_uniform)
    np.testing.assert_array_equal(pieces.curves, whole.curves)
    assert dataclasses.astuple(pieces.config) == dataclasses.astuple(whole.config)
