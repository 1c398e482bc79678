"""The PyTorch twin's training step as one Triton kernel per step: a CUDA formulation of ``torch_twin._train_step``
for protocol 2017 without technique terms (``supports``), with or without minibatch discrimination.

One program trains a block of ``BLOCK_S`` seeds through the whole step of docs/updates.md#step-order:
G(z), D on the real and the generated batch, L_D and its gradient written out by hand, TF1 Adam on D,
then G(z') through the updated D, L_G, its gradient, TF1 Adam on G, and the step's six curves. Every
value of a seed stays in the registers of its program between reading the state and writing it back,
so a step costs one launch and one pass over the state, where the compiled step
(``torch_twin._compiled_train_step``) costs dozens of kernels and the eager step hundreds.

The formulas, per seed (docs/networks.md, losses.md; ``a`` pre-activations, ``g`` gradients, ``[.]``
a 0/1 mask, rows b = 1..B, ``clip`` = 1e-5):

    G:        a0 = z g0.w + g0.b,  s = softplus(a0),  G(z) = s g1.w + g1.b
    D:        a1 = x d0.w + d0.b,  h1 = relu(a1),  a2 = h1 d1.w + d1.b,  h2 = relu(a2)
              plain:  a3 = h2 d2.w + d2.b,  f = relu(a3)
              MBD:    M = h2 mbd.w + mbd.b (B, K, C),  E[b,j,k] = exp(-sum_c |M[b,k,c] - M[j,k,c]|) [j != b],
                      o[b,k] = exp(-s) + sum_j E[b,j,k],  f = (h2, o)
              logit = f out.w + out.b,  D = sigmoid(logit) = 1 / (1 + exp(-logit))
    L_D = mean_b(-log max(D(x_b), clip) - log max(1 - D(G(z_b)), clip)),  L_G = mean_b(-log max(D(G(z'_b)), clip))
    dL/dlogit: real -[D >= clip] (1 - D) / B,  fake [1 - D >= clip] D / B,  G's fake -[D >= clip] (1 - D) / B
              (each the chain -1/(B t) [t >= clip] through t = D or 1 - D, dD/dlogit = D (1 - D))
    back through D: g_f = g_logit out.w;  plain g_a3 = g_f [a3 > 0];  MBD g_o = g_f[o part],
              g_M[b,k,c] = -sum_j (g_o[b,k] + g_o[j,k]) E[b,j,k] sign(M[b,k,c] - M[j,k,c]);
              g_h2 = g_a3 d2.w^T (or g_f[h2 part] + g_M mbd.w^T),  g_a2 = g_h2 [a2 > 0],  g_h1 = g_a2 d1.w^T,
              g_a1 = g_h1 [a1 > 0],  g_x = g_a1 d0.w^T;  weight gradients (input^T g_a), bias gradients sum_b g_a
    back through G: g_s = g_G g1.w^T,  g_a0 = g_s ([a0 >= 0] - sign(a0) e / (1 + e)), e = exp(-|a0|)
              (softplus(a) = max(a, 0) + log1p(e) differentiated term by term, as autograd does)
    TF1 Adam: m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,  theta -= lr m / (sqrt(v) + eps)
    curves:   loss/D = L_D, loss/G = L_G, loss/real, loss/fake, norms/G = ||g_theta_G||, norms/D = ||g_G(z')||

log1p(e) is evaluated as log(u) e / (u - 1), u = 1 + e (e where u = 1), exact to a few ulp; sqrt and the
divisions are correctly rounded (``_sqrt``, ``_div``). NaN and infinities go where the eager step's go
(the log's clip keeps NaN, a relu's gradient passes where its output is NaN, as in autograd), so a
diverged seed stays diverged in the same values. The kernel's sums run in other orders than
the eager step's (and Triton contracts multiply-adds), so the two agree within the agreement ladder's
bounds, not bitwise (``tests/test_fused_step.py``). Every reduction is over one seed's values, in an
order fixed by the block shapes, which depend on the config alone: a seed's bits are the same alone
and in a stack of any size.

Without a GPU the kernel runs in Triton's interpreter (``TRITON_INTERPRET=1`` before triton is
imported), which is how the tests check it on the CPU.
"""
from __future__ import annotations

import numpy as np
import torch
import triton
import triton.language as tl

from ganrepro.config import LOG_CLIP, ExperimentConfig
from ganrepro.schedules import ADAM_BETA1, ADAM_BETA2, ADAM_EPS
from ganrepro.weights import discriminator_shapes, generator_shapes

MAX_BATCH, MAX_HIDDEN, MAX_KERNELS, MAX_DIMS = 16, 8, 8, 4
"""The sizes the kernel takes (B, h, K, C); each is padded to a power of two inside it."""
NUM_WARPS = 4
THREADS_PER_SEED = 32
"""Each program has NUM_WARPS warps and trains BLOCK_S = 32 NUM_WARPS / threads-per-seed seeds. A seed
gets THREADS_PER_SEED threads, twice that with minibatch discrimination and twice again in float64
(at least one seed per program): the fewest for which ptxas (Triton 3.6, sm_90) keeps the default
sizes' step in registers (no spills; 140 bytes with minibatch discrimination in float64).
``benchmarks/probe_compiled_step.py --forms fused --fused-shapes ...`` times other choices on a GPU."""
SELF_TERM = {"exp-1": 1.0, "exp0": 0.0, "none": None}
"""exp(-s) is added to each minibatch feature; none: nothing."""
CONSTANTS = ("beta1", "1-beta1", "beta2", "1-beta2", "eps", "clip", "self", "batch")
"""The kernel's constants, read from one small tensor in the run's dtype (rounded from float64 once,
as PyTorch rounds a Python scalar it multiplies a tensor by)."""


def supports(config: ExperimentConfig) -> str | None:
    """None if the fused step computes ``config``'s step, else the reason it does not (a sentence)."""
    if (config.activation, config.optimizer, config.clip_log) != ("relu", "adam_tf1", True):
        return "it computes protocol 2017's step (relu, TF1 Adam, clipped log)"
    techniques = (config.g_loss != "non_saturating" or config.feature_matching != "none" or config.instance_noise
                  or config.label_smoothing != 1.0 or config.historical_averaging)
    if techniques:
        return "it computes the step without technique terms (non-saturating L_G only)"
    limits = {"batch_size": MAX_BATCH, "hidden_size": MAX_HIDDEN}
    if config.minibatch:
        limits.update(mbd_kernels=MAX_KERNELS, mbd_dims=MAX_DIMS)
    for field, limit in limits.items():
        if getattr(config, field) > limit:
            return f"{field} = {getattr(config, field)} is above its limit {limit}"
    return None


def _offsets(shapes) -> dict:
    """{name: offset} of each parameter in a player's flat vector (docs/networks.md#initial-weights)."""
    out, at = {}, 0
    for name, shape, _ in shapes:
        out[name] = at
        at += int(np.prod(shape))
    out["P"] = at
    return out


def launch_shape(config: ExperimentConfig, dtype) -> tuple[int, int]:
    """(BLOCK_S, num_warps) by the rule of ``THREADS_PER_SEED``."""
    per_seed = THREADS_PER_SEED * (2 if config.minibatch else 1) * (2 if dtype == torch.float64 else 1)
    return max(1, 32 * NUM_WARPS // per_seed), NUM_WARPS


def _sizes(config: ExperimentConfig, block_seeds: int) -> dict:
    """The kernel's compile-time sizes: true sizes, their powers of two, and BLOCK_S."""
    width = 2 * config.hidden_size
    k, c = (config.mbd_kernels, config.mbd_dims) if config.minibatch else (1, 1)
    sizes = {"B": config.batch_size, "H": config.hidden_size, "W": width, "K": k, "C": c}
    padded = {f"{name}P": triton.next_power_of_2(value) for name, value in sizes.items()}
    return {**sizes, **padded, "BLOCK_S": block_seeds}


def _constants(config: ExperimentConfig, dtype, device) -> torch.Tensor:
    self_term = SELF_TERM[config.mbd_self_term] if config.minibatch else None
    values = {"beta1": ADAM_BETA1, "1-beta1": 1 - ADAM_BETA1, "beta2": ADAM_BETA2, "1-beta2": 1 - ADAM_BETA2,
              "eps": ADAM_EPS, "clip": LOG_CLIP, "self": 0.0 if self_term is None else float(np.exp(-self_term)),
              "batch": float(config.batch_size)}
    return torch.tensor([values[name] for name in CONSTANTS], dtype=dtype, device=device)


class FusedStep:
    """The fused step of one config and stack shape: ``step(state, inputs, counters, row)`` runs step i
    (the counter) on the (L, S, B) inputs, updates the state's tensors in place and writes the curve
    row (S, 6); it reads nothing from the host, so a CUDA graph can capture it."""

    def __init__(self, config: ExperimentConfig, dtype, device, shape: tuple[int, int] | None = None):
        reason = supports(config)
        if reason is not None:
            raise ValueError(f"the fused step does not take {config.slug}: {reason}")
        block_seeds, self.num_warps = shape or launch_shape(config, dtype)
        if block_seeds < 1 or block_seeds & (block_seeds - 1) or self.num_warps not in (1, 2, 4, 8, 16):
            raise ValueError(f"launch shape {(block_seeds, self.num_warps)}: BLOCK_S must be a power of two and "
                             "num_warps one of 1, 2, 4, 8, 16")
        self.config, self.sizes = config, _sizes(config, block_seeds)
        self.g_at, self.d_at = _offsets(generator_shapes(config)), _offsets(discriminator_shapes(config))
        self.constants = _constants(config, dtype, device)
        self.has_self = config.minibatch and SELF_TERM[config.mbd_self_term] is not None

    def step(self, state: dict, inputs: dict, counters: dict, row) -> None:
        s = state["G"].shape[0]
        g, d = state["G"], state["D"]
        (gm, gv), (dm, dv) = state["G_slots"], state["D_slots"]
        for t in (g, d, gm, gv, dm, dv, row, *inputs.values()):
            assert t.is_contiguous(), "the fused step takes contiguous tensors"
        d_at, g_at, minibatch = self.d_at, self.g_at, self.config.minibatch
        grid = (triton.cdiv(s, self.sizes["BLOCK_S"]),)
        _fused_step_kernel[grid](
            g, d, gm, gv, dm, dv, inputs["x"], inputs["z_d"], inputs["z_g"], inputs["lr_d"], inputs["lr_g"],
            counters["i"], row, self.constants, s,
            PG=g_at["P"], G0W=g_at["g0.w"], G0B=g_at["g0.b"], G1W=g_at["g1.w"], G1B=g_at["g1.b"],
            PD=d_at["P"], D0W=d_at["d0.w"], D0B=d_at["d0.b"], D1W=d_at["d1.w"], D1B=d_at["d1.b"],
            D2W=d_at["mbd.w" if minibatch else "d2.w"], D2B=d_at["mbd.b" if minibatch else "d2.b"],
            OUTW=d_at["out.w"], OUTB=d_at["out.b"], MBD=minibatch, HAS_SELF=self.has_self, num_warps=self.num_warps,
            **self.sizes)


# ---- the kernel's pieces ----------------------------------------------------------------------------
# Every tensor has the seed axis last (Triton lays threads out from the last axis, so neighbouring
# threads hold neighbouring seeds, and a seed's values spread over THREADS_PER_SEED threads). Shapes
# below: BP rows, WP / HP units, KP kernels, CP dimensions (padded to powers of two), S = BLOCK_S.
@triton.jit
def _div(x, y):
    """x / y correctly rounded (float32's default division on a GPU is approximate)."""
    if x.dtype == tl.float32:
        return tl.div_rn(x, y)
    return x / y


@triton.jit
def _sqrt(x):
    """sqrt(x) correctly rounded."""
    if x.dtype == tl.float32:
        return tl.sqrt_rn(x)
    return tl.sqrt(x)


@triton.jit
def _relu(a):
    """max(a, 0), NaN kept (as torch.relu)."""
    return tl.where(a <= 0, 0.0, a)


@triton.jit
def _log_clipped(t, clip):
    """ln max(t, clip), NaN kept (as torch.clamp: a diverged seed's losses stay NaN)."""
    return tl.log(tl.maximum(t, clip, propagate_nan=tl.PropagateNan.ALL))


@triton.jit
def _log1p(e):
    """log(1 + e) for e >= 0: log(u) e / (u - 1), u = 1 + e; e itself where u rounds to 1."""
    u = 1.0 + e
    return tl.where(u == 1.0, e, tl.log(u) * _div(e, u - 1.0))


@triton.jit
def _sigmoid(a):
    """1 / (1 + exp(-a))."""
    return _div(tl.full(a.shape, 1.0, a.dtype), 1.0 + tl.exp(-a))


@triton.jit
def _matmul(a, w):
    """a (BP, IN, S) times w (IN, OUT, S) -> (BP, OUT, S): sum_i a[:, i] w[i, :]."""
    return tl.sum(a[:, :, None, :] * w[None, :, :, :], axis=1)


@triton.jit
def _matmul_t(g, w):
    """g (BP, OUT, S) times w (IN, OUT, S) transposed -> (BP, IN, S)."""
    return tl.sum(g[:, None, :, :] * w[None, :, :, :], axis=2)


@triton.jit
def _outer_sum(a, g):
    """sum_b a[b, :, None] g[b, None, :]: a (BP, IN, S), g (BP, OUT, S) -> (IN, OUT, S), a weight's gradient."""
    return tl.sum(a[:, :, None, :] * g[:, None, :, :], axis=0)


@triton.jit
def _discriminator(x, d0w, d0b, d1w, d1b, d2w, d2b, outw_h, outw_o, outb, pairs, self_term,
                   MBD: tl.constexpr, HAS_SELF: tl.constexpr):
    """D's forward on a batch x (BP, S): (logit, a1, h1, a2, h2, a3 or M, o, E). Without minibatch
    discrimination ``o`` and ``E`` are placeholders and d2w is D's third layer; with it d2w is the
    projection (WP, KP, CP, S), a3 is M (BP, KP, CP, S), E (BP, BP, KP, S), and outw_o the output
    weights of o (BP, KP, S)."""
    a1 = x[:, None, :] * d0w[None, :, :] + d0b[None, :, :]
    h1 = _relu(a1)
    a2 = _matmul(h1, d1w) + d1b[None, :, :]
    h2 = _relu(a2)
    if MBD:
        a3 = tl.sum(h2[:, :, None, None, :] * d2w[None, :, :, :, :], axis=1) + d2b[None, :, :, :]
        dist = tl.sum(tl.abs(a3[:, None, :, :, :] - a3[None, :, :, :, :]), axis=3)
        e = tl.where(pairs, tl.exp(-dist), 0.0)
        o = tl.sum(e, axis=1)
        if HAS_SELF:
            o = o + self_term
        logit = tl.sum(h2 * outw_h[None, :, :], axis=1) + tl.sum(o * outw_o[None, :, :], axis=1) + outb[None, :]
    else:
        a3 = _matmul(h2, d2w) + d2b[None, :, :]
        logit = tl.sum(_relu(a3) * outw_h[None, :, :], axis=1) + outb[None, :]
        o, e = a3, a3
    return logit, a1, h1, a2, h2, a3, o, e


@triton.jit
def _discriminator_backward(g_logit, x, a1, h1, a2, h2, a3, o, e, d0w, d1w, d2w, outw_h, outw_o,
                            MBD: tl.constexpr):
    """The gradients of sum_b g_logit[b] logit[b] (g_logit (BP, S)) by D's parameters and by its input x,
    from the saved forward values: (g_d0w, g_d0b, g_d1w, g_d1b, g_d2w, g_d2b, g_outw_h, g_outw_o, g_outb, g_x)."""
    g_outb = tl.sum(g_logit, axis=0)
    g_rows = g_logit[:, None, :]
    if MBD:
        g_outw_h = tl.sum(g_rows * h2, axis=0)
        g_outw_o = tl.sum(g_rows * o, axis=0)
        g_o = g_rows * outw_o[None, :, :]
        weight = ((g_o[:, None, :, :] + g_o[None, :, :, :]) * e)[:, :, :, None, :]
        diff = a3[:, None, :, :, :] - a3[None, :, :, :, :]
        g_m = -tl.sum(tl.where(diff > 0, weight, tl.where(diff < 0, -weight, 0.0)), axis=1)
        g_d2w = tl.sum(h2[:, :, None, None, :] * g_m[:, None, :, :, :], axis=0)
        g_d2b = tl.sum(g_m, axis=0)
        g_h2 = g_rows * outw_h[None, :, :] + tl.sum(tl.sum(g_m[:, None, :, :, :] * d2w[None, :, :, :, :], axis=3),
                                                    axis=2)
    else:
        g_outw_h = tl.sum(g_rows * _relu(a3), axis=0)
        g_outw_o = g_outw_h
        g_a3 = tl.where(a3 <= 0, 0.0, g_rows * outw_h[None, :, :])
        g_d2w = _outer_sum(h2, g_a3)
        g_d2b = tl.sum(g_a3, axis=0)
        g_h2 = _matmul_t(g_a3, d2w)
    g_a2 = tl.where(a2 <= 0, 0.0, g_h2)
    g_d1w = _outer_sum(h1, g_a2)
    g_d1b = tl.sum(g_a2, axis=0)
    g_a1 = tl.where(a1 <= 0, 0.0, _matmul_t(g_a2, d1w))
    g_d0w = tl.sum(x[:, None, :] * g_a1, axis=0)
    g_d0b = tl.sum(g_a1, axis=0)
    g_x = tl.sum(g_a1 * d0w[None, :, :], axis=1)
    return g_d0w, g_d0b, g_d1w, g_d1b, g_d2w, g_d2b, g_outw_h, g_outw_o, g_outb, g_x


@triton.jit
def _adam(p_ptr, m_ptr, v_ptr, offsets, mask, theta, grad, lr, constants):
    """TF1 Adam on one parameter tensor: m, v read, updated and stored; the new theta stored and returned
    (zero outside ``mask``). constants: (beta1, 1 - beta1, beta2, 1 - beta2, eps)."""
    beta1, one_minus_beta1, beta2, one_minus_beta2, eps = constants
    m = tl.load(m_ptr + offsets, mask=mask, other=0.0)
    v = tl.load(v_ptr + offsets, mask=mask, other=0.0)
    m = beta1 * m + one_minus_beta1 * grad
    v = beta2 * v + one_minus_beta2 * (grad * grad)
    theta = theta - _div(lr * m, _sqrt(v) + eps)
    tl.store(m_ptr + offsets, m, mask=mask)
    tl.store(v_ptr + offsets, v, mask=mask)
    tl.store(p_ptr + offsets, theta, mask=mask)
    return tl.where(mask, theta, 0.0)  # padding stays zero (an o of a padded kernel has a gradient)


@triton.jit
def _squares(t):
    """sum_j t[j, :]^2 of an (n, S) tensor, per seed."""
    return tl.sum(t * t, axis=0)


@triton.jit
def _generator(z, g0w, g0b, g1w, g1b):
    """G's forward on a batch z (BP, S): (G(z), a0, e0 = exp(-|a0|), softplus(a0)), a0 (BP, HP, S)."""
    a0 = z[:, None, :] * g0w[None, :, :] + g0b[None, :, :]
    e0 = tl.exp(-tl.abs(a0))
    s0 = _relu(a0) + _log1p(e0)
    return tl.sum(s0 * g1w[None, :, :], axis=1) + g1b[None, :], a0, e0, s0


@triton.jit
def _fused_step_kernel(g_ptr, d_ptr, gm_ptr, gv_ptr, dm_ptr, dv_ptr, x_ptr, zd_ptr, zg_ptr, lr_d_ptr, lr_g_ptr,
                       i_ptr, row_ptr, const_ptr, S,
                       PG: tl.constexpr, G0W: tl.constexpr, G0B: tl.constexpr, G1W: tl.constexpr, G1B: tl.constexpr,
                       PD: tl.constexpr, D0W: tl.constexpr, D0B: tl.constexpr, D1W: tl.constexpr,
                       D1B: tl.constexpr, D2W: tl.constexpr, D2B: tl.constexpr, OUTW: tl.constexpr,
                       OUTB: tl.constexpr, MBD: tl.constexpr, HAS_SELF: tl.constexpr,
                       B: tl.constexpr, H: tl.constexpr, W: tl.constexpr, K: tl.constexpr, C: tl.constexpr,
                       BP: tl.constexpr, HP: tl.constexpr, WP: tl.constexpr, KP: tl.constexpr, CP: tl.constexpr,
                       BLOCK_S: tl.constexpr):
    """Step i (read from i_ptr) for seeds [program * BLOCK_S, ...): see the module's docstring."""
    seed = tl.program_id(0) * BLOCK_S + tl.arange(0, BLOCK_S)
    live = seed < S
    seed = seed.to(tl.int64)
    adam = (tl.load(const_ptr + 0), tl.load(const_ptr + 1), tl.load(const_ptr + 2), tl.load(const_ptr + 3),
            tl.load(const_ptr + 4))  # beta1, 1 - beta1, beta2, 1 - beta2, eps
    clip = tl.load(const_ptr + 5)
    self_term, batch = tl.load(const_ptr + 6), tl.load(const_ptr + 7)
    step = tl.load(i_ptr)
    lr_d, lr_g = tl.load(lr_d_ptr + step), tl.load(lr_g_ptr + step)

    # index grids, seeds last: s2 (1, S), s3 (1, 1, S); rows b (BP, 1); units (n, 1) and (n, 1, 1)
    s2, s3 = seed[None, :], seed[None, None, :]
    live2, live3 = live[None, :], live[None, None, :]
    b = tl.arange(0, BP)
    rows = (b[:, None] < B) & live2
    batch_at = step * S * B + s2 * B + b[:, None]
    hh = tl.arange(0, HP)[:, None]
    w2 = tl.arange(0, WP)[:, None]
    w_in, w_out = tl.arange(0, WP)[:, None, None], tl.arange(0, WP)[None, :, None]
    g_vec = (hh < H) & live2
    d_vec = (w2 < W) & live2
    d_mat = (w_in < W) & (w_out < W) & live3

    # the state: G's and D's weights
    g0w_at, g0b_at, g1w_at, g1b_at = s2 * PG + G0W + hh, s2 * PG + G0B + hh, s2 * PG + G1W + hh, seed * PG + G1B
    g0w = tl.load(g_ptr + g0w_at, mask=g_vec, other=0.0)
    g0b = tl.load(g_ptr + g0b_at, mask=g_vec, other=0.0)
    g1w = tl.load(g_ptr + g1w_at, mask=g_vec, other=0.0)
    g1b = tl.load(g_ptr + g1b_at, mask=live, other=0.0)
    d0w_at, d0b_at = s2 * PD + D0W + w2, s2 * PD + D0B + w2
    d1w_at, d1b_at = s3 * PD + D1W + w_in * W + w_out, s2 * PD + D1B + w2
    d0w = tl.load(d_ptr + d0w_at, mask=d_vec, other=0.0)
    d0b = tl.load(d_ptr + d0b_at, mask=d_vec, other=0.0)
    d1w = tl.load(d_ptr + d1w_at, mask=d_mat, other=0.0)
    d1b = tl.load(d_ptr + d1b_at, mask=d_vec, other=0.0)
    if MBD:  # the projection (WP, KP, CP, S), flat index w K C + k C + c, and its bias (KP, CP, S)
        w4 = tl.arange(0, WP)[:, None, None, None]
        k4, c4 = tl.arange(0, KP)[None, :, None, None], tl.arange(0, CP)[None, None, :, None]
        d2w_at = seed[None, None, None, :] * PD + D2W + w4 * (K * C) + k4 * C + c4
        d2w_mask = (w4 < W) & (k4 < K) & (c4 < C) & live[None, None, None, :]
        k3, c3 = tl.arange(0, KP)[:, None, None], tl.arange(0, CP)[None, :, None]
        d2b_at, d2b_mask = s3 * PD + D2B + k3 * C + c3, (k3 < K) & (c3 < C) & live3
        kk = tl.arange(0, KP)[:, None]
        outo_at, outo_mask = s2 * PD + OUTW + W + kk, (kk < K) & live2
        # pairs (b, j) of different rows inside the batch: (BP, BP, 1, 1)
        pairs = ((b[:, None] != b[None, :]) & (b[:, None] < B) & (b[None, :] < B))[:, :, None, None]
    else:
        d2w_at, d2w_mask = s3 * PD + D2W + w_in * W + w_out, d_mat
        d2b_at, d2b_mask = s2 * PD + D2B + w2, d_vec
        outo_at, outo_mask = s2 * PD + OUTW + w2, d_vec
        pairs = b[:, None] != b[None, :]
    d2w = tl.load(d_ptr + d2w_at, mask=d2w_mask, other=0.0)
    d2b = tl.load(d_ptr + d2b_at, mask=d2b_mask, other=0.0)
    outw_at, outb_at = s2 * PD + OUTW + w2, seed * PD + OUTB
    outw_h = tl.load(d_ptr + outw_at, mask=d_vec, other=0.0)
    outw_o = tl.load(d_ptr + outo_at, mask=outo_mask, other=0.0)
    outb = tl.load(d_ptr + outb_at, mask=live, other=0.0)

    # ---- D's update: L_D at (x, G(z)) ----
    x = tl.load(x_ptr + batch_at, mask=rows, other=0.0)
    fake, _a0, _e0, _s0 = _generator(tl.load(zd_ptr + batch_at, mask=rows, other=0.0), g0w, g0b, g1w, g1b)
    fake = tl.where(rows, fake, 0.0)
    # each batch's forward, then at once its backward (fewer values live at a time)
    # dL/dp = -1/(B p) [p >= clip] (real), 1/(B (1 - p)) [1 - p >= clip] (fake); dp/dlogit = p (1 - p)
    l_r, a1, h1, a2, h2, a3, o, e = _discriminator(x, d0w, d0b, d1w, d1b, d2w, d2b, outw_h, outw_o, outb,
                                                   pairs, self_term, MBD, HAS_SELF)
    p_real = _sigmoid(l_r)
    term_real = tl.where(rows, -_log_clipped(p_real, clip), 0.0)
    ones = tl.full(l_r.shape, 1.0, l_r.dtype)
    g_real = tl.where(rows & (p_real >= clip), -_div(ones, batch * p_real), 0.0) * (p_real * (1.0 - p_real))
    r0w, r0b, r1w, r1b, r2w, r2b, rwh, rwo, rb, _gx = _discriminator_backward(
        g_real, x, a1, h1, a2, h2, a3, o, e, d0w, d1w, d2w, outw_h, outw_o, MBD)
    l_f, a1, h1, a2, h2, a3, o, e = _discriminator(fake, d0w, d0b, d1w, d1b, d2w, d2b, outw_h, outw_o, outb,
                                                   pairs, self_term, MBD, HAS_SELF)
    p_fake = _sigmoid(l_f)
    term_fake = tl.where(rows, -_log_clipped(1.0 - p_fake, clip), 0.0)
    g_fake = tl.where(rows & (1.0 - p_fake >= clip), _div(ones, batch * (1.0 - p_fake)), 0.0)
    g_fake = g_fake * (p_fake * (1.0 - p_fake))
    f0w, f0b, f1w, f1b, f2w, f2b, fwh, fwo, fb, _gx = _discriminator_backward(
        g_fake, fake, a1, h1, a2, h2, a3, o, e, d0w, d1w, d2w, outw_h, outw_o, MBD)
    loss_d = _div(tl.sum(term_real + term_fake, axis=0), batch)
    loss_real = _div(tl.sum(term_real, axis=0), batch)
    loss_fake = _div(tl.sum(term_fake, axis=0), batch)
    d0w = _adam(d_ptr, dm_ptr, dv_ptr, d0w_at, d_vec, d0w, r0w + f0w, lr_d, adam)
    d0b = _adam(d_ptr, dm_ptr, dv_ptr, d0b_at, d_vec, d0b, r0b + f0b, lr_d, adam)
    d1w = _adam(d_ptr, dm_ptr, dv_ptr, d1w_at, d_mat, d1w, r1w + f1w, lr_d, adam)
    d1b = _adam(d_ptr, dm_ptr, dv_ptr, d1b_at, d_vec, d1b, r1b + f1b, lr_d, adam)
    d2w = _adam(d_ptr, dm_ptr, dv_ptr, d2w_at, d2w_mask, d2w, r2w + f2w, lr_d, adam)
    d2b = _adam(d_ptr, dm_ptr, dv_ptr, d2b_at, d2b_mask, d2b, r2b + f2b, lr_d, adam)
    outw_h = _adam(d_ptr, dm_ptr, dv_ptr, outw_at, d_vec, outw_h, rwh + fwh, lr_d, adam)
    if MBD:
        outw_o = _adam(d_ptr, dm_ptr, dv_ptr, outo_at, outo_mask, outw_o, rwo + fwo, lr_d, adam)
    outb = _adam(d_ptr, dm_ptr, dv_ptr, outb_at, live, outb, rb + fb, lr_d, adam)

    # ---- G's update: L_G at G(z') through the updated D ----
    z = tl.load(zg_ptr + batch_at, mask=rows, other=0.0)
    fake, a0, e0, s0 = _generator(z, g0w, g0b, g1w, g1b)
    fake = tl.where(rows, fake, 0.0)
    l_g, a1g, h1g, a2g, h2g, a3g, o_g, e_g = _discriminator(fake, d0w, d0b, d1w, d1b, d2w, d2b, outw_h, outw_o,
                                                            outb, pairs, self_term, MBD, HAS_SELF)
    p_gen = _sigmoid(l_g)
    loss_g = _div(tl.sum(tl.where(rows, -_log_clipped(p_gen, clip), 0.0), axis=0), batch)
    g_gen = tl.where(rows & (p_gen >= clip), -_div(ones, batch * p_gen), 0.0) * (p_gen * (1.0 - p_gen))
    _0, _1, _2, _3, _4, _5, _6, _7, _8, g_out = _discriminator_backward(
        g_gen, fake, a1g, h1g, a2g, h2g, a3g, o_g, e_g, d0w, d1w, d2w, outw_h, outw_o, MBD)
    g_out = tl.where(rows, g_out, 0.0)  # dL_G / dG(z')
    g_g1w = tl.where(g_vec, tl.sum(g_out[:, None, :] * s0, axis=0), 0.0)
    g_g1b = tl.sum(g_out, axis=0)
    sign0 = tl.where(a0 > 0, 1.0, tl.where(a0 < 0, -1.0, 0.0))
    g_a0 = g_out[:, None, :] * g1w[None, :, :] * (tl.where(a0 >= 0, 1.0, 0.0) - sign0 * _div(e0, 1.0 + e0))
    g_g0w = tl.sum(z[:, None, :] * g_a0, axis=0)
    g_g0b = tl.sum(g_a0, axis=0)
    norm_g = _sqrt(_squares(g_g0w) + _squares(g_g0b) + _squares(g_g1w) + g_g1b * g_g1b)
    norm_d = _sqrt(_squares(g_out))
    _adam(g_ptr, gm_ptr, gv_ptr, g0w_at, g_vec, g0w, g_g0w, lr_g, adam)
    _adam(g_ptr, gm_ptr, gv_ptr, g0b_at, g_vec, g0b, g_g0b, lr_g, adam)
    _adam(g_ptr, gm_ptr, gv_ptr, g1w_at, g_vec, g1w, g_g1w, lr_g, adam)
    _adam(g_ptr, gm_ptr, gv_ptr, g1b_at, live, g1b, g_g1b, lr_g, adam)

    # ---- the curve row, in interface.CURVES order ----
    at = seed * 6
    tl.store(row_ptr + at + 0, loss_d, mask=live)
    tl.store(row_ptr + at + 1, loss_g, mask=live)
    tl.store(row_ptr + at + 2, loss_real, mask=live)
    tl.store(row_ptr + at + 3, loss_fake, mask=live)
    tl.store(row_ptr + at + 4, norm_g, mask=live)
    tl.store(row_ptr + at + 5, norm_d, mask=live)
