"""The PyTorch twin: docs/networks.md, losses.md and updates.md for a stack of S seeds, in eager PyTorch.

Diff this file against ``tf_twin.py``: the two define the same functions in the same order and
differ only in framework idioms. Every tensor carries a leading seed axis S; batches are (S, B).
"""
from __future__ import annotations

import functools
import importlib.util
import math
import os
import warnings

os.environ.setdefault("ATEN_CPU_CAPABILITY", "default")  # one rounding path per element: see configure()
os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # deterministic cuBLAS, required on CUDA by configure()

import numpy as np
import threadpoolctl
import torch

from ganrepro.config import LOG_CLIP, ExperimentConfig
from ganrepro.devices import DeviceUnavailable, check_device, cpu_info, nvidia_driver
from ganrepro.schedules import ADAM_BETA1, ADAM_BETA2, ADAM_EPS
from ganrepro.streams import Chunk, Pretraining, noise_routing, pad_to_batches, with_noise
from ganrepro.weights import discriminator_shapes, generator_shapes

from .import_order import check_torch_after_tensorflow
from .interface import CURVES, in_curve_order
from .torch_minibatch import kernel_sums

NAME = "torch"
CUDA_GRAPHS_ENV = "GANREPRO_CUDA_GRAPHS"
"""Set to 0 to run CUDA training steps eagerly instead of as graph replays (``train_chunk``)."""
CUDA_COMPILE_ENV = "GANREPRO_CUDA_COMPILE"
"""Set to 0 to run CUDA training steps as the eager step's ops instead of the step compiled by
TorchInductor (``_compiled_train_step``)."""
CUDA_FUSED_ENV = "GANREPRO_CUDA_FUSED"
"""Set to 0 to run the CUDA training steps that the fused kernel takes (``torch_fused_step.supports``:
protocol 2017 without technique terms) by the compiled step instead."""
RECOMPILE_LIMIT = 1024
"""Compiled steps one process may hold (one per config and stack shape; Dynamo's default is 8, past
which it would fall back to the eager step silently: here it raises instead)."""
STACK_LIMIT = None
"""No limit: a seed alone and in a stack of any size round the same (tests/test_determinism.py)."""


def configure() -> None:
    """Deterministic kernels, no TF32, one intra-op thread (runs are parallel across processes), and NumPy's
    BLAS on one thread too (the image twin's CPU products are NumPy's, ``torch_exact_product``: with a BLAS
    thread per core in each of a sweep's workers, a 2-core machine ran the image grid 3 times slower).

    ATen's SIMD kernels compute the tail of a tensor that does not fill a whole vector with
    scalar code whose rounding differs from the vector code's; a seed's numbers would then depend
    on where it sits in the stack. ``ATEN_CPU_CAPABILITY=default`` (set before torch is imported,
    see the top of this module) makes every element take the same path. It costs speed where
    tensors are large (a stack of 128 seeds: 24 instead of 20 us per seed-step, 64 instead of 39
    with minibatch discrimination) and nothing for a single seed. If torch was imported earlier
    with SIMD kernels, results stay deterministic but a seed alone and the same seed in a stack
    may differ in the last bits: we warn.
    """
    check_torch_after_tensorflow()  # deterministic mode imports Triton: not after TensorFlow's LLVM
    if torch.backends.cpu.get_cpu_capability() != "DEFAULT":
        warnings.warn("torch was imported before ganrepro set ATEN_CPU_CAPABILITY=default: runs are "
                      "deterministic, but a seed's last bits may depend on its stack", RuntimeWarning, stacklevel=2)
    torch.use_deterministic_algorithms(True)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.set_num_threads(1)
    threadpoolctl.threadpool_limits(limits=1, user_api="blas")  # kept: not used as a context manager


configure()

DEVICE = torch.device("cpu")
"""Where tensors are made and the work runs: set by :func:`use_device`."""


def versions() -> dict:
    """{library: version} of the framework and NumPy, for the records."""
    return {"torch": torch.__version__, "numpy": np.__version__}


def use_device(device: str) -> dict:
    """Run on ``device`` ("cpu", or "cuda": the current CUDA GPU); its device_info. ``DeviceUnavailable`` if none.

    On CUDA, determinism is what ``configure`` set: deterministic algorithms (an op without a
    deterministic CUDA kernel raises instead of running), cuBLAS's fixed workspace
    (``CUBLAS_WORKSPACE_CONFIG``, set before torch is imported), TF32 off, cuDNN deterministic.
    """
    global DEVICE
    check_device(device)
    if device == "cpu":
        DEVICE = torch.device("cpu")
        return cpu_info()
    if not torch.cuda.is_available():
        build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
        raise DeviceUnavailable(f"--device cuda: PyTorch {torch.__version__} ({build}) sees no CUDA device "
                                "here; allowed: cpu")
    DEVICE = torch.device("cuda", torch.cuda.current_device())
    props = torch.cuda.get_device_properties(DEVICE)
    return {"type": "cuda", "name": props.name, "capability": f"{props.major}.{props.minor}",
            "memory_bytes": int(props.total_memory), "driver": nvidia_driver(), "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version(), "torch": torch.__version__}


def to_tensors(arrays: dict) -> dict:
    """{name: NumPy array} -> {name: tensor on DEVICE}, same dtype and values."""
    return {k: _tensor(np.array(v)) for k, v in arrays.items()}


def to_numpy(tensors: dict) -> dict:
    """{name: tensor} -> {name: NumPy array} (copies)."""
    return {k: _host(v).copy() for k, v in tensors.items()}


def _tensor(array: np.ndarray):
    """A NumPy array as a tensor on DEVICE (shares memory on the CPU)."""
    return torch.from_numpy(array).to(DEVICE)


def _host(t) -> np.ndarray:
    """A tensor's values as a NumPy array (a view on the CPU, a copy from a GPU)."""
    return t.detach().cpu().numpy()


class _CpuSqrt(torch.autograd.Function):
    """y = sqrt(x) correctly rounded (NumPy's: the instruction itself); dx = dy / (2 y), as autograd's."""

    @staticmethod
    def forward(ctx, x):
        y = torch.from_numpy(np.sqrt(x.detach().numpy()))
        ctx.save_for_backward(y)
        return y

    @staticmethod
    def backward(ctx, grad):
        (y,) = ctx.saved_tensors
        return grad / (2 * y)


def _sqrt(x):
    """sqrt(x), correctly rounded (IEEE 754's square root) on every device and every CPU.

    Not ``torch.sqrt`` on the CPU: that is MKL's vector math (``vsSqrt``, ``vdSqrt``), which is not
    correctly rounded and whose last bit depends on the CPU's vendor whatever ``MKL_CBWR`` says (on an
    AMD Zen 5 about 20 % of float32 and 1.4 % of float64 square roots differ from the correctly
    rounded ones, and protocol 2017's runs from those made on Intel CPUs). CUDA's ``torch.sqrt`` is
    correctly rounded already; so are TensorFlow's and NumPy's.
    """
    if x.device.type != "cpu":
        return torch.sqrt(x)
    if x.requires_grad and torch.is_grad_enabled():
        return _CpuSqrt.apply(x)
    return torch.from_numpy(np.sqrt(x.detach().numpy()))


# ---- layers ---------------------------------------------------------------------------------
def linear(x, w, b):
    """y = x W + b, batched over the leading axes: x (S, B, in), W (S, in, out), b (S, out).

    (``baddbmm`` would fuse the bias add, 10% faster for a stack of 128, but its path for a
    stack of one rounds differently, and a seed must not depend on its stack. Large products go
    to MKL, whose code path the instruction-set pin fixes with ``MKL_CBWR=COMPATIBLE``, the
    same on every CPU; a broadcast product and sum would avoid MKL but costs 1.5x at training
    sizes and 6x when D is evaluated on 10,000 points.)

    Inside a compiled training step (CUDA's, ``_compiled_train_step``) it is that broadcast product
    and sum, sum_i x[..., i, None] W[i, :]: TorchInductor fuses it with its neighbours into its own
    kernels, forward and backward, where a matmul would stay a batched cuBLAS call of 8 x 8
    matrices per seed.
    """
    if torch.compiler.is_compiling():
        return (x.unsqueeze(-1) * w.unsqueeze(-3)).sum(-2) + b.unsqueeze(-2)
    return torch.matmul(x, w) + b.unsqueeze(-2)


def softplus(x):
    """softplus(x) = max(x, 0) + log1p(exp(-|x|)), the exact formula (no threshold cut-off)."""
    return torch.clamp(x, min=0) + torch.log1p(torch.exp(-torch.abs(x)))


def activation(config: ExperimentConfig):
    """D's hidden activation: tanh (protocol 2016) or relu (protocol 2017)."""
    return torch.tanh if config.activation == "tanh" else torch.relu


def generator(p: dict, z):
    """G(z) = linear(softplus(linear(z, h)), 1): z (S, B) -> (S, B)."""
    h = softplus(linear(z.unsqueeze(-1), p["g0.w"], p["g0.b"]))
    return linear(h, p["g1.w"], p["g1.b"]).squeeze(-1)


def minibatch_features(f, w, b, config: ExperimentConfig, formulation: str = "production"):
    """o(i)_k = sum_j exp(-(d_k(i, j) + s [i == j])), d_k(i, j) = sum_c |M[i,k,c] - M[j,k,c]|.

    M = linear(f, K*C) reshaped to (S, B, K, C); s = 1 ("exp-1"), 0 ("exp0") or inf ("none").
    Returns (S, B, K). ``formulation``: "production" (what training uses; its kernels depend on
    the batch size, see ``torch_minibatch.py``) or "reference" (the published (B, K, C, B) broadcast).
    """
    m = linear(f, w, b).unflatten(-1, (config.mbd_kernels, config.mbd_dims))
    return kernel_sums(m, config.mbd_self_term, formulation)


def discriminator(p: dict, x, config: ExperimentConfig):
    """D(x) -> (probability (S, B), last hidden layer f (S, B, F)); docs/networks.md#discriminator."""
    act = activation(config)
    h = act(linear(x.unsqueeze(-1), p["d0.w"], p["d0.b"]))
    h = act(linear(h, p["d1.w"], p["d1.b"]))
    if config.minibatch:
        f = torch.cat([h, minibatch_features(h, p["mbd.w"], p["mbd.b"], config)], dim=-1)
    else:
        f = act(linear(h, p["d2.w"], p["d2.b"]))
    return torch.sigmoid(linear(f, p["out.w"], p["out.b"]).squeeze(-1)), f


# ---- losses ---------------------------------------------------------------------------------
def log(t, config: ExperimentConfig):
    """log(t), or log(max(t, 1e-5)) in protocol 2017."""
    return torch.log(torch.clamp(t, min=LOG_CLIP)) if config.clip_log else torch.log(t)


def d_loss(d_real, d_fake, config):
    """Per seed: mean_B(real - log(1 - D(G(z)))), real = -log D(x), or with one-sided label
    smoothing alpha < 1: -alpha log D(x) - (1 - alpha) log(1 - D(x))."""
    alpha = config.label_smoothing
    if alpha == 1.0:
        real = -log(d_real, config)
    else:
        real = -(alpha * log(d_real, config) + (1 - alpha) * log(1 - d_real, config))
    return (real - log(1 - d_fake, config)).mean(-1)


def feature_matching(f_real, f_fake, config):
    """Per seed, on D's last hidden layer f (S, B, F): paired_l2 = sqrt(sum_i,k (f(x_i) - f(G(z_i)))^2),
    paired_sq = the same without sqrt, mean_sq = ||mean_i f(x_i) - mean_i f(G(z_i))||^2."""
    if config.feature_matching == "mean_sq":
        diff = f_real.mean(-2) - f_fake.mean(-2)
        return (diff * diff).sum(-1)
    diff = f_real - f_fake
    paired_sq = (diff * diff).sum((-2, -1))
    return _sqrt(paired_sq) if config.feature_matching == "paired_l2" else paired_sq


def g_loss(d_fake, f_real, f_fake, config):
    """Per seed: the adversarial term (non-saturating mean_B(-log D(G(z))), saturating
    mean_B(log(1 - D(G(z)))), or none) plus fm_weight * feature matching, if on."""
    loss = None
    if config.g_loss == "non_saturating":
        loss = (-log(d_fake, config)).mean(-1)
    elif config.g_loss == "saturating":
        loss = log(1 - d_fake, config).mean(-1)
    if config.feature_matching != "none":
        fm = config.fm_weight * feature_matching(f_real, f_fake, config)
        loss = fm if loss is None else loss + fm
    return loss


def historical_penalty(theta, past_sum, t, config):
    """Per seed: lambda * ||theta - past_sum / t||^2, the mean over the player's t past values
    theta_0 .. theta_{t-1}; zero at t = 0 (no past yet). t: a tensor (the step is replayed as a CUDA graph)."""
    t = t.to(theta.dtype)
    diff = theta - past_sum / torch.clamp(t, min=1)
    penalty = config.historical_averaging * (diff * diff).sum(-1)
    return torch.where(t > 0, penalty, torch.zeros_like(penalty))


def pretrain_loss(d_out, labels):
    """Per seed: mean_B((D_pre(d) - labels)^2)."""
    return ((d_out - labels) ** 2).mean(-1)


# ---- parameters: one flat (S, P) tensor per player ------------------------------------------
def flatten(params: dict):
    """A player's (S, ...) parameters, in draw order, concatenated into one (S, P) tensor."""
    return torch.cat([v.reshape(v.shape[0], -1) for v in params.values()], dim=1)


def unflatten(flat, shapes) -> dict:
    """Views of flat (S, P) as named parameters; ``shapes`` as from ``ganrepro.weights``."""
    pieces = torch.split(flat, [math.prod(shape) for _, shape, _ in shapes], dim=1)
    return {name: piece.reshape(-1, *shape) for (name, shape, _), piece in zip(shapes, pieces, strict=True)}


# ---- optimizers (on a player's flat parameter tensor) ---------------------------------------
def gd_update(theta, grad, lr):
    """theta <- theta - lr_t * g."""
    return theta - lr * grad


def adam_update(theta, grad, slots, lr):
    """TF1 Adam with alpha_t = lr (precomputed): m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
    theta <- theta - alpha_t * m / (sqrt(v) + eps)."""
    m, v = slots
    m = ADAM_BETA1 * m + (1 - ADAM_BETA1) * grad
    v = ADAM_BETA2 * v + (1 - ADAM_BETA2) * (grad * grad)
    return theta - lr * m / (_sqrt(v) + ADAM_EPS), (m, v)


def apply_update(config, theta, grad, slots, lr):
    """(theta, slots) after one update of the protocol's optimizer (Adam or gradient descent)."""
    if config.optimizer == "adam_tf1":
        return adam_update(theta, grad, slots, lr)
    return gd_update(theta, grad, lr), slots


def zero_slots(config, theta):
    """Adam's (m, v), or () for gradient descent."""
    return (torch.zeros_like(theta), torch.zeros_like(theta)) if config.optimizer == "adam_tf1" else ()


def l2_norm(t):
    """Per seed L2 norm over all entries of an (S, ...) tensor."""
    flat = t.reshape(t.shape[0], -1)
    return _sqrt((flat * flat).sum(-1))


# ---- training -------------------------------------------------------------------------------
def _differentiable(flat):
    """A player's weights as the leaf its loss is differentiated by: ``flat`` itself where it is a leaf
    that requires grad (a compiled step's weight buffers, made so outside the compiled region: Dynamo
    in PyTorch 2.11 cannot trace ``requires_grad_``), else ``flat.detach().requires_grad_(True)``.
    The same tensor values either way, so the same gradients."""
    return flat if flat.requires_grad and flat.is_leaf else flat.detach().requires_grad_(True)


def d_step(config, g_flat, d_flat, d_slots, d_past, x, z, noise_real, noise_fake, lr, t):
    """D's update: L_D at (x, G(z)) plus the historical penalty, instance noise as ``noise_routing``
    puts it. Returns new D weights and slots, and the curves {loss/D, loss/real, loss/fake}."""
    route = noise_routing(config)
    with torch.no_grad():
        fake = generator(unflatten(g_flat, generator_shapes(config)), with_noise(z, noise_fake, route.z_d))
        fake = with_noise(fake, noise_fake, route.fake_d)
    d_flat = _differentiable(d_flat)
    d_params = unflatten(d_flat, discriminator_shapes(config))
    d_real, _ = discriminator(d_params, with_noise(x, noise_real, route.x_d), config)
    d_fake, _ = discriminator(d_params, fake, config)
    loss = d_loss(d_real, d_fake, config)
    if config.historical_averaging:
        loss = loss + historical_penalty(d_flat, d_past, t, config)
    (grad,) = torch.autograd.grad(loss.sum(), d_flat)
    with torch.no_grad():
        new_flat, new_slots = apply_update(config, d_flat, grad, d_slots, lr)
        loss_real = (-log(d_real, config)).mean(-1)
        loss_fake = (-log(1 - d_fake, config)).mean(-1)
    return new_flat, new_slots, {"loss/D": loss.detach(), "loss/real": loss_real, "loss/fake": loss_fake}


def g_step(config, g_flat, g_slots, g_past, d_flat, x, z, noise_real, noise_fake, lr, t):
    """G's update: L_G at G(z) (x: the real batch, for feature matching) plus the historical
    penalty, instance noise as ``noise_routing`` puts it. Returns new G weights and slots, and the
    curves {loss/G, norms/G, norms/D}."""
    route = noise_routing(config)
    d_params = unflatten(d_flat, discriminator_shapes(config))
    f_real = None
    if config.feature_matching != "none":
        with torch.no_grad():
            f_real = discriminator(d_params, with_noise(x, noise_real, route.x_g), config)[1]
    g_flat = _differentiable(g_flat)
    fake = generator(unflatten(g_flat, generator_shapes(config)), z)
    d_fake, f_fake = discriminator(d_params, with_noise(fake, noise_fake, route.fake_g), config)
    loss = g_loss(d_fake, f_real, f_fake, config)
    if config.historical_averaging:
        loss = loss + historical_penalty(g_flat, g_past, t, config)
    grad, grad_fake = torch.autograd.grad(loss.sum(), [g_flat, fake])
    with torch.no_grad():
        new_flat, new_slots = apply_update(config, g_flat, grad, g_slots, lr)
    return new_flat, new_slots, {"loss/G": loss.detach(), "norms/G": l2_norm(grad), "norms/D": l2_norm(grad_fake)}


def pretrain(config: ExperimentConfig, d_weights: dict, data: Pretraining) -> dict:
    """Protocol 2016: P steps of gradient descent on mean((D_pre(d) - pdf(d))^2)."""
    shapes = discriminator_shapes(config)
    flat = flatten(to_tensors(d_weights))
    inputs, labels, lrs = _tensor(data.inputs), _tensor(data.labels), data.lr.tolist()
    for t in range(inputs.shape[0]):
        flat = flat.detach().requires_grad_(True)
        d_out, _ = discriminator(unflatten(flat, shapes), inputs[t], config)
        (grad,) = torch.autograd.grad(pretrain_loss(d_out, labels[t]).sum(), flat)
        with torch.no_grad():
            flat = gd_update(flat, grad, lrs[t])
    return to_numpy(unflatten(flat, shapes))


def init_state(config: ExperimentConfig, g_weights: dict, d_weights: dict) -> dict:
    """The training state: flat weights, optimizer slots and sums of past weights of G and D."""
    g, d = flatten(to_tensors(g_weights)), flatten(to_tensors(d_weights))
    return {"G": g, "D": d, "G_slots": zero_slots(config, g), "D_slots": zero_slots(config, d),
            "G_past": torch.zeros_like(g), "D_past": torch.zeros_like(d)}


STEP_INPUTS = ("x", "z_d", "z_g", "noise_real", "noise_fake_d", "noise_fake_g", "lr_d", "lr_g")
"""The chunk's per-step arrays, (L, S, B) or (L,), in the order ``_train_step`` reads them."""


def _train_step(config: ExperimentConfig, state: dict, step: dict, t):
    """Training step t in place: D's update, then G's, then the sums of past weights. Returns the
    step's curve row (S, len(CURVES)).

    ``state``: the tensors of ``init_state``, overwritten with the new values. ``step``: this
    step's row of each of ``STEP_INPUTS`` ((S, B) batches, 0-dim step sizes); t: the 0-dim step
    number. Nothing is read from the host, so the step can be captured as a CUDA graph.
    """
    x, z_d, z_g, n_real, n_fake_d, n_fake_g, lr_d, lr_g = (step[k] for k in STEP_INPUTS)
    g, d, g_past, d_past = state["G"], state["D"], state["G_past"], state["D_past"]
    d_new, d_slots, d_curves = d_step(config, g, d, state["D_slots"], d_past, x, z_d, n_real, n_fake_d, lr_d, t)
    g_new, g_slots, g_curves = g_step(config, g, state["G_slots"], g_past, d_new, x, z_g, n_real, n_fake_g, lr_g, t)
    with torch.no_grad():
        if config.historical_averaging:
            d_past.add_(d)
            g_past.add_(g)
        pairs = [(d, d_new), (g, g_new), *zip(state["D_slots"], d_slots, strict=True),
                 *zip(state["G_slots"], g_slots, strict=True)]
        for old, new in pairs:
            old.copy_(new)
        return torch.stack(in_curve_order(d_curves, g_curves), dim=-1)


@functools.cache
def _compiled_train_step():
    """``_train_step`` compiled by TorchInductor: on CUDA a handful of fused Triton kernels (``linear``
    is a broadcast product there) instead of the eager step's hundreds of kernels (about 1,200 ATen calls for one
    seed with minibatch discrimination). Compiled once per config (its training fields) and stack
    shape, on first call; the whole step is one graph (``fullgraph``: Dynamo traces the step's
    ``torch.autograd.grad`` calls, ``trace_autograd_ops``), with Inductor's deterministic mode (no
    timing-based choice of kernel configurations, which could change a sum's order from one process
    to the next). The fused kernels round differently from the eager ones (other orders of sums,
    contracted multiply-adds): a compiled step agrees with the eager step within the agreement
    ladder's bounds, not bitwise (``tests/test_static_step.py``); the same compiled step on the
    same device gives the same bits every time. Dynamo's settings here are process-wide."""
    import torch._dynamo

    from .torch_minibatch import _known_to_inductor

    dynamo = torch._dynamo.config
    settings = {"trace_autograd_ops": True, "fail_on_recompile_limit_hit": True,
                "recompile_limit": max(getattr(dynamo, "recompile_limit", 0), RECOMPILE_LIMIT),
                "accumulated_recompile_limit": max(getattr(dynamo, "accumulated_recompile_limit", 0), RECOMPILE_LIMIT)}
    for name, value in settings.items():
        if hasattr(dynamo, name):  # each PyTorch has the settings it has (2.11, 2.13: all four)
            setattr(dynamo, name, value)
    return torch.compile(_train_step, fullgraph=True, dynamic=False,
                         options=_known_to_inductor({"deterministic": True}))


def _fused_step(config: ExperimentConfig, dtype):
    """The step as one Triton kernel (``torch_fused_step.FusedStep``; ValueError for a config it does not take)."""
    from .torch_fused_step import FusedStep

    return FusedStep(config, dtype, DEVICE)


def _indexed_step(config: ExperimentConfig, state: dict, inputs: dict, counters: dict, train_step=_train_step):
    """``train_step`` (``_train_step`` or ``_compiled_train_step()``) on row i of the chunk's inputs,
    selected on the device (``index_select`` by the (1,) int64 counter i), then i and t advance by
    one: a step whose every per-step value lives on the device, the form a CUDA graph captures and
    replays. No indexed writes (the caller copies the returned curve row): those have no
    deterministic CUDA kernel fit for capture. The step itself sees (S, B) rows, so one compiled
    step serves chunks of every length."""
    i, t = counters["i"], counters["t"]
    row = train_step(config, state, {k: torch.index_select(inputs[k], 0, i)[0] for k in STEP_INPUTS}, t)
    _advance(counters)
    return row


def _advance(counters: dict) -> None:
    """The row counter i and the step number t, each one on (on the device)."""
    with torch.no_grad():
        counters["i"].add_(1)
        counters["t"].add_(1)


class StaticStep:
    """A chunk's steps on static buffers: the step (``_train_step``, or on CUDA the compiled step)
    called directly, or ``_indexed_step`` captured once as a CUDA graph and replayed.

    One eager step costs dozens of kernel launches, one Python call each (milliseconds for one
    seed on a GPU, almost all of it launch overhead); a graph replay launches them all at once.
    The buffers (state, chunk inputs, counters, curves) are allocated here. ``run`` copies a chunk
    and a state in, runs the chunk's valid steps (after each, one copy of the step's curve row into
    the chunk's curves) and returns copies, so one ``StaticStep`` serves every chunk of its shape.
    Eagerly, each step reads row i of the inputs as a view (the cheapest form on the CPU);
    ``indexed=True`` makes it select the row on the device as the graph does (the tests run that
    form on the CPU). Capture (``capture=True``, CUDA only) follows PyTorch's recipe: warm-up
    steps on a side stream (they move the buffers; ``run`` copies the state in again), then
    ``torch.cuda.graph``. A replay runs the kernels of the step it captured, so results should be
    bitwise those of the same step run without the graph on the same device
    (``tests/test_static_step.py`` checks it where a GPU is present). ``compiled=True`` (CUDA's
    default for the configs the fused kernel does not take, ``_static_step``) runs
    ``_compiled_train_step()`` instead of ``_train_step``, its weight buffers leaves that require grad
    (``_differentiable``); the first step compiles it. ``fused=True`` (CUDA's default where
    ``torch_fused_step.supports`` the config) runs the whole step as one Triton kernel
    (``torch_fused_step.FusedStep``) that reads row i and writes the curve row itself (always the
    indexed form; on the CPU it runs in Triton's interpreter, as the tests run it).
    """

    WARMUP_STEPS = 3

    def __init__(self, config: ExperimentConfig, state: dict, chunk: Chunk, capture: bool = False,
                 indexed: bool = False, compiled: bool = False, fused: bool = False):
        self.config, self.indexed = config, indexed or capture or fused
        self.train_step = _compiled_train_step() if compiled else _train_step
        dtype = torch.float64 if chunk.x.dtype == np.float64 else torch.float32
        self.fused = _fused_step(config, dtype) if fused else None
        self.state = {k: _clone(v) for k, v in state.items()}
        if compiled:  # the weights as leaves that require grad (``_differentiable``)
            for player in ("G", "D"):
                self.state[player].requires_grad_(True)
        self.inputs = {k: torch.empty(getattr(chunk, k).shape, dtype=dtype, device=DEVICE) for k in STEP_INPUTS}
        self.counters = {"i": torch.zeros(1, dtype=torch.int64, device=DEVICE),
                         "t": torch.zeros((), dtype=torch.int64, device=DEVICE)}
        self.curves = torch.zeros(*chunk.x.shape[:2], len(CURVES), dtype=dtype, device=DEVICE)
        self.graph, self.row = None, None
        if self.fused is not None:  # the fused kernel writes its curve row here
            self.row = torch.zeros(chunk.x.shape[1], len(CURVES), dtype=dtype, device=DEVICE)
        if capture:
            self._capture(state, chunk)

    def _step(self, i: int):
        """Step i of the chunk (eagerly); its curve row."""
        if self.fused is not None:
            self.fused.step(self.state, self.inputs, self.counters, self.row)
            _advance(self.counters)
            return self.row
        if self.indexed:
            return _indexed_step(self.config, self.state, self.inputs, self.counters, self.train_step)
        row = self.train_step(self.config, self.state, {k: v[i] for k, v in self.inputs.items()}, self.counters["t"])
        self.counters["t"].add_(1)
        return row

    def _capture(self, state: dict, chunk: Chunk) -> None:
        self._load(state, chunk)
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(self.WARMUP_STEPS):
                self.counters["i"].zero_()  # row 0 each time: a chunk may have fewer rows than warm-up steps
                self._step(0)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            self.row = self._step(0)  # rewritten in place by every replay
        self.graph = graph

    def _load(self, state: dict, chunk: Chunk) -> None:
        """Copy a state and a chunk into the buffers; i = 0, t = the chunk's first step, curves 0."""
        with torch.no_grad():  # (a compiled step's weight buffers require grad)
            for k, v in state.items():
                for mine, theirs in zip(_leaves(self.state[k]), _leaves(v), strict=True):
                    mine.copy_(theirs)
            for k in STEP_INPUTS:
                array = getattr(chunk, k)
                self.inputs[k].copy_(_tensor(array if array.flags.writeable else array.copy()))
        self.counters["i"].zero_()
        self.counters["t"].fill_(chunk.start)
        self.curves.zero_()

    def run(self, state: dict, chunk: Chunk):
        """(new state, curves (L, S, len(CURVES)) as NumPy) after the chunk's valid steps from ``state``."""
        self._load(state, chunk)
        for i in range(chunk.n_valid):
            if self.graph is None:
                self.curves[i].copy_(self._step(i))
            else:
                self.graph.replay()
                self.curves[i].copy_(self.row)
        return {k: _clone(v) for k, v in self.state.items()}, _host(self.curves)


_STATIC: dict = {}


def _step_form(config: ExperimentConfig, device: str) -> str:
    """How ``train_chunk`` runs ``config``'s steps on ``device`` ("cpu" or "cuda"): "eager" (the CPU; CUDA
    with ``GANREPRO_CUDA_COMPILE=0``), "fused" (CUDA, the configs ``torch_fused_step.supports``, unless
    ``GANREPRO_CUDA_FUSED=0`` or triton is missing) or "compiled" (CUDA otherwise)."""
    if device != "cuda":
        return "eager"
    if os.environ.get(CUDA_FUSED_ENV, "1") != "0" and importlib.util.find_spec("triton") is not None:
        from .torch_fused_step import supports

        if supports(config) is None:
            return "fused"
    return "compiled" if os.environ.get(CUDA_COMPILE_ENV, "1") != "0" else "eager"


def _static_step(config: ExperimentConfig, state: dict, chunk: Chunk) -> StaticStep:
    """The ``StaticStep`` of (config without seeds, chunk shape, device); only the latest is kept.
    On CUDA its step is the form ``_step_form`` names, captured as a graph (unless ``GANREPRO_CUDA_GRAPHS=0``)."""
    cuda = DEVICE.type == "cuda"
    capture = cuda and os.environ.get(CUDA_GRAPHS_ENV, "1") != "0"
    form = _step_form(config, DEVICE.type)
    key = (config.with_seeds((0,)), chunk.x.shape, chunk.x.dtype.str, str(DEVICE), capture, form)
    if key not in _STATIC:
        _STATIC.clear()  # frees the previous buffers (and a graph's memory pool)
        _STATIC[key] = StaticStep(config, state, chunk, capture, compiled=form == "compiled", fused=form == "fused")
    return _STATIC[key]


def _clone(v):
    """A copy of a state entry: a tensor, or a tuple of tensors (optimizer slots)."""
    return tuple(t.detach().clone() for t in v) if isinstance(v, tuple) else v.detach().clone()


def _leaves(v) -> tuple:
    return v if isinstance(v, tuple) else (v,)


def train_chunk(config: ExperimentConfig, state: dict, chunk: Chunk):
    """Run the chunk's valid steps; curves (L, S, len(CURVES)) in the order of ``interface.CURVES``.

    Returns a new state and leaves ``state`` alone: ``_static_step``'s buffers run the steps,
    eagerly on the CPU, as replays of one captured CUDA graph on CUDA.
    """
    return _static_step(config, state, chunk).run(state, chunk)


def state_weights(config: ExperimentConfig, state: dict) -> dict:
    """{"G": g_weights, "D": d_weights} of a state, as NumPy arrays."""
    return {"G": to_numpy(unflatten(state["G"], generator_shapes(config))),
            "D": to_numpy(unflatten(state["D"], discriminator_shapes(config)))}


# ---- evaluation and the agreement ladder ----------------------------------------------------
def generate(config: ExperimentConfig, g_weights: dict, z: np.ndarray) -> np.ndarray:
    """G(z) for z (S, N)."""
    with torch.no_grad():
        return _host(generator(to_tensors(g_weights), _tensor(z)))


def discriminate(config: ExperimentConfig, d_weights: dict, x: np.ndarray) -> np.ndarray:
    """D on (S, N) points, in consecutive batches of B (an extra batch axis after S)."""
    n = x.shape[1]
    batches = _tensor(pad_to_batches(x, config.batch_size))  # (S, nb, B)
    params = {k: v.unsqueeze(1) for k, v in to_tensors(d_weights).items()}  # broadcast over nb
    with torch.no_grad():
        prob, _ = discriminator(params, batches, config)
    return _host(prob.reshape(x.shape[0], -1)[:, :n])


def sort_rows(x: np.ndarray) -> np.ndarray:
    """Each row of x (S, N) sorted ascending on DEVICE (exact: the values, reordered; NaN last)."""
    return _host(torch.sort(_tensor(x), dim=-1).values)


def forward_and_gradients(config, g_weights, d_weights, x, z) -> dict:
    """Forward values, losses and gradients at fixed weights and inputs (see ``interface``)."""
    g, d = to_tensors(g_weights), to_tensors(d_weights)
    for v in (*g.values(), *d.values()):
        v.requires_grad_(True)
    x, z = _tensor(x), _tensor(z)
    g_out = generator(g, z)
    d_real, f_real = discriminator(d, x, config)
    d_fake, f_fake = discriminator(d, g_out, config)
    loss_d, loss_g = d_loss(d_real, d_fake, config), g_loss(d_fake, f_real.detach(), f_fake, config)
    grads_d = torch.autograd.grad(loss_d.sum(), list(d.values()), retain_graph=True)
    *grads_g, grad_g_out = torch.autograd.grad(loss_g.sum(), [*g.values(), g_out])
    out = {
        "g_out": g_out, "d_real": d_real, "d_fake": d_fake, "f_real": f_real, "f_fake": f_fake,
        "loss_d": loss_d, "loss_g": loss_g,
        "loss_real": (-log(d_real, config)).mean(-1),
        "loss_fake": (-log(1 - d_fake, config)).mean(-1),
        "grad_g_out": grad_g_out,
    }
    out.update({f"grad_d/{k}": v for k, v in zip(d, grads_d, strict=True)})
    out.update({f"grad_g/{k}": v for k, v in zip(g, grads_g, strict=True)})
    return to_numpy(out)


def penalty_and_gradient(config, theta: np.ndarray, past_sum: np.ndarray, t: int):
    """The historical penalty per seed and its gradient w.r.t. theta (S, P), for the ladder."""
    theta = _tensor(theta).requires_grad_(True)
    penalty = historical_penalty(theta, _tensor(past_sum), torch.tensor(t, device=DEVICE), config)
    (grad,) = torch.autograd.grad(penalty.sum(), theta)
    return _host(penalty), _host(grad)


def optimizer_update(config, params: dict, grads: dict, slots: dict, lr: float):
    """One update of the protocol's optimizer on NumPy arrays; slots: name -> (m, v) or {}."""
    shapes = [(k, v.shape[1:], 0.0) for k, v in params.items()]
    theta, grad = flatten(to_tensors(params)), flatten(to_tensors(grads))
    flat_slots = tuple(flatten(to_tensors({k: mv[i] for k, mv in slots.items()})) for i in (0, 1)) if slots else ()
    with torch.no_grad():
        theta, flat_slots = apply_update(config, theta, grad, flat_slots, lr)
    new_slots = {}
    if flat_slots:
        m, v = (to_numpy(unflatten(t, shapes)) for t in flat_slots)
        new_slots = {k: (m[k], v[k]) for k in params}
    return to_numpy(unflatten(theta, shapes)), new_slots
