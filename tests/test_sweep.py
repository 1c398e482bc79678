"""``ganrepro sweep``: one record per run, atomic and resumable (kill -9 included), parallel,
diverged runs kept, the Ray executor giving the same records."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from ganrepro import records as rec
from ganrepro import sweep as sw
from ganrepro.cli import main
from ganrepro.config import ConfigError
from ganrepro.grids import BASELINES, GRIDS, Grid, comparisons, get_grid
from ganrepro.impls import FRAMEWORKS, available
from ganrepro.variants import variant_names

TINY = dict(variants=("blog2016/minibatch", "blog2017/vanilla", "post000/vanilla"), seeds=(0, 1, 2),
            overrides=(("num_steps", 40), ("pretrain_steps", 10), ("curve_interval", 5)))


def tiny_grid(frameworks=("torch",), **changes) -> Grid:
    return Grid(name="tiny", description="test grid", **{**TINY, "frameworks": tuple(frameworks), **changes})


def stored_bytes(root: Path) -> dict:
    """{relative path: bytes} of every deterministic file of every stored run."""
    out = {}
    for path in sorted(root.glob("*/*/seed-*/*")):
        if path.name in ("metrics.json", "samples.npz", "curves.csv"):
            out[str(path.relative_to(root))] = path.read_bytes()
    return out


@pytest.fixture(scope="module")
def reference_runs(tmp_path_factory):
    """The tiny grid swept once, in this process, one stack per cell."""
    root = tmp_path_factory.mktemp("reference")
    summary = sw.sweep(tiny_grid(), root, executor=sw.LocalExecutor(1))
    return root, summary


# ---- grids ------------------------------------------------------------------------------------
def test_default_grid_covers_every_variant_with_32_seeds_in_both_frameworks():
    grid = get_grid("default")
    assert set(grid.variants) == set(variant_names())
    assert set(grid.frameworks) == set(FRAMEWORKS)
    assert len(grid.seeds) >= 32
    assert set(get_grid("smoke").variants) <= set(variant_names())


def test_every_baseline_pair_differs_in_its_technique_only_by_config():
    for technique, baseline in BASELINES.items():
        t, b = get_grid("default").config(technique), get_grid("default").config(baseline)
        assert t.protocol == b.protocol and t != b, (technique, baseline)
    assert comparisons(["blog2017/minibatch", "blog2017/vanilla"]) == [("blog2017/minibatch", "blog2017/vanilla")]


def test_unknown_grid_and_bad_grids_are_clear_errors():
    with pytest.raises(ConfigError, match="unknown grid 'nope'; known grids: default, large, smoke"):
        get_grid("nope")
    with pytest.raises(ConfigError, match="unknown variant"):
        tiny_grid(variants=("no/such",))
    with pytest.raises(ConfigError, match="distinct seeds"):
        tiny_grid(seeds=(1, 1))


def test_variants_with_equal_configs_share_one_cell():
    cells = sw.plan(tiny_grid(frameworks=tuple(FRAMEWORKS)))
    assert len(cells) == 2 * len(FRAMEWORKS)  # blog2017/vanilla and post000/vanilla are one experiment
    shared = [c for c in cells if len(c.variants) == 2]
    assert shared and all(set(c.variants) == {"blog2017/vanilla", "post000/vanilla"} for c in shared)


# ---- records ----------------------------------------------------------------------------------
@pytest.mark.slow
def test_one_self_describing_record_per_run(reference_runs):
    root, summary = reference_runs
    grid = tiny_grid()
    assert summary.runs_total == summary.runs_done == 2 * len(grid.seeds) and summary.runs_skipped == 0
    for cell in sw.plan(grid):
        for seed in grid.seeds:
            folder = rec.run_dir(root, cell.slug, cell.framework, seed)
            record = json.loads((folder / "record.json").read_text())
            assert set(record) >= {"config", "framework", "device", "seed", "versions", "metrics", "status",
                                   "timings", "slug"}
            config = cell.config.to_dict()
            config.pop("seeds")
            assert record["config"] == rec.jsonable(config)
            assert record["seed"] == seed and record["framework"] == cell.framework
            assert record["versions"]["torch"].startswith("2.13.0") and record["device"] == "cpu"
            assert record["status"] in ("ok", "collapsed", "diverged")
            assert {"ks", "w1", "kde_ll"} <= set(record["metrics"]) and "train_s" in record["timings"]
    manifest = json.loads((root / "sweep-tiny.json").read_text())
    assert manifest["variants"]["post000/vanilla"] == manifest["variants"]["blog2017/vanilla"]


@pytest.mark.slow
def test_a_finished_sweep_trains_nothing_again(reference_runs, tmp_path):
    root, _ = reference_runs
    before = {p: p.stat().st_mtime_ns for p in root.glob("*/*/seed-*/record.json")}
    summary = sw.sweep(tiny_grid(), root, executor=sw.LocalExecutor(1))
    assert summary.runs_done == 0 and summary.runs_skipped == summary.runs_total
    assert {p: p.stat().st_mtime_ns for p in root.glob("*/*/seed-*/record.json")} == before


@pytest.mark.slow
def test_two_workers_and_smaller_stacks_give_the_same_bytes(reference_runs, tmp_path):
    root, _ = reference_runs
    sw.sweep(tiny_grid(), tmp_path, executor=sw.LocalExecutor(2), max_stack=2)
    assert stored_bytes(tmp_path) == stored_bytes(root)


def test_stacks_pack_the_pending_seeds_on_the_cpu_and_are_fixed_chunks_on_cuda():
    """On CUDA a seed's last bits depend on its stack's size (docs/agreement.md#cpu-vs-cuda): a
    resumed sweep trains the same chunks of the cell's seeds as an uninterrupted one and stores
    only the pending seeds; on the CPU the pending seeds are packed (a seed's bits do not depend on
    its stack)."""
    cell = sw.plan(tiny_grid(variants=("blog2017/vanilla",), seeds=tuple(range(8))))[0]
    on_cpu = sw.tasks_for(cell, [7, 1, 2], 2, "cpu")
    assert [(t.config.seeds, t.store, t.runs) for t in on_cpu] == [((1, 2), None, 2), ((7,), None, 1)]
    on_cuda = sw.tasks_for(cell, [7, 1, 2], 4, "cuda")
    assert [(t.config.seeds, t.store, t.runs, t.stack) for t in on_cuda] == [
        ((0, 1, 2, 3), (1, 2), 2, 4), ((4, 5, 6, 7), (7,), 1, 4)]
    assert [t.store for t in sw.tasks_for(cell, range(8), 4, "cuda")] == [None, None]
    assert sw.tasks_for(cell, [], 4, "cuda") == []


class CudaStandIn(sw.LocalExecutor):
    """Trains on the CPU and labels the outputs "cuda": the sweep's CUDA bookkeeping without a GPU.
    Records each stack it trains in ``stacks``."""

    def __init__(self):
        super().__init__(1)
        self.stacks = []

    def run(self, tasks):
        import dataclasses

        for task in tasks:
            self.stacks.append(tuple(task.config.seeds))
            output, _ = sw.run_task(task.config, task.framework, "cpu")
            output = dataclasses.replace(output, device="cuda", device_info={"type": "cuda", "name": "stand-in"})
            yield task, (output, rec.score(output))


def test_a_resumed_cuda_sweep_trains_whole_chunks_and_stores_only_the_missing_runs(tmp_path):
    grid = tiny_grid(variants=("blog2017/vanilla",), seeds=tuple(range(6)))
    first = CudaStandIn()
    sw.sweep(grid, tmp_path, executor=first, max_stack=4, device="cuda")
    assert first.stacks == [(0, 1, 2, 3), (4, 5)]
    before = stored_bytes(tmp_path)
    times = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/*/seed-*/record.json")}
    slug = grid.config("blog2017/vanilla").slug
    for seed in (2, 5):
        rec_dir = tmp_path / slug / "torch" / f"seed-{seed}"
        for f in rec_dir.iterdir():
            f.unlink()
        rec_dir.rmdir()
    again = CudaStandIn()
    summary = sw.sweep(grid, tmp_path, executor=again, max_stack=4, device="cuda")
    assert again.stacks == [(0, 1, 2, 3), (4, 5)]  # the chunks of the first sweep, not a stack of (2, 5)
    assert summary.runs_done == 2 and summary.runs_skipped == 4 and sum(summary.statuses.values()) == 2
    assert stored_bytes(tmp_path) == before
    kept = {p: p.stat().st_mtime_ns for p in tmp_path.glob("*/*/seed-*/record.json")}
    assert all(kept[p] == t for p, t in times.items() if p.parent.name not in ("seed-2", "seed-5"))


def test_save_runs_writes_only_the_seeds_asked_for(tmp_path):
    from ganrepro.training import train

    output = train(tiny_grid().config("blog2017/vanilla"), "torch")
    records = rec.score(output)
    assert [p.name for p in rec.save_runs(output, records, tmp_path, seeds=(2, 0))] == ["seed-0", "seed-2"]
    assert sorted(p.name for p in tmp_path.glob("*/*/seed-*")) == ["seed-0", "seed-2"]
    with pytest.raises(ValueError, match=r"seeds \[5\] are not in the output"):
        rec.save_runs(output, records, tmp_path, seeds=(1, 5))


@pytest.mark.slow
def test_progress_shows_runs_done_remaining_and_eta(tmp_path, capsys):
    grid = tiny_grid(variants=("blog2017/vanilla",), seeds=(0, 1))
    sw.sweep(grid, tmp_path, executor=sw.LocalExecutor(1), max_stack=1, progress=True)
    err = capsys.readouterr().err
    # tqdm (ganrepro.progress): carriage-return separated updates, the bar closed with a newline
    updates = [u for u in err.split("\r") if u.strip()]
    assert updates[0].startswith("sweep tiny") and "0/2 runs, 2 to go" in updates[0]
    assert any("1/2 runs, 1 to go" in u and "ETA" in u for u in updates), updates
    assert "2/2 runs, 0 to go" in updates[-1] and "ETA 00:00" in updates[-1] and err.endswith("\n")
    sw.sweep(grid, tmp_path, executor=sw.LocalExecutor(1))  # progress=False (the default): nothing on stderr
    assert capsys.readouterr().err == ""


class NaNExecutor(sw.LocalExecutor):
    """Runs the tasks, then makes seed 1's generator output non-finite (a diverged run)."""

    def run(self, tasks):
        for task, (output, _) in super().run(tasks):
            seeds = list(task.config.seeds)
            if 1 in seeds:
                output.samples_uniform[seeds.index(1)] = np.nan
            yield task, (output, rec.score(output))


@pytest.mark.slow
def test_diverged_runs_are_stored_with_their_status(tmp_path):
    grid = tiny_grid(variants=("blog2017/vanilla",))
    summary = sw.sweep(grid, tmp_path, executor=NaNExecutor(1))
    assert summary.statuses.get("diverged") == 1 and summary.runs_done == 3
    slug = grid.config("blog2017/vanilla").slug
    doc = json.loads((rec.run_dir(tmp_path, slug, "torch", 1) / "metrics.json").read_text())
    assert doc["status"] == "diverged" and doc["metrics"]["ks"] is None


@pytest.mark.slow
def test_an_interrupted_save_leaves_no_record_and_is_redone(reference_runs, tmp_path, monkeypatch):
    root, _ = reference_runs
    real_write = rec._write_seed
    calls = {"n": 0}

    def crash_on_third(folder, output, record, i):
        calls["n"] += 1
        if calls["n"] == 3:
            (folder / "record.json").write_text("{half")
            raise KeyboardInterrupt  # as if killed in the middle of writing
        real_write(folder, output, record, i)

    monkeypatch.setattr(rec, "_write_seed", crash_on_third)
    with pytest.raises(KeyboardInterrupt):
        sw.sweep(tiny_grid(), tmp_path, executor=sw.LocalExecutor(1), max_stack=1)
    monkeypatch.setattr(rec, "_write_seed", real_write)
    assert len(list(tmp_path.glob("*/*/seed-*"))) == 2
    summary = sw.sweep(tiny_grid(), tmp_path, executor=sw.LocalExecutor(1), max_stack=1)
    assert summary.runs_skipped == 2 and summary.runs_done == summary.runs_total - 2
    assert stored_bytes(tmp_path) == stored_bytes(root)
    assert not [p for p in tmp_path.rglob(".*") if p.name not in (".", ".lock")]


KILL_SCRIPT = """
import sys
from ganrepro import sweep as sw
from ganrepro.grids import Grid
grid = Grid(name="tiny", description="test grid", frameworks=("torch",), **{tiny})
sw.sweep(grid, sys.argv[1], executor=sw.LocalExecutor(1), max_stack=1)
"""


@pytest.mark.slow
def test_kill_9_at_any_moment_then_resume_gives_the_same_runs(reference_runs, tmp_path):
    """SIGKILL the sweep at several moments (after 1, 2, 4 stored runs); each resume redoes only
    the unfinished runs and the end result is byte-identical to an uninterrupted sweep."""
    root, summary = reference_runs
    script = KILL_SCRIPT.format(tiny=repr(TINY))
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    for kill_after in (1, 2, 4):
        proc = subprocess.Popen([sys.executable, "-c", script, str(tmp_path)], env=env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + 120
        while len(list(tmp_path.glob("*/*/seed-*"))) < kill_after and proc.poll() is None:
            assert time.monotonic() < deadline, "the sweep stored no run in time"
            time.sleep(0.01)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        stored = list(tmp_path.glob("*/*/seed-*"))
        assert len(stored) >= kill_after
        for folder in stored:  # every folder under a final name is complete and parses
            json.loads((folder / "record.json").read_text())
    resumed = sw.sweep(tiny_grid(), tmp_path, executor=sw.LocalExecutor(1), max_stack=1)
    assert resumed.runs_skipped >= 4 and resumed.runs_done == summary.runs_total - resumed.runs_skipped
    assert stored_bytes(tmp_path) == stored_bytes(root)
    assert not [p for p in tmp_path.rglob(".seed-*")]


@pytest.mark.slow
def test_a_run_of_another_config_under_a_cell_is_moved_aside_and_retrained(reference_runs, tmp_path):
    """A run whose config differs from its cell's (here: stored by another grid with curve_interval 7,
    which the slug does not show) is not trusted: the sweep quarantines it and trains the seed again."""
    root, _ = reference_runs
    grid = tiny_grid(variants=("blog2017/vanilla",))
    foreign = grid.config("blog2017/vanilla").with_seeds((0,))
    foreign = type(foreign).from_dict({**foreign.to_dict(), "curve_interval": 7})
    assert foreign.slug == grid.config("blog2017/vanilla").slug
    rec.save_runs(*sw.run_task(foreign, "torch"), tmp_path)
    said = []
    summary = sw.sweep(grid, tmp_path, executor=sw.LocalExecutor(1), say=said.append)
    assert summary.runs_done == 3 and summary.runs_skipped == 0 and len(summary.quarantined) == 1
    (moved_from, moved_to, reason), = summary.quarantined
    assert moved_from == rec.run_dir(tmp_path, grid.config("blog2017/vanilla").slug, "torch", 0)
    assert "another config (curve_interval 7 where the grid has 5)" in reason
    assert moved_to.parent == tmp_path / "quarantine" and (moved_to / "QUARANTINE.txt").is_file()
    assert len(said) == 1 and str(moved_from) in said[0] and "another config" in said[0]
    slug = grid.config("blog2017/vanilla").slug
    assert {k: v for k, v in stored_bytes(tmp_path).items() if k.startswith(slug)} == \
        {k: v for k, v in stored_bytes(root).items() if k.startswith(slug)}


# ---- the command line ---------------------------------------------------------------------------
def test_cli_rejects_bad_values_with_exit_2_and_writes_nothing(tmp_path, capsys):
    afile = tmp_path / "file"
    afile.write_text("x")
    cases = [
        (["sweep", "--grid", "nope"], "unknown grid 'nope'"),
        (["sweep", "--executor", "dask", "--runs", str(tmp_path / "a")],
         "unknown executor 'dask'; allowed: local, ray"),
        (["sweep", "--runs", str(afile)], "--runs"),
        (["sweep", "--jobs", "0", "--runs", str(tmp_path / "b")], "--jobs"),
        (["sweep", "--ray-address", "x:1", "--runs", str(tmp_path / "c")], "--ray-address needs --executor ray"),
        (["report", "--runs", str(tmp_path / "missing")], "is not a folder"),
        (["report", "--animate", "no/such"], "unknown variant"),
    ]
    for argv, message in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, (argv, err)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_cli_sweep_smoke_grid_is_small_and_named():
    grid = GRIDS["smoke"]
    assert len(grid.variants) * len(grid.frameworks) * len(grid.seeds) <= 40


# ---- Ray ----------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ray_executor_gives_the_same_records_and_resumes(reference_runs, tmp_path):
    ray = pytest.importorskip("ray")
    root, summary = reference_runs
    executor = sw.RayExecutor(jobs=2)
    first = sw.sweep(tiny_grid(variants=("blog2017/vanilla",)), tmp_path, executor=executor, max_stack=1)
    assert first.runs_done == 3 and not ray.is_initialized()  # it started a local instance and stopped it
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)  # a running instance is joined, kept
    try:
        resumed = sw.sweep(tiny_grid(), tmp_path, executor=executor, max_stack=2)
        assert ray.is_initialized()
    finally:
        ray.shutdown()
    assert resumed.runs_skipped == 3 and resumed.runs_done == summary.runs_total - 3
    assert stored_bytes(tmp_path) == stored_bytes(root)


def test_ray_missing_is_a_clear_error(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "ray" else real(name, *a))
    with pytest.raises(ValueError, match=r"pip install 'ganrepro\[ray\]'"):
        sw.check_executor("ray")


@pytest.mark.slow
@pytest.mark.skipif(not all(available(f) for f in FRAMEWORKS), reason="needs both frameworks")
def test_tf_and_torch_cells_both_stored(tmp_path):
    grid = tiny_grid(frameworks=tuple(FRAMEWORKS), variants=("blog2017/vanilla",), seeds=(0,))
    summary = sw.sweep(grid, tmp_path, executor=sw.LocalExecutor(2))
    assert summary.runs_done == len(FRAMEWORKS)
    assert sorted(p.parent.name for p in tmp_path.glob("*/*/seed-0")) == sorted(FRAMEWORKS)
