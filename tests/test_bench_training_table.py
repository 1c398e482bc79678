"""``ganrepro bench``'s training table: its plain baselines compute the twins' training step, its
ratios and files, and ``--parts``. The quick measured run: tests/test_bench.py.

The baselines (``ganrepro.bench.plain_torch``, ``plain_tf``) are the denominators of the table's
``vs_baseline``; they must do the same work as the twins, so a few of their steps must give the
same weights and curves as the twin's ``train_chunk`` on the same NumPy inputs.
"""
from __future__ import annotations

import importlib
import math

import numpy as np
import pandas as pd
import pytest

from ganrepro import bench
from ganrepro.bench import training_steps
from ganrepro.cli import main
from ganrepro.config import make_config
from ganrepro.impls import available, get_backend
from ganrepro.streams import pretraining, training_chunks
from ganrepro.weights import initial_weights

FRAMEWORKS = [pytest.param(f, marks=pytest.mark.skipif(not available(f), reason=f"{f} not installed"))
              for f in ("torch", "tf")]

STEPS = 5
SEEDS = range(8)
WEIGHTS_RTOL = {"float32": 1e-4, "float64": 1e-10}
"""Final weights, relative to the player's scale (max |w| over its parameters, as docs/agreement.md
measures). One step's gradients of two float32 implementations agree to about 2e-6 of their scale
(rung b: eps_32 x the depth of the computation); gradient descent (2016) carries that into the
weights linearly, far below 1e-5. TF1 Adam divides every gradient component by its own size, so a
component that is within rounding of zero (a nearly dead relu unit: |g| ~ 1e-7 against a scale of
1) moves its weight by a rounding-decided fraction of the step size alpha_t (3e-4 .. 1e-3): measured
4.2e-5 of D's scale after one step (TensorFlow, 2017 with minibatch discrimination, D's out.w of
such a unit), and no further growth in five steps. 1e-4 leaves that room; a wrong formula (loss,
layer, optimizer, step order) moves weights by whole updates (>= 3e-4 each) from the first step.
float64: rounding 1e-16, the same effects 1e9 times smaller."""
NORMS_RTOL = {"float32": 1e-4, "float64": 1e-10}
"""norms/G and norms/D (the step's gradients, which catch what Adam's scale invariance would hide,
such as a sum for a mean): rung b's 2e-6 after up to five steps of the weights' differences above."""
LOSSES_RTOL = 1e-2
"""loss/D, loss/G, loss/real, loss/fake, relative to each curve's scale, either dtype: -log(1 - D)
near D = 1 turns one ulp of D into 1 ulp / (1 - D) of the loss, and 1 - D gets as small as the
dtype allows where the log is not clipped (protocol 2016). Measured: 4.4e-3 in float32 and 1.1e-6
in float64 where XLA's sigmoid and eager TensorFlow's differ by an ulp near D = 1 (PyTorch: 1e-6
and 1e-15). Still catches a wrong sign, term or mean (O(1)); the weights and norms above are the
tight check."""


def _train_both(framework: str, protocol: str, minibatch: bool, dtype: str):
    """The twin's and the baseline's weights and curves after STEPS steps on the same NumPy inputs
    (protocol 2016: from D after its pretraining by the twin, as ``train`` starts)."""
    twin = get_backend(framework)
    twin.use_device("cpu")
    plain = importlib.import_module(f"ganrepro.bench.plain_{framework}")
    plain.use_device("cpu")
    num_steps = STEPS - 1 if protocol == "2017" else STEPS  # 2017 runs num_steps + 1 iterations
    config = make_config(protocol, minibatch=minibatch, seeds=SEEDS, num_steps=num_steps, dtype=dtype)
    init = initial_weights(config)
    d_weights = twin.pretrain(config, init["D_pre"], pretraining(config)) if config.pretrain_steps else init["D"]
    (chunk,) = training_chunks(config)
    assert chunk.n_valid == STEPS
    state, twin_curves = twin.train_chunk(config, twin.init_state(config, init["G"], d_weights), chunk)
    plain_state, plain_curves = plain.train_chunk(config, plain.init_state(config, init["G"], d_weights), chunk)
    return (twin.state_weights(config, state), plain.state_weights(config, plain_state), twin_curves,
            plain_curves)


def _scaled_error(a: np.ndarray, b: np.ndarray, axis) -> np.ndarray:
    return np.abs(a - b).max(axis) / np.abs(a).max(axis)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("minibatch", [False, True], ids=["vanilla", "mbd"])
@pytest.mark.parametrize("protocol", ["2016", "2017"])
@pytest.mark.parametrize("framework", FRAMEWORKS)
def test_plain_baseline_computes_the_twins_step(framework, protocol, minibatch, dtype):
    """Five steps of the plain baseline and of the twin from the same weights and chunk: the same
    weights (all but ``mbd.b``: D does not depend on it, its gradient is rounding noise that Adam
    scales up to whole steps, docs/networks.md#projection-bias) and the same curves. Seeds whose
    training reaches log(0) (protocol 2016 with minibatch discrimination: its log is not clipped)
    must be NaN in both; the others are compared."""
    twin_w, plain_w, twin_c, plain_c = _train_both(framework, protocol, minibatch, dtype)
    seeds = len(SEEDS)
    flat = {impl: {p: np.concatenate([w[p][k].reshape(seeds, -1) for k in w[p] if k != "mbd.b"], 1)
                   for p in ("G", "D")} for impl, w in (("twin", twin_w), ("plain", plain_w))}
    assert {p: list(w) for p, w in twin_w.items()} == {p: list(w) for p, w in plain_w.items()}
    for p in ("G", "D"):
        assert (np.isnan(flat["twin"][p]) == np.isnan(flat["plain"][p])).all(), f"{p}: NaN in one only"
    assert (np.isnan(twin_c) == np.isnan(plain_c)).all(), "curves: NaN in one only"
    finite = ~(np.isnan(twin_c).any((0, 2)) | np.isnan(flat["twin"]["G"]).any(1) | np.isnan(flat["twin"]["D"]).any(1))
    assert finite.all() or (protocol, minibatch) == ("2016", True), "NaN where the log is clipped"
    assert finite.sum() >= seeds // 2, "too few seeds left to compare"
    for p in ("G", "D"):
        a, b = flat["twin"][p][finite], flat["plain"][p][finite]
        assert _scaled_error(a, b, None) <= WEIGHTS_RTOL[dtype], p
    curves = _scaled_error(twin_c[:, finite], plain_c[:, finite], (0, 1))  # per curve (CURVES order)
    assert (curves[4:] <= NORMS_RTOL[dtype]).all(), curves
    assert (curves[:4] <= LOSSES_RTOL).all(), curves


def test_parts_are_validated(tmp_path, capsys):
    out = tmp_path / "t"
    assert main(["bench", "--parts", "minibatch,speed", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "--parts: unknown part 'speed'; allowed: minibatch, training, image" in err
    assert main(["bench", "--parts", ",", "--out", str(out)]) == 2
    assert "names no part" in capsys.readouterr().err
    assert main(["bench", "--parts", "training,training", "--out", str(out)]) == 2
    assert "names a part twice" in capsys.readouterr().err
    assert not out.exists()


def test_parts_pick_what_is_measured(tmp_path, monkeypatch, capsys):
    """Only the named parts are measured; the README is written whatever the parts."""
    calls = []
    monkeypatch.setattr(bench, "measure", lambda *a, **k: calls.append("minibatch") or [])
    monkeypatch.setattr(bench, "measure_image", lambda *a, **k: calls.append("image") or [])
    monkeypatch.setattr(bench, "measure_training",
                        lambda framework, device, quick, capability: calls.append("training") or [
                            _row(framework, "2017", False, 1, 1e-3, 2e-3)])
    out = tmp_path / "t"
    assert main(["bench", "--parts", "training", "--device", "cpu", "--frameworks", "torch", "--out",
                 str(out)]) == 0
    assert calls == ["training"]
    assert "bench: torch training step on cpu" in capsys.readouterr().err
    names = sorted(p.name for p in out.iterdir())
    assert names == [".ganrepro-output.json", "README.md", "training_cpu.csv", "training_cpu.md",
                     "training_cpu.png"]
    assert "## Training step, cpu" in (out / "README.md").read_text()


def _row(framework, protocol, minibatch, stack, step_s, baseline_s, device="cpu"):
    steps = training_steps.run_steps(protocol)
    return {"framework": framework, "device": device, "device_name": f"test {device}", "protocol": protocol,
            "minibatch": minibatch, "stack": stack, "steps_per_call": 2, "step_s": step_s,
            "seed_step_ns": step_s / stack * 1e9, "run_steps": steps, "run_s": step_s * steps,
            "run_seed_s": step_s * steps / stack, "baseline_step_s": baseline_s,
            "baseline_seed_step_ns": baseline_s / stack * 1e9, "vs_baseline": step_s / baseline_s, "rounds": 3,
            "baseline_rounds": 3, "warmup_s": 0.5, "baseline_warmup_s": 0.1, "framework_version": "0"}


def test_vs_cpu_and_kept_rows(tmp_path):
    """vs_cpu: a CUDA row's time over the same case's CPU row (this run's, or the folder's
    training_cpu.csv); CPU rows leave it empty. A run of one framework keeps the other's rows."""
    out = tmp_path / "t"
    training_steps.write_training_tables([_row("torch", "2017", False, 128, 1e-3, 2e-3),
                                          _row("tf", "2017", False, 128, 4e-3, 8e-3)], out)
    training_steps.write_training_tables([_row("torch", "2017", False, 128, 1e-5, 1e-4, "cuda"),
                                          _row("torch", "2017", False, 4096, 1e-5, 1e-4, "cuda")], out)
    cuda = pd.read_csv(out / "training_cuda.csv")
    assert list(cuda.columns) == training_steps.COLUMNS
    assert cuda.set_index("stack").vs_cpu[128] == pytest.approx(1e-2)
    assert math.isnan(cuda.set_index("stack").vs_cpu[4096])  # no CPU row of that case
    training_steps.write_training_tables([_row("tf", "2017", False, 128, 3e-3, 9e-3)], out)
    cpu = pd.read_csv(out / "training_cpu.csv")
    assert sorted(zip(cpu.framework, cpu.step_s, strict=True)) == [("tf", 3e-3), ("torch", 1e-3)]
    assert cpu.vs_cpu.isna().all()
    markdown = (out / "training_cuda.md").read_text()
    assert markdown.startswith("# Training step, cuda: test cuda") and "| torch | 2017 | no | 128 |" in markdown
    assert (out / "training_cuda.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
