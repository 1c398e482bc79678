"""The fused training step (``impls/torch_fused_step.py``): CUDA's step for protocol 2017 without technique
terms, one Triton kernel per step, against the PyTorch twin's eager step.

Whole chunks of steps (``StaticStep(fused=True)`` against ``StaticStep(indexed=True)``, the same start,
chunks with a short last one) agree within the agreement ladder's bounds (docs/agreement.md#bounds:
1e-9 relative in float64, 1e-3 in float32) in every curve and every weight but ``mbd.b`` (D does not
depend on it: its gradient is pure rounding); the kernel's sums run in other orders than the eager
step's, so somewhere they differ. A seed's bits are the same alone and in a stack, the same run
twice gives the same bits, and a diverged seed's NaN and infinite values are where the eager step's are.

Without a GPU the kernel runs in Triton's interpreter (``TRITON_INTERPRET=1`` before triton is imported),
in a child process that prints its results as JSON (Triton 3.9 or later, as for the minibatch
layer's kernels); where PyTorch sees a CUDA device, the same cases run compiled on the GPU. Which form
CUDA runs for which config (``torch_twin._step_form``) is checked everywhere triton is installed.
"""
from __future__ import annotations

import importlib.util
import re

import numpy as np
import pytest

from ganrepro import impls
from ganrepro.bench.cases import cuda_available
from ganrepro.config import make_config
from ganrepro.streams import training_chunks
from ganrepro.weights import initial_weights

from helpers import CELLS, in_triton_interpreter, relative_difference, triton_interpreter_usable

pytestmark = pytest.mark.skipif(not (impls.available("torch") and importlib.util.find_spec("triton")),
                                reason="needs PyTorch and triton")

CASES = {
    "vanilla": {},
    "mbd": {"minibatch": True},
    "mbd-none-B5": {"minibatch": True, "mbd_self_term": "none", "batch_size": 5},
    "mbd-exp-1-K3C2": {"minibatch": True, "mbd_self_term": "exp-1", "mbd_kernels": 3, "mbd_dims": 2},
    "h3-B6": {"hidden_size": 3, "batch_size": 6},
}
"""Protocol 2017 cells: the two of the suite (default sizes), each self term, and sizes that are not
powers of two (the kernel pads them)."""
BOUNDS = {"float64": 1e-9, "float32": 1e-3}
STEPS, CHUNK = 24, 10
"""25 iterations in chunks of 9, 8 and 8 valid steps."""
STACK_SEEDS = (3, 4, 5, 6, 7)


def _run(twin, config, fused: bool, weights=None):
    """(curves, weights) after the run's steps from ``weights`` (default: the initial ones), by ``StaticStep``."""
    weights = weights or initial_weights(config)
    state = twin.init_state(config, weights["G"], weights["D"])
    curves = []
    for chunk in training_chunks(config, max_chunk=CHUNK):
        state, rows = twin.StaticStep(config, state, chunk, indexed=True, fused=fused).run(state, chunk)
        curves.append(rows[:chunk.n_valid])
    return np.concatenate(curves), twin.state_weights(config, state)


def _bits(curves, weights, seeds=slice(None)) -> list[np.ndarray]:
    """The run's curves and weights, of the seeds ``seeds`` (an index into the stack)."""
    return [curves[:, seeds], *(weights[net][k][seeds] for net in ("G", "D") for k in sorted(weights[net]))]


def results(device: str) -> dict:
    """{case dtype: largest relative difference fused vs eager}, and "stack" (seed STACK_SEEDS[2] alone
    equals it in the stack, bitwise), "repeat" (the same run twice, bitwise), "nonfinite" (a diverged seed's
    NaN and infinite values where the eager step's are, ``mbd.b`` aside), with the fused step on ``device``."""
    from ganrepro.impls import get_backend

    twin = get_backend("torch")
    twin.use_device(device)
    out: dict = {}
    for name, values in CASES.items():
        for dtype in BOUNDS:
            config = make_config("2017", seeds=(0, 1, 2), num_steps=STEPS, dtype=dtype, **values)
            (fused_curves, fused), (eager_curves, eager) = _run(twin, config, True), _run(twin, config, False)
            differences = [relative_difference(fused[net][k], eager[net][k]) for net in ("G", "D")
                           for k in eager[net] if k != "mbd.b"]
            out[f"{name} {dtype}"] = max([*differences, relative_difference(fused_curves, eager_curves)])
    out["stack"] = out["repeat"] = out["nonfinite"] = True
    for values in (CASES["vanilla"], CASES["mbd"]):
        # a diverged seed (NaN in D) and one whose G is infinite: the same values are NaN or infinite
        config = make_config("2017", seeds=(0, 1, 2), num_steps=6, dtype="float64", **values)
        weights = initial_weights(config)
        weights["D"]["out.w"][1, 0, 0], weights["G"]["g1.b"][2, 0] = np.nan, np.inf
        fused, eager = (_bits(*_run(twin, config, f, weights)) for f in (True, False))
        names = ["curves", *(f"{net} {k}" for net in ("G", "D") for k in sorted(weights[net]))]
        out["nonfinite"] &= all(np.array_equal(np.isnan(a), np.isnan(b)) and np.array_equal(np.isinf(a), np.isinf(b))
                                for name, a, b in zip(names, fused, eager, strict=True) if name != "D mbd.b")

        config = make_config("2017", seeds=STACK_SEEDS, num_steps=STEPS, **values)
        stack, again = _run(twin, config, True), _run(twin, config, True)
        alone = _bits(*_run(twin, config.with_seeds(STACK_SEEDS[2:3]), True))
        out["stack"] &= all(np.array_equal(s, a) for s, a in zip(_bits(*stack, slice(2, 3)), alone, strict=True))
        out["repeat"] &= all(np.array_equal(a, b) for a, b in zip(_bits(*stack), _bits(*again), strict=True))
    return out


def _check(out: dict, agreement, where: str) -> None:
    assert out.pop("stack") is True, "a seed's bits differ alone and in a stack"
    assert out.pop("repeat") is True, "the same run twice gave other bits"
    assert out.pop("nonfinite") is True, "a diverged seed's NaN or infinite values differ from the eager step's"
    assert len(out) == len(CASES) * len(BOUNDS)
    for dtype, bound in BOUNDS.items():
        worst = max(v for k, v in out.items() if k.endswith(dtype))
        agreement(f"torch fused step vs eager step ({where}, {dtype}, {STEPS + 1} steps): relative", worst, bound)
    assert max(out.values()) > 0, "the fused step gave the eager step's bits: did it run?"


@pytest.mark.slow
@pytest.mark.skipif(not triton_interpreter_usable(),
                    reason="Triton's interpreter before 3.9 cannot take scalar arguments under NumPy 2.4")
def test_the_fused_step_agrees_with_the_eager_step_in_triton_s_interpreter(agreement):
    _check(in_triton_interpreter("test_fused_step", "results('cpu')", timeout=900), agreement, "interpreted")


@pytest.mark.skipif(not cuda_available(), reason="needs a CUDA device")
def test_the_fused_step_agrees_with_the_eager_step_on_cuda(agreement):
    _check(results("cuda"), agreement, "cuda")


# ---- which configs it takes, and which step CUDA runs ------------------------------------------------
def test_the_fused_step_takes_protocol_2017_without_technique_terms_and_refuses_the_rest_by_name():
    import torch

    from ganrepro.impls.torch_fused_step import FusedStep, supports

    taken = {name for name, values in CELLS.items() if supports(make_config(**values)) is None}
    assert taken == {"2017-vanilla", "2017-mbd-exp0", "2017-mbd-exp-1", "2017-mbd-none"}
    refused = {
        "2016": (make_config("2016"), "protocol 2017's step"),
        "saturating": (make_config("2017", g_loss="saturating"), "without technique terms"),
        "noise": (make_config("2017", instance_noise=0.1), "without technique terms"),
        "historical": (make_config("2017", historical_averaging=0.01), "without technique terms"),
        "batch": (make_config("2017", batch_size=17), "batch_size = 17 is above its limit 16"),
        "hidden": (make_config("2017", hidden_size=9), "hidden_size = 9 is above its limit 8"),
        "kernels": (make_config("2017", minibatch=True, mbd_kernels=9), "mbd_kernels = 9 is above its limit 8"),
        "dims": (make_config("2017", minibatch=True, mbd_dims=5), "mbd_dims = 5 is above its limit 4"),
    }
    for config, reason in refused.values():
        assert reason in supports(config)
        with pytest.raises(ValueError, match=f"does not take {re.escape(config.slug)}: .*{re.escape(reason)}"):
            FusedStep(config, torch.float32, torch.device("cpu"))
    with pytest.raises(ValueError, match=r"launch shape \(3, 4\)"):
        FusedStep(make_config("2017"), torch.float32, torch.device("cpu"), shape=(3, 4))


def test_cuda_runs_the_fused_step_where_it_can_and_the_compiled_step_elsewhere(monkeypatch):
    from ganrepro.impls import get_backend

    twin = get_backend("torch")
    for switch in (twin.CUDA_FUSED_ENV, twin.CUDA_COMPILE_ENV):  # the defaults, whatever the caller set
        monkeypatch.delenv(switch, raising=False)  # (gpu_checks.sh sets them when a form cannot run)
    plain, mbd = make_config("2017"), make_config("2017", minibatch=True)
    smoothing = make_config("2017", label_smoothing=0.9)
    assert [twin._step_form(c, "cuda") for c in (plain, mbd, smoothing)] == ["fused", "fused", "compiled"]
    assert twin._step_form(plain, "cpu") == "eager"
    monkeypatch.setenv(twin.CUDA_FUSED_ENV, "0")
    assert twin._step_form(plain, "cuda") == "compiled"
    monkeypatch.setenv(twin.CUDA_COMPILE_ENV, "0")
    assert twin._step_form(plain, "cuda") == "eager"
    monkeypatch.delenv(twin.CUDA_FUSED_ENV)
    assert [twin._step_form(c, "cuda") for c in (plain, smoothing)] == ["fused", "eager"]
