"""The minibatch-discrimination layer (docs/networks.md#minibatch-discrimination): every formulation
of both twins against the float64 NumPy reference, in value and gradient, for every self-term mode and both dtypes.

The layer maps M (..., B, K, C) to o[..., i, k] = sum_j exp(-(d_k(i, j) + s [i == j])),
d_k(i, j) = sum_c |M[i,k,c] - M[j,k,c]| (``impls/torch_minibatch.py``, ``impls/tf_minibatch.py``).
The NumPy reference (``numpy_ref.minibatch_kernel_sums`` and ``minibatch_kernel_vjp``) is itself
checked against central finite differences first.

Bounds (stated per dtype, eps its machine epsilon; every term of o is at most 1, so errors are
measured per term, i.e. divided by B):
- value:     max |o - o_ref| / B                          <= 16 eps
- gradient:  max |dM - dM_ref| / (B * 2 max |g|)          <= 16 eps
where dM = dL/dM for L = sum(g o), g the upstream gradient. 16 eps allows the rounding of d
(C differences and sums of values of order 1-10), of exp (or of the product form's 2C
factors) and of the accumulation over j; the worst reached here is 2.8 eps (float64 values at
B = 161). A wrong sign, a missed pair or a doubled diagonal is of order 1/B, far above it.
"""
from __future__ import annotations

import numpy as np
import pytest

from ganrepro.config import make_config
from ganrepro.impls import get_backend, numpy_ref

SELF_TERMS = ("exp-1", "exp0", "none")
DTYPES = ("float32", "float64")
FORMULATIONS = ("reference", "production")
VALUE_BOUND_EPS = 16
GRAD_BOUND_EPS = 16


def layer(framework: str):
    """The framework's layer module (after the twin has configured the framework)."""
    get_backend(framework)
    if framework == "torch":
        from ganrepro.impls import torch_minibatch

        return torch_minibatch
    from ganrepro.impls import tf_minibatch

    return tf_minibatch


def sums_and_grad(framework: str, m: np.ndarray, g: np.ndarray, self_term: str, formulation: str):
    """(o, dL/dM) as NumPy arrays, L = sum(g o), in the framework's layer."""
    module = layer(framework)
    if framework == "torch":
        import torch

        mt = torch.from_numpy(m).requires_grad_(True)
        o = module.kernel_sums(mt, self_term, formulation)
        (grad,) = torch.autograd.grad(o, mt, torch.from_numpy(g))
        return o.detach().numpy(), grad.numpy()
    import tensorflow as tf

    mt = tf.constant(m)
    with tf.GradientTape() as tape:
        tape.watch(mt)
        o = module.kernel_sums(mt, self_term, formulation)
    grad = tape.gradient(o, mt, output_gradients=tf.constant(g))
    return o.numpy(), grad.numpy()


def gaussian_inputs(shape, dtype: str, seed: int = 0, scale: float = 1.0):
    rng = np.random.default_rng(seed)
    m = (scale * rng.standard_normal(shape)).astype(dtype)
    g = rng.standard_normal(shape[:-1]).astype(dtype)
    return m, g


def clustered_inputs(shape, dtype: str, offset: float, seed: int = 1):
    """Two clusters of rows at -offset and +offset (unit spread within each): |M - midrange| is
    about ``offset``, beyond the product form's range when offset > log_range(dtype)."""
    m, g = gaussian_inputs(shape, dtype, seed)
    sign = np.where(np.arange(shape[-3]) % 2 == 0, -1.0, 1.0).reshape(-1, 1, 1)
    return (m + offset * sign).astype(dtype), g


def check(framework, m, g, self_term, formulation, agreement, label):
    o, grad = sums_and_grad(framework, m, g, self_term, formulation)
    o_ref = numpy_ref.minibatch_kernel_sums(m, self_term)
    grad_ref = numpy_ref.minibatch_kernel_vjp(m, self_term, g)
    assert o.shape == o_ref.shape and o.dtype == m.dtype
    assert grad.shape == m.shape and grad.dtype == m.dtype
    eps = np.finfo(m.dtype).eps
    b = m.shape[-3]
    agreement(f"{label} value", np.max(np.abs(o - o_ref)) / b / eps, VALUE_BOUND_EPS)
    scale = b * 2 * np.max(np.abs(g))
    agreement(f"{label} gradient", np.max(np.abs(grad - grad_ref)) / scale / eps, GRAD_BOUND_EPS)


# ---- the reference itself -----------------------------------------------------------------------
@pytest.mark.parametrize("self_term", SELF_TERMS)
def test_numpy_reference_gradient_matches_finite_differences(self_term):
    m, g = gaussian_inputs((2, 6, 2, 3), "float64", seed=3)
    grad = numpy_ref.minibatch_kernel_vjp(m, self_term, g)
    h = 1e-6
    numeric = np.zeros_like(m)
    for index in np.ndindex(m.shape):
        up, down = m.copy(), m.copy()
        up[index] += h
        down[index] -= h
        numeric[index] = np.sum(g * (numpy_ref.minibatch_kernel_sums(up, self_term)
                                     - numpy_ref.minibatch_kernel_sums(down, self_term))) / (2 * h)
    np.testing.assert_allclose(grad, numeric, rtol=1e-6, atol=1e-8)


def test_numpy_reference_agrees_with_the_layer_of_the_protocols():
    """minibatch_kernel_sums on M = f W + b is minibatch_features (docs/networks.md#minibatch-discrimination)."""
    for self_term in SELF_TERMS:
        config = make_config("2017", minibatch=True, mbd_self_term=self_term, seeds=(0,))
        rng = np.random.default_rng(4)
        f = rng.standard_normal((2, 9, 4))  # (seeds, batch, features); weights carry the seed axis
        w = rng.standard_normal((2, 4, config.mbd_kernels * config.mbd_dims))
        b = rng.standard_normal((2, config.mbd_kernels * config.mbd_dims))
        m = (f @ w + b[:, None, :]).reshape(2, 9, config.mbd_kernels, config.mbd_dims)
        np.testing.assert_allclose(numpy_ref.minibatch_kernel_sums(m, self_term),
                                   numpy_ref.minibatch_features(f, w, b, config), rtol=1e-13)


# ---- every formulation against the reference ----------------------------------------------------
def slow_above_tile(shape):
    """A shape above TILE (B > 64): the fused (TorchInductor) and tiled (XLA) kernels, compiled per
    dtype and shape class (dynamic shapes specialise sizes 0 and 1), 15-70 s each on 2 cores: slow."""
    return pytest.param(shape, marks=pytest.mark.slow)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("self_term", SELF_TERMS)
@pytest.mark.parametrize("formulation", FORMULATIONS)
@pytest.mark.parametrize("shape", [(1, 2, 5, 3), (2, 8, 5, 3), (3, 16, 5, 3), (2, 17, 5, 3), (1, 64, 5, 3),
                                   slow_above_tile((1, 65, 5, 3)), slow_above_tile((3, 100, 5, 3)),
                                   slow_above_tile((1, 161, 2, 1)), (130, 4, 3)],
                         ids=lambda s: "x".join(map(str, s)))
def test_layer_matches_numpy_reference(framework, shape, formulation, self_term, dtype, agreement):
    """Shapes span every production regime and its edges (PyTorch: the pair-major broadcast up to
    B = 16, the per-C loop up to 64; TF: the compiled loop up to 64), the fused / tiled kernels
    (B > 64, B not a multiple of TF's 32-row tiles), stacked seeds (a leading axis), other K and C,
    and no leading axis."""
    m, g = gaussian_inputs(shape, dtype)
    check(framework, m, g, self_term, formulation, agreement, f"{framework} {formulation}")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("self_term", SELF_TERMS)
def test_production_outside_the_product_range(framework, self_term, dtype, agreement):
    """Rows spread wider than the product form allows take the exp-per-pair kernels: still exact."""
    limit = layer(framework).log_range(_framework_dtype(framework, dtype))
    m, g = clustered_inputs((2, 90, 5, 3), dtype, offset=1.5 * limit)
    centre = 0.5 * (m.max(axis=-3, keepdims=True) + m.min(axis=-3, keepdims=True))
    assert np.abs(m - centre).max() > limit  # the condition that selects the exp-per-pair kernels
    check(framework, m, g, self_term, "production", agreement, f"{framework} production, wide")


def _framework_dtype(framework: str, dtype: str):
    if framework == "torch":
        import torch

        return getattr(torch, dtype)
    import tensorflow as tf

    return tf.as_dtype(dtype)


def test_unknown_formulation_is_refused(framework):
    m, _ = gaussian_inputs((1, 4, 5, 3), "float32")
    tensor = get_backend(framework).to_tensors({"m": m})["m"]
    with pytest.raises(ValueError, match=r"unknown minibatch formulation 'broadcast'.*reference, production"):
        layer(framework).kernel_sums(tensor, "exp0", "broadcast")


# ---- what training uses -------------------------------------------------------------------------
def test_training_uses_the_production_formulation(framework):
    """The twin's minibatch_features defaults to the production formulation, the same numbers as
    the layer's production kernel sums of M = f W + b, at the training batch and above TILE."""
    import inspect

    backend = get_backend(framework)
    module = layer(framework)
    assert inspect.signature(backend.minibatch_features).parameters["formulation"].default == "production"
    config = make_config("2017", minibatch=True, seeds=(0,))
    rng = np.random.default_rng(5)
    k, c = config.mbd_kernels, config.mbd_dims
    for batch in (config.batch_size, module.TILE + 30):
        f = rng.standard_normal((2, batch, 4)).astype(np.float32)
        w = rng.standard_normal((2, 4, k * c)).astype(np.float32)
        b = rng.standard_normal((2, k * c)).astype(np.float32)
        t = backend.to_tensors({"f": f, "w": w, "b": b})
        default = backend.to_numpy({"o": backend.minibatch_features(t["f"], t["w"], t["b"], config)})["o"]
        m = (f.astype(np.float64) @ w + b[:, None, :]).reshape(2, batch, k, c)
        expected = numpy_ref.minibatch_kernel_sums(m, config.mbd_self_term)
        np.testing.assert_allclose(default, expected, rtol=1e-4, atol=1e-4 * batch)


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_training_step_above_the_tile_agrees_across_frameworks(twins, dtype, agreement):
    """At B = 96 (> TILE) the training step's D takes the fused (PyTorch) and tiled (TF) kernels with
    their hand-written backwards: forward outputs, losses and the gradients of G and D agree across
    frameworks within the bounds of ladder rung (b) (relative to each quantity's scale)."""
    from ganrepro.streams import training_chunks
    from ganrepro.weights import initial_weights

    from helpers import TWIN_BOUNDS as BOUNDS
    from helpers import player_scale

    torch_twin, tf_twin = twins
    config = make_config("2017", minibatch=True, batch_size=96, dtype=dtype, seeds=(0, 1))
    assert config.batch_size > layer("torch").TILE and config.batch_size > layer("tf").TILE
    w = initial_weights(config)
    # At initialisation every o[i, k] is close to B = 96, which saturates D's sigmoid (exactly, in
    # float64); scale the output weights of the K minibatch features by 1/B so gradients flow.
    d = {name: value.copy() for name, value in w["D"].items()}
    d["out.w"][:, -config.mbd_kernels:, :] /= config.batch_size
    chunk = next(training_chunks(config))
    args = (config, w["G"], d, chunk.x[0], chunk.z_d[0])
    a, b = torch_twin.forward_and_gradients(*args), tf_twin.forward_and_gradients(*args)
    worst = 0.0
    for prefix in ("grad_d/", "grad_g/"):
        scale = player_scale(b, prefix)
        assert scale > 0
        worst = max(worst, max(np.max(np.abs(a[k] - b[k])) / scale for k in b if k.startswith(prefix)))
    agreement(f"B=96 gradients of G and D, TF vs PyTorch ({dtype})", worst, BOUNDS[dtype])
