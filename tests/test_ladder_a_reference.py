"""Agreement ladder, rung (a): every layer, loss, gradient and optimizer update of each twin
against the float64 NumPy reference (``impls/numpy_ref.py``); gradients against central finite
differences of the reference's own losses."""
from __future__ import annotations

import functools

import numpy as np
import pytest

from ganrepro.config import make_config
from ganrepro.impls import get_backend
from ganrepro.impls import numpy_ref as ref
from ganrepro.streams import pretraining, training_chunks
from ganrepro.weights import initial_weights

from helpers import CELLS


def cell_config(name, seeds=(0, 1)):
    kw = dict(CELLS[name])
    return make_config(kw.pop("protocol"), dtype="float64", seeds=seeds, **kw)


def rel(a, b) -> float:
    """max |a - b| / max |b|: the error relative to the quantity's scale."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1e-300))


def inputs(config):
    chunk = next(training_chunks(config))
    w = initial_weights(config)
    return w["G"], w["D"], chunk.x[0], chunk.z_d[0]


def as_np(t):
    return np.asarray(t)


@pytest.mark.parametrize("cell", list(CELLS))
def test_layers_match_the_reference(framework, cell, agreement):
    twin = get_backend(framework)
    config = cell_config(cell)
    g, d, x, z = inputs(config)
    tg, td = twin.to_tensors(g), twin.to_tensors(d)
    tx, tz = (twin.to_tensors({"a": a})["a"] for a in (x, z))
    worst = rel(as_np(twin.generator(tg, tz)), ref.generator(g, z))
    prob, f = twin.discriminator(td, tx, config)
    r_prob, r_f = ref.discriminator(d, x, config)
    worst = max(worst, rel(as_np(prob), r_prob), rel(as_np(f), r_f))
    if config.minibatch:
        h = np.tanh(ref.linear(x[..., None] / 4, d["d0.w"], d["d0.b"]) @ d["d1.w"])  # any (S, B, 2h) input
        o = twin.minibatch_features(twin.to_tensors({"h": h})["h"], td["mbd.w"], td["mbd.b"], config)
        worst = max(worst, rel(as_np(o), ref.minibatch_features(h, d["mbd.w"], d["mbd.b"], config)))
    agreement(f"{framework} G, D, f, mbd vs NumPy (float64)", worst, 1e-13)


def test_softplus_is_exact_across_its_range(framework, agreement):
    twin = get_backend(framework)
    x = np.concatenate([np.linspace(-60, 60, 2001), [-700.0, -40.0, 19.9, 20.1, 33.0, 36.0, 700.0]])
    got = as_np(twin.softplus(twin.to_tensors({"x": x})["x"]))
    relative = float(np.max(np.abs(got - ref.softplus(x)) / ref.softplus(x)))
    agreement(f"{framework} softplus vs logaddexp, relative", relative, 1e-15)


FD_STEP = 1e-6


def fd_bound(loss: float, scale: float) -> float:
    """What central differences can resolve, relative to the gradient's scale: their rounding error
    eps |L| / h (cancellation in L(p + h) - L(p - h)) times 10 for safety, plus 1e-8 for the
    O(h^2) truncation term."""
    return 10 * np.finfo(np.float64).eps * max(abs(loss), 1.0) / FD_STEP / scale + 1e-8


@functools.cache
def reference_gradients(cell):
    """Central-difference gradients of the reference losses (S = 1 keeps this fast)."""
    config = cell_config(cell, seeds=(0,))
    g, d, x, z = inputs(config)
    grad_d = ref.numerical_gradient(lambda p: ref.losses(config, g, p, x, z)["loss_d"].sum(), dict(d), FD_STEP)
    grad_g = ref.numerical_gradient(lambda p: ref.losses(config, p, d, x, z)["loss_g"].sum(), dict(g), FD_STEP)
    return grad_d, grad_g


@pytest.mark.parametrize("cell", list(CELLS))
def test_losses_and_gradients_match_the_reference(framework, cell, agreement):
    twin = get_backend(framework)
    config = cell_config(cell, seeds=(0,))
    g, d, x, z = inputs(config)
    got = twin.forward_and_gradients(config, g, d, x, z)
    expected = ref.losses(config, g, d, x, z)
    agreement(f"{framework} forward and losses vs NumPy", max(rel(got[k], expected[k]) for k in expected), 1e-13)
    grad_d, grad_g = reference_gradients(cell)
    scale_d = max(np.max(np.abs(v)) for v in grad_d.values())
    scale_g = max(np.max(np.abs(v)) for v in grad_g.values())
    err_d = max(np.max(np.abs(got[f"grad_d/{k}"] - v)) for k, v in grad_d.items()) / scale_d
    err_g = max(np.max(np.abs(got[f"grad_g/{k}"] - v)) for k, v in grad_g.items()) / scale_g
    agreement(f"{framework} dL_D/dD vs finite differences", err_d, fd_bound(expected["loss_d"][0], scale_d))
    agreement(f"{framework} dL_G/dG vs finite differences", err_g, fd_bound(expected["loss_g"][0], scale_g))


@pytest.mark.parametrize("protocol", ["2016", "2017"])
def test_optimizer_updates_match_the_reference(framework, protocol, agreement):
    twin = get_backend(framework)
    config = make_config(protocol, dtype="float64", seeds=(0, 1))
    rng = np.random.default_rng(0)
    params = {"w": rng.standard_normal((2, 3, 4)), "b": rng.standard_normal((2, 4))}
    zero = {k: (np.zeros_like(v), np.zeros_like(v)) for k, v in params.items()}
    slots_t = slots_r = zero if config.optimizer == "adam_tf1" else {}
    p_t = p_r = params
    lrs = (0.005, 0.005 * 0.95) if protocol == "2016" else tuple(np.r_[1e-3, 3e-4, 2e-4])
    worst = 0.0
    for lr in lrs:
        grads = {k: rng.standard_normal(v.shape) * 10.0 ** rng.integers(-6, 2) for k, v in params.items()}
        p_t, slots_t = twin.optimizer_update(config, p_t, grads, slots_t, lr)
        if config.optimizer == "adam_tf1":
            p_r, slots_r = ref.adam_update(p_r, grads, slots_r, lr)
        else:
            p_r = ref.gd_update(p_r, grads, lr)
        worst = max(worst, max(rel(p_t[k], p_r[k]) for k in p_r))
    agreement(f"{framework} {config.optimizer} updates vs NumPy", worst, 1e-15)


@pytest.mark.parametrize("minibatch", [False, True], ids=["vanilla", "mbd"])
def test_pretraining_step_matches_the_reference(framework, minibatch, agreement):
    twin = get_backend(framework)
    config = make_config("2016", minibatch=minibatch, dtype="float64", seeds=(0,), pretrain_steps=1)
    w = initial_weights(config)["D_pre"]
    data = pretraining(config)
    after = twin.pretrain(config, w, data)
    grads = ref.numerical_gradient(
        lambda p: ref.pretrain_loss(config, p, data.inputs[0], data.labels[0]).sum(), dict(w))
    expected = ref.gd_update(w, grads, data.lr[0])
    step = max(np.max(np.abs(w[k] - expected[k])) for k in w)
    err = max(np.max(np.abs(after[k] - expected[k])) for k in w) / step
    agreement(f"{framework} pretraining update vs NumPy + finite differences", err, 1e-6)


def test_minibatch_bias_has_no_effect(framework):
    """The minibatch projection's bias cancels in M_i - M_j: D's output does not depend on it, so
    its gradient is zero up to rounding (the whole-run tests leave its value out for that reason)."""
    twin = get_backend(framework)
    config = cell_config("2017-mbd-exp0")
    g, d, x, z = inputs(config)
    shifted = dict(d, **{"mbd.b": d["mbd.b"] + 1.0})
    a = twin.forward_and_gradients(config, g, d, x, z)
    b = twin.forward_and_gradients(config, g, shifted, x, z)
    assert rel(b["d_real"], a["d_real"]) < 1e-13 and rel(b["loss_d"], a["loss_d"]) < 1e-13
    scale = max(np.max(np.abs(v)) for k, v in a.items() if k.startswith("grad_d/"))
    assert np.max(np.abs(a["grad_d/mbd.b"])) < 1e-13 * scale


@pytest.mark.parametrize("t", [0, 1, 7])
def test_historical_penalty_matches_the_reference(framework, t, agreement):
    twin = get_backend(framework)
    config = make_config("2017", dtype="float64", historical_averaging=0.01)
    rng = np.random.default_rng(t)
    theta, past = rng.standard_normal((3, 20)), rng.standard_normal((3, 20)) * max(t, 1)
    penalty, grad = twin.penalty_and_gradient(config, theta, past, t)
    r_penalty, r_grad = ref.historical_penalty(theta, past, t, 0.01)
    if t == 0:
        assert np.all(penalty == 0) and np.all(grad == 0)
        return
    agreement(f"{framework} historical penalty and gradient vs NumPy",
              max(rel(penalty, r_penalty), rel(grad, r_grad)), 1e-14)
