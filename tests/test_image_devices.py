"""The image track on ``--device cpu|cuda`` (docs/images.md#devices): the device plumbing everywhere,
and on a CUDA GPU the image track's determinism and its agreement with the CPU.

Everywhere: ``train(..., device="cpu")`` is the default run bit for bit and its records name the
CPU; a device the framework cannot use is a ``DeviceUnavailable`` (a ``UsageError``, exit 2) before
any work, from the twins, the driver and the command line (``run`` and ``sweep``, which write
nothing); a runs folder of CPU image runs refuses a CUDA sweep, as the 1D track's does.

With a CUDA GPU (PyTorch; these tests skip cleanly without one): the same image run twice gives
the same bytes and its records name the GPU; a seed alone vs the same seed in a stack, and the CPU
vs CUDA in float64 over a few steps, each within a stated bound (the agreement table lists what was
reached: no GPU was available when these bounds were set, so they are the image ladder's float64
bound, not a measurement).
"""
from __future__ import annotations

import numpy as np
import pytest

from ganrepro import devices, impls, store
from ganrepro import sweep as sw
from ganrepro.cli import main
from ganrepro.errors import UsageError
from ganrepro.grids import Grid
from ganrepro.image import training
from ganrepro.image.config import ImageConfig
from ganrepro.image.training import train

from helpers import curve_difference, relative_difference


def cuda_available() -> bool:
    if not impls.available("torch"):
        return False
    import torch

    return torch.cuda.is_available()


def tf_sees_gpu() -> bool:
    import tensorflow as tf

    return bool(tf.config.list_physical_devices("GPU"))


needs_cuda = pytest.mark.skipif(not cuda_available(), reason="needs a CUDA device (PyTorch sees none here)")
no_cuda = pytest.mark.skipif(cuda_available(), reason="checks the error raised where CUDA is absent")


def small(model: str = "linear", seeds=(0, 1), steps: int = 6, dtype: str = "float32") -> ImageConfig:
    """A short image config on digits8 (batch 16; a checkpoint every 3 steps)."""
    return ImageConfig(model=model, seeds=tuple(seeds), batch_size=16, num_steps=steps, checkpoint_interval=3,
                       dtype=dtype)


def output_arrays(output) -> dict:
    """Every array an ``ImageTrainingOutput`` holds, by name."""
    out = {f"weights/{net}/{k}": v for net, params in output.weights.items() for k, v in params.items()}
    out.update(curves=output.curves, checkpoints=output.checkpoints, samples=output.samples)
    return out


def unavailable(framework: str) -> bool:
    """Whether ``framework`` sees no CUDA device here (the refusal tests' condition)."""
    return not (cuda_available() if framework == "torch" else tf_sees_gpu())


# ---- everywhere: the CPU, and the refusals -------------------------------------------------------
def test_a_cpu_run_is_the_default_run_and_its_records_name_the_cpu(framework):
    from ganrepro.image.scoring import score

    config = small(seeds=(0, 1), steps=6)
    default, on_cpu = train(config, framework), train(config, framework, device="cpu")
    assert default.device == on_cpu.device == "cpu"
    assert default.device_info == on_cpu.device_info == devices.cpu_info()
    a, b = output_arrays(default), output_arrays(on_cpu)
    assert a.keys() == b.keys() and all(a[k].tobytes() == b[k].tobytes() for k in a)
    for record in score(on_cpu):
        assert record["device"] == "cpu"
        assert record["device_info"] == devices.cpu_info() and record["device_info"]["name"] == devices.cpu_model()


@pytest.mark.parametrize("name", list(impls.IMAGE_TWINS))
def test_a_twin_refuses_cuda_it_cannot_see_and_stays_on_the_cpu(name):
    if not impls.available(name):
        pytest.skip(f"{name} is not installed")
    if not unavailable(name):
        pytest.skip(f"{name} sees a GPU here")
    twin = impls.get_image_backend(name)
    with pytest.raises(devices.DeviceUnavailable, match=r"^--device cuda: .* sees no .*; allowed: cpu"):
        twin.use_device("cuda")
    assert issubclass(devices.DeviceUnavailable, UsageError)
    assert twin.use_device("cpu") == devices.cpu_info()
    with pytest.raises(UsageError, match=r"unknown device 'tpu'; allowed: cpu, cuda"):
        twin.use_device("tpu")


@pytest.mark.parametrize("name", list(impls.IMAGE_TWINS))
def test_train_refuses_an_unusable_device_before_any_work(name, monkeypatch):
    if not impls.available(name):
        pytest.skip(f"{name} is not installed")

    def no_work(*args, **kwargs):
        raise AssertionError("the data set was loaded before the device was checked")

    monkeypatch.setattr(training, "load_dataset", no_work)
    with pytest.raises(UsageError, match=r"unknown device 'tpu'; allowed: cpu, cuda"):
        train(small(), name, device="tpu")
    if unavailable(name):
        with pytest.raises(devices.DeviceUnavailable, match=r"--device cuda: .*; allowed: cpu"):
            train(small(), name, device="cuda")


def one_error_line(err: str) -> str:
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    return lines[0]


IMAGE_COMMANDS = {
    "run": ["run", "--variant", "post004/linear-z2", "--steps", "2", "--out", "{dest}"],
    "sweep": ["sweep", "--grid", "image-smoke", "--runs", "{dest}", "--quiet"],
}


@pytest.mark.parametrize("command", list(IMAGE_COMMANDS))
@pytest.mark.parametrize("name", list(impls.IMAGE_TWINS))
def test_an_image_run_or_sweep_on_unusable_cuda_exits_2_and_writes_nothing(name, command, tmp_path, capsys):
    if not impls.available(name):
        pytest.skip(f"{name} is not installed")
    if not unavailable(name):
        pytest.skip(f"{name} sees a GPU here")
    dest = tmp_path / "out"
    args = [a.format(dest=dest) for a in IMAGE_COMMANDS[command]]
    code = main([*args, "--framework" if command == "run" else "--frameworks", name, "--device", "cuda"])
    line = one_error_line(capsys.readouterr().err)
    assert code == 2
    assert line.startswith("ganrepro: error: --device cuda: ") and "allowed: cpu" in line, line
    assert not dest.exists()


def test_a_runs_folder_of_cpu_image_runs_refuses_a_cuda_sweep(tmp_path):
    """The store checks an image run's device as it checks a 1D run's (``store.verify_run``): before
    anything is trained, moved or lost, whatever the machine has."""
    grid = Grid("image-tiny", "one seed", ("post004/linear-z2",), ("torch",), (0,),
                (("num_steps", 3), ("checkpoint_interval", 3)))
    sw.sweep(grid, tmp_path, executor=sw.LocalExecutor(1))
    before = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    with pytest.raises(store.DeviceMismatch, match=r"was trained on cpu, and this sweep trains on cuda"):
        sw.sweep(grid, tmp_path, executor=sw.LocalExecutor(1), device="cuda")
    assert sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*")) == before


ENTRY_POINTS = ("init_state", "train_chunk", "state_weights", "generate", "forward_and_gradients", "vjp")
"""The twins' NumPy-facing functions: what runs on the chosen device."""


@pytest.mark.parametrize("model", ["linear", "dcgan"])
@pytest.mark.parametrize("seeds", [(0,), (0, 1, 2)], ids=["alone", "stack"])
def test_every_tensor_of_the_torch_image_twin_is_made_on_its_device(model, seeds, monkeypatch):
    """Without a GPU: PyTorch's shape-only "meta" device stands in for CUDA. Each entry point runs with
    the twin's device set to it; a tensor made on the CPU and mixed in would raise (meta vs cpu), and
    the state stays on the device. (Values are not computed on "meta": the host copies are zeros.)"""
    if not impls.available("torch"):
        pytest.skip("torch is not installed")
    import torch

    from ganrepro.image.streams import training_chunks
    from ganrepro.image.weights import initial_weights
    from ganrepro.impls import torch_image, torch_twin

    monkeypatch.setattr(torch_twin, "DEVICE", torch.device("meta"))
    monkeypatch.setattr(torch_image, "_host", lambda t: np.zeros(tuple(t.shape), dtype=str(t.dtype)[len("torch."):]))
    config = small(model, seeds=seeds, steps=3)
    s, b, dt = len(seeds), config.batch_size, config.dtype
    images = np.random.default_rng(0).random((40, 8, 8)).astype(dt)
    state = torch_image.init_state(config, initial_weights(config), images)
    state, curves = torch_image.train_chunk(config, state, next(training_chunks(config, len(images))))
    tensors = [state["G"], state["D"], state["images"], *state["G_slots"], *state["D_slots"],
               *state["G_stats"].values()]
    assert all(t.device.type == "meta" for t in tensors) and curves.shape == (3, s, 6)
    w = torch_image.state_weights(config, state)
    assert torch_image.generate(config, w["G"], w["G_stats"], np.zeros((s, 10, 2), dt)).shape == (s, 10, 8, 8)
    z = np.zeros((s, b, 2), dt)
    out = torch_image.forward_and_gradients(config, initial_weights(config), np.zeros((s, b, 8, 8), dt), z, z)
    assert out["l_real"].shape == (s, b)
    kernel = initial_weights(small("dcgan", seeds=seeds))["D"]["d0.w"]
    y, grads = torch_image.vjp(torch_image.conv, [np.zeros((s, 4, 8, 8, 1), dt), kernel],
                               np.zeros((s, 4, 4, 4, kernel.shape[-1]), dt))
    assert y.shape == (s, 4, 4, 4, kernel.shape[-1]) and [g.shape for g in grads] == [(s, 4, 8, 8, 1), kernel.shape]


def test_the_tf_image_twins_entry_points_run_on_its_device():
    """Each NumPy-facing function of the TensorFlow image twin runs under ``tf.device`` of the chosen
    device (``tf_image._on_device``, as the 1D twin's ``_on_device``)."""
    if not impls.available("tf"):
        pytest.skip("tensorflow is not installed")
    from ganrepro.impls import tf_image

    for name in ENTRY_POINTS:
        fn = getattr(tf_image, name)
        assert getattr(fn, "__wrapped__", None) is not None and fn.__code__ is tf_image._on_device(len).__code__, name


# ---- on a CUDA GPU (PyTorch) -----------------------------------------------------------------------
@pytest.fixture
def back_to_cpu():
    """Leaves the PyTorch twins on the CPU after the test (the device is module state, shared by the
    1D and the image twin), so that the tests after it run where they expect."""
    yield
    impls.get_image_backend("torch").use_device("cpu")


@needs_cuda
@pytest.mark.parametrize("model", ["linear", "dcgan"])
def test_the_same_cuda_image_run_twice_gives_identical_bytes_and_names_the_gpu(model, back_to_cpu):
    from ganrepro.image.scoring import prepare, score, seed_files

    config = small(model, seeds=(0, 1, 2), steps=30).replace(checkpoint_interval=10)
    first, second = (train(config, "torch", device="cuda") for _ in range(2))
    a, b = output_arrays(first), output_arrays(second)
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    prepared = prepare(config.dataset)
    records = [score(o, prepared=prepared) for o in (first, second)]
    for i in range(len(config.seeds)):
        assert seed_files(first, records[0][i], i) == seed_files(second, records[1][i], i)
        assert records[0][i]["device"] == "cuda"
        info = records[0][i]["device_info"]
        assert info["type"] == "cuda" and info["name"] and info["cuda"] and info["torch"]


@needs_cuda
@pytest.mark.parametrize("model", ["linear", "dcgan"])
def test_a_seed_alone_and_in_a_stack_on_cuda(model, back_to_cpu, agreement):
    """Float64, 12 steps. On the CPU the two are bitwise equal (tests/test_image_twins.py); on CUDA
    cuBLAS and cuDNN may pick their kernels by the stack's size, so the bound is the image ladder's
    float64 bound (1e-9 relative to each quantity's scale) and the table shows what was reached
    (0 where the bits are the same)."""
    config = small(model, seeds=(4, 5, 6), steps=12, dtype="float64")
    stacked = output_arrays(train(config, "torch", device="cuda", evaluate=False))
    worst = 0.0
    for k, seed in enumerate(config.seeds):
        alone = output_arrays(train(config.with_seeds((seed,)), "torch", device="cuda", evaluate=False))
        for name, value in alone.items():
            if name == "samples":
                continue
            inside = stacked[name][:, k:k + 1] if name in ("curves", "checkpoints") else stacked[name][k:k + 1]
            worst = max(worst, relative_difference(value, inside))
    agreement(f"torch {model} on cuda: seed alone vs in a stack of 3, float64, relative", worst, 1e-9)


@needs_cuda
@pytest.mark.parametrize("model", ["linear", "dcgan"])
def test_cpu_and_cuda_image_runs_agree_in_float64(model, back_to_cpu, agreement):
    """Float64, 10 steps, three seeds: the curves (each relative to its scale over the run), the final
    weights and running statistics, and the latent grid's images at every checkpoint, within 1e-9
    relative (the image ladder's float64 bound, tests/test_image_runs.py: rounding differs between
    MKL and cuBLAS, 1e-16 per operation, and ten steps amplify it little)."""
    config = small(model, seeds=(0, 1, 2), steps=10, dtype="float64")
    on_cpu = output_arrays(train(config, "torch", device="cpu", evaluate=False))
    on_cuda = output_arrays(train(config, "torch", device="cuda", evaluate=False))
    worst = float(curve_difference(on_cuda["curves"], on_cpu["curves"]).max())
    for name in on_cpu:
        if name not in ("curves", "samples"):
            worst = max(worst, relative_difference(on_cuda[name], on_cpu[name]))
    agreement(f"torch {model}: cpu vs cuda, 10 steps, float64, relative", worst, 1e-9)


# ---- ganrepro bench --parts image ------------------------------------------------------------------
def test_bench_image_rows_on_the_cpu_run_through_the_twins_device(framework):
    """The real worker body (in this process): the twin put on the device, one row per quick case."""
    from ganrepro.bench import image_steps

    rows = image_steps.image_step_rows(framework, "cpu", quick=True)
    assert [(r["model"], r["stack"]) for r in rows] == [(m, s) for m, _, s in image_steps.QUICK_CASES]
    assert all(r["device"] == "cpu" and r["device_name"] and r["step_ms"] > 0 for r in rows)
    assert set(rows[0]) == set(image_steps.COLUMNS)


def test_bench_measures_the_image_part_on_every_device_asked(tmp_path, monkeypatch, capsys):
    """With a GPU (faked here: the workers are replaced), ``--parts image`` measures each framework on
    the CPU and on CUDA, TensorFlow on CUDA only where it sees a GPU (said once on stderr), and writes
    one table per device."""
    from ganrepro import bench
    from ganrepro.bench import image_steps

    calls = []

    def measure_image(framework, device, quick, capability):
        calls.append((framework, device))
        return [{"framework": framework, "model": "linear", "image_size": 8, "stack": 2, "batch": 64, "step_ms": 2.0,
                 "seed_step_ms": 1.0, "rounds": 1, "warmup_s": 0.1, "device": device, "device_name": f"test {device}",
                 "framework_version": "0"}]

    monkeypatch.setattr(bench, "cuda_available", lambda: True)
    monkeypatch.setattr(bench, "tf_sees_gpu", lambda: False)
    monkeypatch.setattr(bench, "measure_image", measure_image)
    out = tmp_path / "benchmarks"
    assert main(["bench", "--parts", "image", "--device", "all", "--quick", "--out", str(out)]) == 0
    assert calls == [("torch", "cpu"), ("tf", "cpu"), ("torch", "cuda")]
    assert capsys.readouterr().err.count("tf sees no GPU; cuda rows for torch only") == 1
    for device in ("cpu", "cuda"):
        table = (out / f"image_training_{device}.md").read_text()
        assert table.startswith(f"# Image track: one training step, {device}: test {device}")
        assert image_steps.COLUMNS == (out / f"image_training_{device}.csv").read_text().splitlines()[0].split(",")
    assert "on the GPU, driven by one CPU thread" in (out / "image_training_cuda.md").read_text()
