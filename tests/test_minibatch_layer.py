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

PyTorch's production path is also held to exact equalities: at B <= 16 every way it evaluates
the broadcast gives autograd's bits through the broadcast's ops; a seed's value and gradient
have the same bits alone and in stacks of up to 1000; and nothing is read back to the host
(a synchronisation on CUDA), the fused kernels' backward included where CUDA takes it.
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


# ---- PyTorch's production path: its evaluations bit for bit, a seed's bits, no host reads ---------
HOST_READS = ("item", "tolist", "__float__", "__int__", "__bool__")
"""The Tensor methods that read a value back to the host (a device-to-host sync on CUDA)."""
STACKS = (1, 2, 3, 7, 128, 1000)


@pytest.fixture
def torch_layer():
    """The PyTorch layer module; skips without torch (fails under GANREPRO_REQUIRE_FRAMEWORKS=1)."""
    import os

    from ganrepro.impls import available

    if not available("torch"):
        if os.environ.get("GANREPRO_REQUIRE_FRAMEWORKS") == "1":
            pytest.fail("framework 'torch' is required (GANREPRO_REQUIRE_FRAMEWORKS=1) but not installed")
        pytest.skip("framework 'torch' not installed")
    return layer("torch")


def bits(t):
    """The tensor's bit patterns (NumPy integers), every NaN one pattern: bitwise comparisons."""
    a = t.detach().numpy()
    a = np.where(np.isnan(a), np.array(np.nan, a.dtype), a)
    return a.view(np.int32 if a.dtype == np.float32 else np.int64)


def awkward_inputs(shape, dtype: str, kind: str, seed: int = 0):
    """M and g with what exercises signs and zeros: ties (equal rows, rounded values), zeros of
    both signs (M and g), values spread over 65 orders of magnitude (subnormal in float32), or
    differences that overflow."""
    rng = np.random.default_rng(seed)
    m, g = gaussian_inputs(shape, "float64", seed)
    if kind == "ties":
        m = np.maximum(np.round(m), 0.0)
        if shape[-3] > 1:
            m[..., 1, :, :] = m[..., 0, :, :]
        m = np.where(rng.random(shape) < 0.2, -0.0, m)
        g = np.where(rng.random(g.shape) < 0.3, 0.0, g) * np.where(rng.random(g.shape) < 0.5, -1.0, 1.0)
    elif kind == "spread":
        m = m * np.exp(rng.uniform(-105, 46, shape))  # float32: subnormals too
    elif kind == "overflow":
        big = np.finfo(dtype).max / 1.5
        m[..., 0, :, :] = big
        if shape[-3] > 1:
            m[..., 1, :, :] = -big
    return m.astype(dtype), g.astype(dtype)


def autograd_broadcast(module, m, self_term):
    """The pair-major broadcast as autograd ops, the numbers every evaluation must reproduce."""
    dist = (m.unsqueeze(-3) - m.unsqueeze(-4)).abs().sum(-1)
    return module._production_kernel(dist, self_term).sum(-2)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("self_term", SELF_TERMS)
@pytest.mark.parametrize("kind", ["gaussian", "ties", "spread", "overflow"])
@pytest.mark.parametrize("shape", [(5, 1, 5, 3), (2, 3, 4, 1), (3, 5, 2, 2), (40, 8, 5, 3), (30, 12, 5, 3),
                                   (2, 16, 3, 4), (4, 6, 2, 3), (12, 5, 3)],
                         ids=lambda s: "x".join(map(str, s)))
def test_broadcast_evaluations_are_autograd_bit_for_bit(torch_layer, monkeypatch, shape, kind, self_term, dtype):
    """B <= BROADCAST_MAX: the hand-written backward (``_BroadcastSums``), the forward without a
    gradient, whole or in chunks, and production's choice among them give autograd's numbers
    through the broadcast's ops, value and gradient, bit for bit (signed zeros and the rows of a
    non-finite pair included): they are the same arithmetic, element for element."""
    import torch

    module = torch_layer
    m_np, g_np = awkward_inputs(shape, dtype, kind)
    g = torch.from_numpy(g_np)

    def value_and_grad(fn):
        m = torch.from_numpy(m_np).requires_grad_(True)
        o = fn(m)
        return bits(o), bits(torch.autograd.grad(o, m, g)[0])

    want_o, want_grad = value_and_grad(lambda m: autograd_broadcast(module, m, self_term))
    for name, fn in [("hand-written backward", lambda m: module._BroadcastSums.apply(m, self_term)),
                     ("production", lambda m: module.kernel_sums(m, self_term))]:
        o, grad = value_and_grad(fn)
        assert np.array_equal(o, want_o), f"{name}: value"
        assert np.array_equal(grad, want_grad), f"{name}: gradient"
    m = torch.from_numpy(m_np)
    with torch.no_grad():
        assert np.array_equal(bits(module.kernel_sums(m, self_term)), want_o), "production without a gradient"
        monkeypatch.setattr(module, "SMALL_TILE", 0)
        assert np.array_equal(bits(module.broadcast_sums(m, self_term)), want_o), "without a gradient"
        monkeypatch.setattr(module, "CHUNK_TILE", 1)  # a chunk per leading row
        assert np.array_equal(bits(module.broadcast_sums(m, self_term)), want_o), "in chunks"


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("self_term", SELF_TERMS)
@pytest.mark.parametrize("batch", [2, 8, 12, 16, 40])
def test_a_seed_has_the_same_bits_in_every_stack(torch_layer, batch, self_term, dtype):
    """Production's value and gradient for seed i of a stack of S, S in STACKS, are bit for bit
    those of seed i alone and in the stack of 1000, with and without a gradient (the evaluation
    chosen by the tile's size changes with S: its numbers must not)."""
    import torch

    module = torch_layer
    m_np, g_np = awkward_inputs((max(STACKS), batch, 5, 3), dtype, "gaussian", seed=batch)
    m_np[::3] = np.maximum(np.round(m_np[::3]), 0.0)  # ties and zeros in every third seed

    def run(lo, hi):
        m = torch.from_numpy(m_np[lo:hi]).requires_grad_(True)
        o = module.kernel_sums(m, self_term)
        grad = torch.autograd.grad(o, m, torch.from_numpy(g_np[lo:hi]))[0]
        with torch.no_grad():
            plain = module.kernel_sums(m.detach(), self_term)
        return bits(o), bits(grad), bits(plain)

    full = run(0, max(STACKS))
    assert np.array_equal(full[0], full[2]), "with and without a gradient"
    for stack in STACKS:
        for got, want in zip(run(0, stack), full, strict=True):
            assert np.array_equal(got, want[:stack]), f"stack of {stack}"
    for seed in (0, 1, 6, 127, max(STACKS) - 1):
        for got, want in zip(run(seed, seed + 1), full, strict=True):
            assert np.array_equal(got, want[seed:seed + 1]), f"seed {seed} alone"


@pytest.fixture
def no_host_reads(monkeypatch):
    """A context in which reading a tensor's value back to the host raises (HOST_READS)."""
    import contextlib

    import torch

    def refuse(*args, **kwargs):
        raise AssertionError("a value was read back to the host")

    @contextlib.contextmanager
    def context():
        with monkeypatch.context() as patch:
            for name in HOST_READS:
                patch.setattr(torch.Tensor, name, refuse)
            yield

    return context


@pytest.mark.parametrize("shape", [(1, 8, 5, 3), (200, 8, 5, 3), (3, 40, 5, 3)], ids=lambda s: "x".join(map(str, s)))
def test_production_reads_nothing_back_to_the_host(torch_layer, no_host_reads, shape):
    """Forward and backward of the eager regimes (every evaluation of the broadcast, the per-C loop)
    read no value back: on CUDA each such read would stall the launch queue. (The fused kernels'
    backward: test_fused_backward_without_host_reads.)"""
    import torch

    m_np, g_np = gaussian_inputs(shape, "float32")
    m = torch.from_numpy(m_np).requires_grad_(True)
    with no_host_reads():
        o = torch_layer.kernel_sums(m, "exp-1")
        torch.autograd.grad(o, m, torch.from_numpy(g_np))
        with torch.no_grad():
            torch_layer.kernel_sums(m.detach(), "exp-1")


@pytest.mark.slow
@pytest.mark.parametrize("dtype", DTYPES)
def test_fused_backward_without_host_reads(torch_layer, no_host_reads, dtype, agreement):
    """B > TILE: the backward that CUDA takes (``host_read=False``: exp per pair, always), run on
    CPU, reads nothing back to the host, and agrees with the NumPy reference and with the CPU's
    products backward within the gradient bound; the CPU's choice does read (the patch works)."""
    import torch

    shape = (2, 90, 5, 3)
    m_np, g_np = gaussian_inputs(shape, dtype)
    g = torch.from_numpy(g_np)

    def run(host_read):
        m = torch.from_numpy(m_np).requires_grad_(True)
        o = torch_layer.fused_sums(m, "exp-1", host_read=host_read)
        return o.detach().numpy(), torch.autograd.grad(o, m, g)[0].numpy()

    o, grad = run(False)  # compiles outside the patch
    o_products, grad_products = run(True)
    with no_host_reads():
        o_again, grad_again = run(False)
        with pytest.raises(AssertionError, match="read back to the host"):
            run(True)
    assert np.array_equal(o_again, o) and np.array_equal(grad_again, grad)
    assert np.array_equal(o, o_products)  # the same forward
    eps = np.finfo(dtype).eps
    scale = shape[-3] * 2 * np.max(np.abs(g_np))
    grad_ref = numpy_ref.minibatch_kernel_vjp(m_np, "exp-1", g_np)
    agreement(f"fused, no host read ({dtype}) gradient", np.max(np.abs(grad - grad_ref)) / scale / eps, GRAD_BOUND_EPS)
    agreement(f"fused, no host read vs products ({dtype}) gradient",
              np.max(np.abs(grad - grad_products)) / scale / eps, GRAD_BOUND_EPS)
    m = torch.from_numpy(m_np).requires_grad_(True)
    grad_autograd = torch.autograd.grad(torch_layer.reference_sums(m, "exp-1"), m, g)[0].numpy()
    agreement(f"fused, no host read vs autograd of the reference ({dtype}) gradient",
              np.max(np.abs(grad - grad_autograd)) / scale / eps, GRAD_BOUND_EPS)


@pytest.mark.parametrize("shape", [(2, 8, 5, 3), (200, 8, 5, 3), (3, 40, 5, 3), slow_above_tile((2, 100, 5, 3))],
                         ids=lambda s: "x".join(map(str, s)))
def test_production_on_cuda_never_synchronises(torch_layer, shape, agreement):
    """On a GPU, production's forward and backward (and its forward without a gradient) make no
    synchronising CUDA call (``torch.cuda.set_sync_debug_mode("error")`` raises on one) and agree
    with the NumPy reference within the bounds. Skipped without CUDA."""
    import torch

    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    m_np, g_np = gaussian_inputs(shape, "float32")
    m = torch.from_numpy(m_np).cuda().requires_grad_(True)
    g = torch.from_numpy(g_np).cuda()

    def run():
        o = torch_layer.kernel_sums(m, "exp-1")
        grad = torch.autograd.grad(o, m, g)[0]
        with torch.no_grad():
            plain = torch_layer.kernel_sums(m.detach(), "exp-1")
        return o, grad, plain

    run()  # compiles (B > TILE) and warms the allocator outside the check
    torch.cuda.synchronize()
    mode = torch.cuda.get_sync_debug_mode()
    torch.cuda.set_sync_debug_mode("error")
    try:
        o, grad, plain = run()
    finally:
        torch.cuda.set_sync_debug_mode(mode)
    o, grad, plain = (t.detach().cpu().numpy() for t in (o, grad, plain))
    assert np.array_equal(o, plain)
    eps, b = np.finfo(np.float32).eps, shape[-3]
    agreement("cuda value", np.max(np.abs(o - numpy_ref.minibatch_kernel_sums(m_np, "exp-1"))) / b / eps,
              VALUE_BOUND_EPS)
    grad_ref = numpy_ref.minibatch_kernel_vjp(m_np, "exp-1", g_np)
    agreement("cuda gradient", np.max(np.abs(grad - grad_ref)) / (b * 2 * np.max(np.abs(g_np))) / eps, GRAD_BOUND_EPS)


def test_only_options_the_installed_inductor_knows_reach_torch_compile(torch_layer):
    """``torch.compile`` refuses an option its Inductor lacks (PyTorch 2.11 has no ``cpp.march``, which
    the instruction-set pin asks for): the layer passes on the known ones and drops the rest."""
    options = {"cpp.simdlen": 256, "cpp.no_such_option": "x", "no-such-option": 1}
    assert torch_layer._known_to_inductor(options) == {"cpp.simdlen": 256}
