"""``ganrepro bench``: its usage errors, its tables' arithmetic, and one quick run that
writes the tables. The timings themselves live in ``benchmarks/`` and ``reports/benchmarks/``."""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from ganrepro import bench
from ganrepro.bench import training_steps
from ganrepro.cli import main


@pytest.mark.parametrize("argv, message", [
    (["--batch-sizes", "8,x"], "comma-separated integers"),
    (["--batch-sizes", "1,8"], "batch sizes must be integers >= 2"),
    (["--frameworks", "jax"], "unknown framework 'jax'; allowed: torch, tf"),
    (["--frameworks", ","], "names no framework"),
    (["--device", "tpu"], "invalid choice: 'tpu'"),
    (["--batch-sizes", "8,8"], "batch sizes must be distinct, got '8,8'"),
    (["--batch-sizes", "1000000"], "at most 16384"),
    (["--frameworks", "torch,torch"], "names a framework twice"),
    (["--parts", "minibatch,layer"], "--parts: unknown part 'layer'; allowed: minibatch, training, image"),
])
def test_bad_arguments_exit_2_and_write_nothing(tmp_path, capsys, argv, message):
    out = tmp_path / "tables"
    assert main(["bench", *argv, "--out", str(out)]) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_cuda_without_a_device_is_a_usage_error(tmp_path, capsys):
    if bench.cuda_available():
        pytest.skip("this machine has a CUDA device")
    assert main(["bench", "--device", "cuda", "--out", str(tmp_path / "t")]) == 2
    assert "PyTorch sees no CUDA device here" in capsys.readouterr().err


def test_out_that_is_a_file_is_refused(tmp_path, capsys):
    target = tmp_path / "file"
    target.write_text("")
    assert main(["bench", "--out", str(target)]) == 2
    assert "is not a folder" in capsys.readouterr().err


def _row(framework, formulation, batch, best_s, pass_="forward+backward"):
    return {"framework": framework, "formulation": formulation, "passes": pass_, "batch": batch,
            "best_s": best_s, "median_s": best_s, "rounds": 3, "warmup_s": 0.0, "peak_bytes": 2 ** 20,
            "floor_s": bench.floor_seconds(batch, pass_, 1e11), "matmul_gflops": 100.0, "device": "cpu",
            "device_name": "test cpu", "framework_version": "0", "capability": "default",
            "inductor_simd_bits": None, "memory_method": "test"}


def test_table_ratios():
    """vs_reference = time / the reference's time (same framework, pass, batch); vs_floor = time /
    (165 B^2 operations / matmul rate) with the backward."""
    frame = bench.table([_row("torch", "reference", 64, 0.8), _row("torch", "production", 64, 0.02),
                         _row("tf", "production", 64, 0.05)])
    production = frame[(frame.framework == "torch") & (frame.formulation == "production")].iloc[0]
    assert production.vs_reference == pytest.approx(0.02 / 0.8)
    assert production.vs_floor == pytest.approx(0.02 / (165 * 64 * 64 / 1e11))
    assert production.peak_MiB == 1.0
    assert math.isnan(frame[frame.framework == "tf"].iloc[0].vs_reference)  # no reference measured
    assert bench.floor_seconds(64, "forward", 1e11) == pytest.approx(55 * 64 * 64 / 1e11)


@pytest.mark.slow
def test_quick_run_writes_the_tables(tmp_path, capsys):
    """Both frameworks, both formulations, B = 8 (the small-batch paths) and 96 (fused / tiled kernels);
    every part (the training table's rows: tests/test_bench_training_table.py)."""
    out = tmp_path / "benchmarks"
    assert main(["bench", "--quick", "--device", "cpu", "--out", str(out)]) == 0
    assert sorted(p.name for p in out.iterdir()) == [".ganrepro-output.json", "README.md", "image_training_cpu.csv",
                                                     "image_training_cpu.md", "minibatch_cpu.csv",
                                                     "minibatch_cpu.md", "minibatch_cpu.png", "training_cpu.csv",
                                                     "training_cpu.md", "training_cpu.png"]
    readme = (out / "README.md").read_text()
    assert "## Minibatch-discrimination layer, cpu" in readme and "## Image track: one training step, cpu" in readme
    assert "## Training step, cpu" in readme and "(training_cpu.png)" in readme
    training = pd.read_csv(out / "training_cpu.csv")
    assert list(training.columns) == training_steps.COLUMNS
    assert set(training.framework) == {"torch", "tf"} and set(training.protocol) == {2016, 2017}
    assert set(training["stack"]) == set(bench.TRAINING_QUICK_STACKS) and set(training.minibatch) == {False, True}
    assert len(training) == 2 * 2 * 2 * len(bench.TRAINING_QUICK_STACKS)
    assert (training.step_s > 0).all() and (training.baseline_step_s > 0).all()
    assert np.isfinite(training.vs_baseline).all() and (training.vs_baseline > 0).all()
    assert np.allclose(training.seed_step_ns, training.step_s / training["stack"] * 1e9, rtol=1e-12)
    assert np.allclose(training.run_s, training.step_s * training.protocol.map({2017: 5001, 2016: 2200}), rtol=1e-12)
    assert training.vs_cpu.isna().all() and (training.steps_per_call == training_steps.QUICK_STEPS).all()
    training_md = (out / "training_cpu.md").read_text()
    assert training_md.startswith("# Training step, cpu: ") and "| tf | 2017 | yes | 128 | 2 |" in training_md
    image = pd.read_csv(out / "image_training_cpu.csv")
    assert set(image.framework) == {"torch", "tf"} and set(image.model) == {"dcgan", "linear"}
    assert (image.step_ms > 0).all()
    assert np.allclose(image["seed_step_ms"] * image["stack"], image["step_ms"], rtol=1e-12)
    frame = pd.read_csv(out / "minibatch_cpu.csv")
    assert set(frame.framework) == {"torch", "tf"} and set(frame.formulation) == set(bench.FORMULATIONS)
    assert set(frame.batch) == set(bench.QUICK_BATCH_SIZES) and set(frame.passes) == set(bench.PASSES)
    assert len(frame) == 2 * 2 * 2 * 2
    assert (frame.best_s > 0).all() and (frame.peak_MiB >= 0).all() and (frame.vs_floor > 0).all()
    reference = frame[frame.formulation == "reference"]
    assert (reference.vs_reference == 1.0).all()
    markdown = (out / "minibatch_cpu.md").read_text()
    assert markdown.startswith("# Minibatch-discrimination layer, cpu: ") and "| torch | production |" in markdown
    assert (out / "minibatch_cpu.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_run_of_one_framework_keeps_the_other_frameworks_rows(tmp_path):
    out = tmp_path / "benchmarks"
    bench.write_tables([_row("torch", "reference", 64, 0.8), _row("torch", "production", 64, 0.02),
                        _row("tf", "production", 64, 0.05)], out)
    bench.write_tables([_row("tf", "production", 64, 0.04), _row("tf", "reference", 64, 0.4)], out)
    frame = pd.read_csv(out / "minibatch_cpu.csv")
    assert sorted(zip(frame.framework, frame.formulation, frame.best_s, strict=True)) == [
        ("tf", "production", 0.04), ("tf", "reference", 0.4),
        ("torch", "production", 0.02), ("torch", "reference", 0.8)]
    assert frame[frame.framework == "tf"].set_index("formulation").vs_reference["production"] == pytest.approx(0.1)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="the CPU peak reads Linux's /proc")
def test_cpu_peak_memory_sees_an_allocation_and_never_goes_negative():
    """A call that touches 64 MiB reads about 64 MiB; calls that add nothing read 0, never below
    (the peak over a call includes its start)."""

    peak, method = bench.peak_memory(lambda: np.ones(64 * 2 ** 20 // 8).sum(), "cpu")
    assert method.startswith("VmHWM") and 60 * 2 ** 20 <= peak <= 80 * 2 ** 20
    for _ in range(20):
        assert bench.peak_memory(lambda: None, "cpu")[0] >= 0
