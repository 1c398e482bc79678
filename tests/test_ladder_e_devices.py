"""Agreement ladder, rung (e): the same framework on the CPU and on CUDA; and the device plumbing.

Rung (e) (docs/agreement.md#cpu-vs-cuda): PyTorch on the CPU vs PyTorch on CUDA, whole runs of
every cell of rung (d) (the core protocols and every named variant), float64 up to each seed's
sensitivity horizon and float32 within its stated bound (``test_ladder_cd_runs.assert_runs_agree``:
the same horizons, bounds and kink rule as TF vs PyTorch, the horizons measured on CUDA). On CUDA
the same command twice must give the same bytes, and a seed alone and inside a stack must agree
within the rung's bounds (on CUDA, unlike the CPU, they are not bitwise equal: cuBLAS picks its
kernel by the stack size, docs/agreement.md#cpu-vs-cuda). These tests need a CUDA device and skip
cleanly without one (nothing in CI needs a GPU).

The rest runs everywhere: the devices' names and errors, a run's record naming its device, a
runs folder refusing another device's sweep, and the command line's exit status 2.
"""
from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from test_ladder_cd_runs import CELLS, SEEDS, assert_runs_agree, sensitivity_horizons

from ganrepro import devices, impls, store
from ganrepro import records as rec
from ganrepro import sweep as sw
from ganrepro.config import make_config
from ganrepro.errors import UsageError
from ganrepro.grids import Grid
from ganrepro.training import train


def cuda_available() -> bool:
    if not impls.available("torch"):
        return False
    import torch

    return torch.cuda.is_available()


needs_cuda = pytest.mark.skipif(not cuda_available(), reason="needs a CUDA device (PyTorch sees none here)")
no_cuda = pytest.mark.skipif(cuda_available(), reason="checks the error raised where CUDA is absent")


# ---- rung (e): CPU vs CUDA ----------------------------------------------------------------------
@needs_cuda
@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_cpu_and_cuda_runs_agree_up_to_each_seeds_sensitivity_horizon(cell, dtype, agreement):
    config = CELLS[cell].replace(dtype=dtype, seeds=tuple(SEEDS), curve_interval=1)
    on_cpu, on_cuda = train(config, "torch", device="cpu"), train(config, "torch", device="cuda")
    horizons = sensitivity_horizons(config, on_cuda, dtype, framework="torch", device="cuda")
    assert_runs_agree(on_cpu, on_cuda, horizons, dtype, agreement)


@needs_cuda
@pytest.mark.parametrize("minibatch", [False, True], ids=["vanilla", "mbd"])
def test_the_same_cuda_run_twice_gives_identical_bytes(minibatch, tmp_path):
    config = make_config("2017", minibatch=minibatch, seeds=(0, 1, 2), num_steps=300)
    first, second = train(config, "torch", device="cuda"), train(config, "torch", device="cuda")
    for x, y in [(first.curves, second.curves), (first.samples_uniform, second.samples_uniform),
                 (first.boundary, second.boundary)]:
        assert x.tobytes() == y.tobytes()
    paths = [rec.save_runs(o, rec.score(o), tmp_path / name) for name, o in (("a", first), ("b", second))]
    for a, b in zip(*paths, strict=True):
        for name in rec.SEALED_FILES:
            assert (a / name).read_bytes() == (b / name).read_bytes(), name


STACK_POSITIONS = (0, 17, 63)
"""Seeds trained alone and inside a stack of 64 (seeds 0-63) on CUDA."""


def _seeds_at(output, positions) -> SimpleNamespace:
    """What ``assert_runs_agree`` reads of a stacked run, for the seeds at ``positions`` only."""
    p = list(positions)
    return SimpleNamespace(curve_steps=output.curve_steps, curves=output.curves[:, p],
                           weights={net: {k: v[p] for k, v in ws.items()} for net, ws in output.weights.items()},
                           samples_uniform=output.samples_uniform[p], boundary=output.boundary[p])


def _joined(outputs) -> SimpleNamespace:
    """Runs of one seed each, as if they were one stack (seeds in the given order)."""
    first = outputs[0]
    return SimpleNamespace(curve_steps=first.curve_steps,
                           curves=np.concatenate([o.curves for o in outputs], axis=1),
                           weights={net: {k: np.concatenate([o.weights[net][k] for o in outputs])
                                          for k in first.weights[net]} for net in first.weights},
                           samples_uniform=np.concatenate([o.samples_uniform for o in outputs]),
                           boundary=np.concatenate([o.boundary for o in outputs]))


@needs_cuda
@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("minibatch", [False, True], ids=["vanilla", "mbd"])
def test_a_seed_alone_and_in_a_stack_on_cuda_agree_like_cpu_and_cuda(minibatch, dtype, agreement):
    """On the CPU a seed alone equals the same seed in a stack, bitwise (test_determinism.py). On CUDA
    the kernels that PyTorch picks for a matrix product or a reduction depend on the stack size, and
    with them the order of a seed's sums (docs/agreement.md#cpu-vs-cuda, measured by
    benchmarks/probe_stack_invariance.py): a seed alone and in a stack then agree as the CPU and
    CUDA do, within rung (e)'s bounds up to each seed's sensitivity horizon (the agreement table
    shows 0 where they are identical). With the fused step (these cells' default on CUDA) a seed's
    sums are its own, in an order fixed by the config: its training is the same bits alone and in
    the stack (curves, weights); the evaluation that follows (cuBLAS products) still may not be."""
    from ganrepro.impls import get_backend

    config = make_config("2017", minibatch=minibatch, num_steps=300).replace(dtype=dtype, curve_interval=1)
    stacked = train(config.with_seeds(range(64)), "torch", device="cuda")
    alone = _joined([train(config.with_seeds((p,)), "torch", device="cuda") for p in STACK_POSITIONS])
    horizons = sensitivity_horizons(config.with_seeds(STACK_POSITIONS), alone, dtype, framework="torch",
                                    device="cuda")
    in_stack = _seeds_at(stacked, STACK_POSITIONS)
    assert_runs_agree(alone, in_stack, horizons, dtype, agreement)
    if get_backend("torch")._step_form(config, "cuda") == "fused":
        assert np.array_equal(alone.curves, in_stack.curves, equal_nan=True)
        for net, weights in alone.weights.items():
            for k, v in weights.items():
                assert np.array_equal(v, in_stack.weights[net][k], equal_nan=True), (net, k)


@needs_cuda
def test_a_cuda_record_names_the_gpu():
    output = train(make_config("2017", seeds=(0,), num_steps=20), "torch", device="cuda")
    record = rec.score(output)[0]
    assert record["device"] == "cuda"
    info = record["device_info"]
    assert info["type"] == "cuda" and info["name"] and info["cuda"] and info["torch"]


# ---- devices everywhere -------------------------------------------------------------------------
def test_device_names_are_checked():
    assert devices.check_device("cpu") == "cpu"
    with pytest.raises(UsageError, match=r"unknown device 'tpu'; allowed: cpu, cuda"):
        devices.check_device("tpu")


@pytest.mark.parametrize("framework", list(impls.FRAMEWORKS))
def test_a_cpu_record_names_the_cpu(framework):
    if not impls.available(framework):
        pytest.skip(f"{framework} is not installed")
    output = train(make_config("2017", seeds=(0,), num_steps=5), framework, device="cpu")
    record = rec.score(output)[0]
    assert record["device"] == "cpu"
    assert record["device_info"] == devices.cpu_info()
    assert record["device_info"]["name"] == devices.cpu_model() != ""


@no_cuda
@pytest.mark.parametrize("framework", list(impls.FRAMEWORKS))
def test_cuda_where_none_is_seen_is_a_usage_error_naming_what_is_allowed(framework):
    if not impls.available(framework):
        pytest.skip(f"{framework} is not installed")
    if framework == "tf":
        import tensorflow as tf

        if tf.config.list_physical_devices("GPU"):
            pytest.skip("TensorFlow sees a GPU here")
    with pytest.raises(devices.DeviceUnavailable, match=r"--device cuda: .* sees no .*; allowed: cpu"):
        impls.check_device(framework, "cuda")
    # the twin stays usable on the CPU after the refusal
    assert train(make_config("2017", seeds=(0,), num_steps=3), framework).device == "cpu"


@no_cuda
def test_run_with_cuda_where_none_is_seen_exits_2_before_training(tmp_path):
    done = subprocess.run([sys.executable, "-m", "ganrepro", "run", "--variant", "blog2017/vanilla", "--steps", "5",
                           "--device", "cuda", "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 2, done.stderr
    assert "--device cuda" in done.stderr and "allowed: cpu" in done.stderr
    assert not (tmp_path / "out").exists()


def test_a_runs_folder_refuses_a_sweep_on_another_device(tmp_path):
    grid = Grid("tiny", "two seeds", ("blog2017/vanilla",), ("torch",), (0, 1), (("num_steps", 20),))
    sw.sweep(grid, tmp_path, executor=sw.LocalExecutor(1))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(store.DeviceMismatch, match=r"was trained on cpu, and this sweep trains on cuda"):
        sw.sweep(grid, tmp_path, executor=sw.LocalExecutor(1), device="cuda")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before  # nothing moved or lost
    record = json.loads(next(tmp_path.rglob("record.json")).read_text())
    assert record["device"] == "cpu"


def test_sweep_frameworks_must_be_the_grids(tmp_path):
    done = subprocess.run([sys.executable, "-m", "ganrepro", "sweep", "--grid", "smoke", "--frameworks", "jax",
                           "--runs", str(tmp_path / "runs")], capture_output=True, text=True)
    assert done.returncode == 2
    assert "--frameworks 'jax': allowed: a comma-separated subset of the grid's torch, tf" in done.stderr


@no_cuda
def test_the_image_track_on_cuda_where_none_is_seen_exits_2(tmp_path):
    """The image track takes --device cuda too (tests/test_image_devices.py); without a GPU it is refused
    as the 1D track's run is."""
    done = subprocess.run([sys.executable, "-m", "ganrepro", "run", "--variant", "post004/dcgan-z2", "--device",
                           "cuda", "--steps", "2", "--out", str(tmp_path / "out")], capture_output=True, text=True)
    assert done.returncode == 2
    assert "--device cuda" in done.stderr and "allowed: cpu" in done.stderr
    assert not (tmp_path / "out").exists()


def test_the_same_seeds_draw_the_same_inputs_on_every_device():
    """The inputs a twin gets are NumPy draws made before the device is chosen: the device is not
    an argument of any draw (``ganrepro.streams``, ``ganrepro.weights``)."""
    import inspect

    from ganrepro import streams, weights

    for module in (streams, weights):
        for name, fn in inspect.getmembers(module, inspect.isfunction):
            if fn.__module__ == module.__name__:
                assert "device" not in inspect.signature(fn).parameters, f"{module.__name__}.{name}"


# ---- scoring's sort on the device ---------------------------------------------------------------
@pytest.mark.parametrize("framework", list(impls.FRAMEWORKS))
def test_a_twins_row_sort_is_numpys_and_scores_the_same(framework):
    """The twin's ``sort_rows`` (what a GPU run's scoring sorts with) gives NumPy's sorted rows, and
    ``evaluate_many`` given them gives the same metrics bit for bit."""
    import numpy as np

    from ganrepro.metrics import evaluate_many
    from ganrepro.seeding import rng_for

    if not impls.available(framework):
        pytest.skip(f"{framework} is not installed")
    backend = impls.get_backend(framework)
    backend.use_device("cpu")
    rng = np.random.default_rng(5)
    x = np.stack([rng.normal(4, 0.5, 10_000), rng.normal(3, 0.01, 10_000), np.round(rng.normal(4, 1, 10_000), 1)])
    for dtype in (np.float32, np.float64):
        assert backend.sort_rows(x.astype(dtype)).tobytes() == np.sort(x.astype(dtype), axis=1).tobytes()
    on_twin = evaluate_many(x, [rng_for(s, "evaluation") for s in range(3)], sorted_samples=backend.sort_rows(x))
    assert on_twin == evaluate_many(x, [rng_for(s, "evaluation") for s in range(3)])


@needs_cuda
def test_sorting_on_cuda_is_numpys():
    import numpy as np

    backend = impls.get_backend("torch")
    backend.use_device("cuda")
    try:
        x = np.random.default_rng(6).normal(4, 0.5, (64, 10_000)).astype(np.float32)
        assert backend.sort_rows(x).tobytes() == np.sort(x, axis=1).tobytes()
    finally:
        backend.use_device("cpu")
