"""Minibatch discrimination's pairwise kernel sums in PyTorch: one layer, two formulations.

Diff this file against ``tf_minibatch.py``. Given M (..., B, K, C) (the projection of D's
features), every formulation computes

    o[..., i, k] = sum_j exp(-(d_k(i, j) + s [i == j])),   d_k(i, j) = sum_c |M[i,k,c] - M[j,k,c]|,

s = 1 ("exp-1"), 0 ("exp0") or +inf ("none": the diagonal left out). d_k(i, i) = 0 exactly, so
the diagonal term is exactly exp(-s) and the off-diagonal sum is what costs B^2.

Formulations:
- ``reference``: the published broadcast, a (..., B, K, C, B) tensor of differences summed over
  C; autograd backward. Memory and time grow as B^2 K C; kept as the baseline.
- ``production``: what training uses. On CUDA above ``BROADCAST_MAX`` rows: two Triton kernels, one
  launch each way (``torch_minibatch_triton.py``; where triton is installed and takes M, else the
  regimes below); inside a compiled training step (CUDA's default, ``torch_twin``): the broadcast's
  plain autograd ops (``traced_sums``), which TorchInductor fuses. Otherwise three regimes chosen by
  the batch size B alone (never by the number of stacked seeds, so a seed's bits do not depend on
  its stack):
  * B <= ``BROADCAST_MAX`` (16; the training batches are 8 and 12): one broadcast in pair-major
    layout, |M[.., i, None] - M[.., None, j]| as a (..., B_i, B_j, K, C) tile of at most
    16 x 16 x K x C elements, summed over C, then exp(-s [i == j] - d). Its numbers, value and
    gradient, are those of autograd through sub, abs, sum over C, -s [i == j] - d (a cached
    constant; exp0: a negation), exp and sum over j, bit for bit, however it is evaluated (the
    tests compare them bitwise); how depends on the tile's size, stack included:
    - under ``SMALL_TILE`` elements (a seed or two), those autograd ops: per-call overhead
      dominates and they are the fewest calls;
    - above, with a gradient to take, ``_BroadcastSums``: the same forward in fewer passes and
      allocations, and autograd's backward written out with the same arithmetic element for
      element, without ATen's sgn (15 ns an element without SIMD, half the layer's time) or
      its temporaries; 2.5-3x faster for stacks of 100-1000 seeds;
    - above, without a gradient (evaluation), the same forward, on CPU in chunks of leading rows
      of at most ``CHUNK_TILE`` elements, which keeps each pass in cache.
    No evaluation reads a value back to the host.
  * B <= ``TILE`` (64): a loop over the C dims accumulating a (..., B_i, B_j, K) tensor, which
    touches fewer bytes than the broadcast once stacks are large (at most 64 x 64 x K per seed).
  * Above, fused kernels that never hold a B x B tensor:
      forward   o[i] = exp(-s) + sum_{j != i} exp(-d(i, j)),
      backward  dL/dM[i,k,c] = -sum_j (g[i,k] + g[j,k]) E[i,j,k] sign(M[i,k,c] - M[j,k,c]),
  E[i,j,k] = exp(-d_k(i, j)) for j != i (the diagonal's derivative is zero: sign(0) = 0). The
  backward is hand-written (it uses E's symmetry: one reduction over j instead of two), and
  evaluates E without an exp per pair: with r the midrange of M[:, k, c] over the batch,
  u = exp(M - r), v = exp(r - M), exp(-|x_i - x_j|) = min(u_i v_j, u_j v_i), so
  E[i,j,k] = prod_c min(u_ic v_jc, u_jc v_ic) costs 3 C multiplications and C minima. That is
  exact algebra; it needs |M - r| <= LOG_RANGE (products stay finite), checked per call on CPU
  by one read back to the host: a wider spread takes the exp-per-pair backward. On any other
  device (CUDA) the backward is always the exp-per-pair one, without reading anything back: a
  device-to-host read per call costs more than the exps (``fused_sums``'s ``host_read``). Both
  directions are compiled by TorchInductor (one C++ or Triton kernel each, the reduction over j
  fused; shapes dynamic, so one compilation serves every B). On CPU the kernels are vectorised
  with AVX2 and compiled for x86-64-v3 on every CPU (the instruction-set pin, ``ganrepro.isa``;
  ``SIMD_BITS``)
  even under ATEN_CPU_CAPABILITY=default, which only governs ATen's own eager kernels.
"""
from __future__ import annotations

import functools
import math

import torch
from torch.autograd.function import once_differentiable

FORMULATIONS = ("reference", "production")
BROADCAST_MAX = 16
"""The production formulation uses the pair-major broadcast up to BROADCAST_MAX rows."""
TILE = 64
"""... then the per-C loop up to TILE rows, and the fused kernels above."""
SMALL_TILE = 4096
"""Below this many elements in the broadcast's (..., B, B, K, C) tile, autograd's ops (see
``broadcast_sums``): per-call overhead dominates there. The same bits either side."""
CHUNK_TILE = 2 ** 16
"""Without a gradient, on CPU, tiles above this many elements are evaluated in chunks of leading
rows of at most this many (256 KiB in float32): memory-bound passes over 10-100 MB tensors (D
on the evaluation grid) become passes in cache, 3x faster. Rows are independent: the same bits."""
SELF_VALUE = {"exp-1": math.exp(-1.0), "exp0": 1.0, "none": 0.0}
SELF_S = {"exp-1": 1.0, "exp0": 0.0, "none": math.inf}


def log_range(dtype) -> float:
    """Largest |M - r| for which u_i v_j = exp(2 |M - r|) at most stays finite: log(max) / 2 - 1."""
    return 0.5 * math.log(torch.finfo(dtype).max) - 1.0


def kernel_sums(m, self_term: str, formulation: str = "production"):
    """o (..., B, K) from M (..., B, K, C) in the named formulation (see the module docstring)."""
    if formulation == "reference":
        return reference_sums(m, self_term)
    if formulation == "production":
        batch = m.shape[-3]
        if torch.compiler.is_compiling():  # inside a compiled training step (CUDA): Inductor fuses these ops
            return traced_sums(m, self_term)
        if m.device.type == "cuda" and batch > BROADCAST_MAX and _triton_takes(m):
            from .torch_minibatch_triton import triton_sums

            return triton_sums(m, self_term)
        if batch <= BROADCAST_MAX:
            return broadcast_sums(m, self_term)
        return loop_sums(m, self_term) if batch <= TILE else fused_sums(m, self_term)
    raise ValueError(f"unknown minibatch formulation {formulation!r}; allowed: {', '.join(FORMULATIONS)}")


def reference_sums(m, self_term: str):
    """The broadcast of the reference: |M[i,k,c] - M[j,k,c]| as one (..., B_i, K, C, B_j) tensor."""
    mt = m.movedim(-3, -1)  # (..., K, C, B_j)
    dist = (m.unsqueeze(-1) - mt.unsqueeze(-4)).abs().sum(-2)  # (..., B_i, K, B_j)
    eye = torch.eye(m.shape[-3], dtype=m.dtype, device=m.device).unsqueeze(-2)  # (B_i, 1, B_j)
    kernel = _pair_kernel(dist, eye, self_term)
    return kernel.sum(-1)


def traced_sums(m, self_term: str):
    """The broadcast's autograd ops (sub, abs, sum over C, exp(-s [i == j] - d), sum over j): what a
    compiled training step traces; TorchInductor fuses them into a kernel or two each way."""
    dist = (m.unsqueeze(-3) - m.unsqueeze(-4)).abs().sum(-1)  # (..., B_i, B_j, K)
    return _production_kernel(dist, self_term).sum(-2)


def _triton_takes(m) -> bool:
    """Whether the Triton kernels (``torch_minibatch_triton``) are installed and take M."""
    try:
        from . import torch_minibatch_triton
    except ImportError:  # no triton: a CUDA build of PyTorch normally brings it
        return False
    return torch_minibatch_triton.supported(m)


def broadcast_sums(m, self_term: str):
    """The pair-major broadcast: |M[i,k,c] - M[j,k,c]| as one (..., B_i, B_j, K, C) tile, evaluated
    one of four ways by the tile's size, the same numbers bit for bit (module docstring)."""
    b = m.shape[-3]
    tile = m.numel() * b
    if tile < SMALL_TILE:  # autograd's ops: the fewest Python calls
        return traced_sums(m, self_term)
    if torch.is_grad_enabled() and m.requires_grad:
        return _BroadcastSums.apply(m, self_term)
    if m.device.type == "cpu" and tile > CHUNK_TILE:  # chunks of leading rows, each pass in cache
        per_row = b * math.prod(m.shape[-3:])  # B x B x K x C
        rows = m.reshape(-1, *m.shape[-3:]).split(max(1, CHUNK_TILE // per_row))
        chunks = [_broadcast_kernel(r.unsqueeze(-3) - r.unsqueeze(-4), self_term).sum(-2) for r in rows]
        return torch.cat(chunks).reshape(m.shape[:-1])
    return _broadcast_kernel(m.unsqueeze(-3) - m.unsqueeze(-4), self_term).sum(-2)


def _broadcast_kernel(diff, self_term: str):
    """exp(-s [i == j] - d) (..., B_i, B_j, K) from M_i - M_j (..., B_i, B_j, K, C), the numbers of
    ``_production_kernel(diff.abs().sum(-1))`` with one (..., B_i, B_j, K) tensor allocated.

    d = sum_c |diff_c| (see ``_abs_sum_over_c``); -s [i == j] - d as -d + (-s) on the diagonal
    only: a - b is a + (-b) and -d + 0 is -d off it (exp(+0) = exp(-0) where d = 0)."""
    kernel = _abs_sum_over_c(diff).neg_()
    if self_term != "exp0":
        kernel.diagonal(0, -3, -2).add_(-SELF_S[self_term])
    return kernel.exp_()


def _abs_sum_over_c(diff):
    """diff.abs().sum(-1), bitwise, without the (..., B, B, K, C) tensor of absolute values: ATen
    sums a contiguous last axis of at most 3 (fewer than its 4 partial sums) in index order,
    ((x0 + x1) + x2), which adds of strided views reproduce, 3x faster. |x| is copysign(x, 1)
    (both clear the sign bit): abs' output is filled once before it is written, under
    ``torch.use_deterministic_algorithms`` (``torch_twin.configure``), copysign's is not."""
    if diff.shape[-1] > 3 or not diff.is_contiguous():
        return diff.abs().sum(-1)
    cols = diff.unbind(-1)
    total = torch.copysign(cols[0], 1.0)
    if len(cols) > 1:
        scratch = torch.copysign(cols[1], 1.0)
        total.add_(scratch)
        if len(cols) > 2:
            total.add_(torch.copysign(cols[2], 1.0, out=scratch))
    return total


class _BroadcastSums(torch.autograd.Function):
    """``broadcast_sums`` with autograd's backward through its ops written out: the same numbers.

    Autograd through sub, abs, sum over C, exp(-s [i == j] - d) and sum over j forms
    gE = g_i E_ij, then the gradient of the differences M_i - M_j, -gE sgn(M_i - M_j) (abs'
    backward), sums it over j (M_i's part) and its negation over i (M_j's part), and adds the
    two. Here p = gE sgn(M_i - M_j) is that negation itself ((-x) y = -(x y) exactly), so both
    sums run in the same ATen reductions on the same tensors: the same bits. ATen's sgn takes
    15 ns an element without SIMD (ATEN_CPU_CAPABILITY=default), over half of autograd's time
    here; sgn(x) = clamp(x 2^e 2^e, -1, 1), 2^e the largest power of 2, is exact (2^(2e) times
    the smallest subnormal is above 1) and x is never -0 (M + 0 first; sgn(-0) is +0). Fewer
    temporaries too: the sign overwrites the differences. Nothing is read back to the host, and
    the backward is once differentiable (training takes first derivatives only).
    """

    @staticmethod
    def forward(ctx, m, self_term: str):
        m = m + 0.0  # -0 -> +0: a difference is then never -0 (only -0 - +0 is)
        diff = m.unsqueeze(-3) - m.unsqueeze(-4)  # (..., B_i, B_j, K, C)
        kernel = _broadcast_kernel(diff, self_term)
        scale = 2.0 ** (math.frexp(torch.finfo(diff.dtype).max)[1] - 1)  # the largest power of 2
        sign = diff.mul_(scale).mul_(scale).clamp_(-1.0, 1.0)  # sgn(M_i - M_j), in place
        ctx.save_for_backward(sign, kernel)
        return kernel.sum(-2)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad):
        sign, kernel = ctx.saved_tensors
        # minus dL/d(M_i - M_j) = g_i E_ij sgn(M_i - M_j); gE broadcast over C by a copy, then
        # multiplied in place: 1.5x faster than a product broadcasting over the last axis
        p = (grad.unsqueeze(-2) * kernel).unsqueeze(-1).expand_as(sign).contiguous().mul_(sign)
        if p.shape[-4] == 1:  # B = 1: autograd's sum_to reduces nothing
            return p.neg().squeeze(-3) + p.squeeze(-4), None
        from_j = p.sum(-4, keepdim=True)  # M_j's part: sum over i of minus the gradient
        from_i = p.neg_().sum(-3, keepdim=True)  # M_i's part: sum over j of the gradient
        return from_i.squeeze(-3) + from_j.squeeze(-4), None


def loop_sums(m, self_term: str):
    """A loop over the C dims accumulating a (..., B_i, B_j, K) tensor."""
    cols = m.unbind(-1)  # C tensors (..., B, K)
    dist = (cols[0].unsqueeze(-2) - cols[0].unsqueeze(-3)).abs()  # (..., B_i, B_j, K), summed over c
    for col in cols[1:]:  # in order; no (..., B, B, K, C) tensor is materialised
        dist = dist + (col.unsqueeze(-2) - col.unsqueeze(-3)).abs()
    return _production_kernel(dist, self_term).sum(-2)


def _production_kernel(dist, self_term: str):
    """exp(-s [i == j] - d) on d (..., B_i, B_j, K), the same numbers as exp(-(d + s [i == j])):
    negation is exact. The constant -s [i == j] is built once per batch size and cached (inside a
    compiled step it is traced, the cache left out: the compiled graph holds it)."""
    if self_term == "exp0":
        return torch.exp(-dist)
    build = _minus_self_diagonal.__wrapped__ if torch.compiler.is_compiling() else _minus_self_diagonal
    return torch.exp(build(dist.shape[-2], dist.dtype, dist.device, self_term) - dist)


@functools.cache
def _minus_self_diagonal(batch: int, dtype, device, self_term: str):
    """(B_i, B_j, 1): -s where i == j, 0 elsewhere (s = 1, or +inf for "none": exp gives 0)."""
    eye = torch.eye(batch, dtype=torch.bool, device=device).unsqueeze(-1)
    return torch.where(eye, -SELF_S[self_term], 0.0).to(dtype)


def _pair_kernel(dist, eye, self_term: str):
    """exp(-(d + s [i == j])): s = 1 adds the identity, s = 0 nothing, s = inf zeroes the diagonal."""
    if self_term == "exp-1":
        return torch.exp(-(dist + eye))
    if self_term == "exp0":
        return torch.exp(-dist)
    return torch.exp(-dist) * (1 - eye)


def fused_sums(m, self_term: str, host_read: bool | None = None):
    """The fused kernels on a = M as (N, K, C, B) rows (N = the flattened leading axes).

    ``host_read``: whether the backward may read the spread of a back to the host to choose the
    products backward (default: on CPU only). Without it, the exp-per-pair backward, always: on a
    GPU the exp is cheap and a device-to-host read per call is not (it stalls the launch queue)."""
    lead, (b, k, c) = m.shape[:-3], m.shape[-3:]
    a = m.reshape(-1, b, k, c).permute(0, 2, 3, 1).contiguous()
    if host_read is None:
        host_read = a.device.type == "cpu"
    o = _FusedSums.apply(a, SELF_VALUE[self_term], host_read)  # (N, K, B)
    return o.permute(0, 2, 1).reshape(*lead, b, k)


class _FusedSums(torch.autograd.Function):
    """o = exp(-s) + sum_{j != i} E[i, j]; backward -sum_j (g_i + g_j) E[i, j] sign(a_i - a_j)."""

    @staticmethod
    def forward(ctx, a, self_value: float, host_read: bool):
        ctx.save_for_backward(a)
        ctx.host_read = host_read
        return _compiled("forward")(a) + self_value

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        grad = grad.contiguous()
        if ctx.host_read:
            centre = 0.5 * (a.amax(-1, keepdim=True) + a.amin(-1, keepdim=True))
            if float((a - centre).abs().max()) <= log_range(a.dtype):
                products = _compiled("backward_products")(a, torch.exp(a - centre), torch.exp(centre - a), grad)
                return products, None, None
        return _compiled("backward_exp")(a, grad), None, None


# ---- the kernels compiled by TorchInductor; a (N, K, C, B), rows i, columns j -------------------
def _off_diagonal(a):
    idx = torch.arange(a.shape[-1], device=a.device)
    return idx[:, None] != idx[None, :]  # (B_i, B_j)


def _dist(a):
    """d (N, K, B_i, B_j) = sum_c |a_ic - a_jc|: fused into the consumer's loop, never stored."""
    dist = (a[:, :, 0, :, None] - a[:, :, 0, None, :]).abs()
    for c in range(1, a.shape[2]):
        dist = dist + (a[:, :, c, :, None] - a[:, :, c, None, :]).abs()
    return dist


def _forward(a):
    """sum_{j != i} exp(-d(i, j)): (N, K, B)."""
    return torch.where(_off_diagonal(a), torch.exp(-_dist(a)), 0.0).sum(-1)


def _signed_sums(a, weights):
    """-sum_j weights[i, j] sign(a_ic - a_jc) for every c: (N, K, C, B)."""
    return -torch.stack([(weights * torch.sign(a[:, :, c, :, None] - a[:, :, c, None, :])).sum(-1)
                         for c in range(a.shape[2])], 2)


def _backward_exp(a, grad):
    """The backward with one exp per pair."""
    weights = torch.exp(-_dist(a)) * (grad[:, :, :, None] + grad[:, :, None, :])
    return _signed_sums(a, weights)


def _backward_products(a, u, v, grad):
    """The backward with E = prod_c min(u_ic v_jc, u_jc v_ic) (u = exp(a - r), v = exp(r - a))."""
    kernel = None
    for c in range(a.shape[2]):
        factor = torch.minimum(u[:, :, c, :, None] * v[:, :, c, None, :], u[:, :, c, None, :] * v[:, :, c, :, None])
        kernel = factor if kernel is None else kernel * factor
    kernel = torch.where(_off_diagonal(a), kernel, 0.0)  # prod_c u_ic v_ic is 1 only up to rounding
    return _signed_sums(a, kernel * (grad[:, :, :, None] + grad[:, :, None, :]))


SIMD_BITS = None
"""Vector width (bits) of Inductor's CPU kernels (set on first use): 256 (AVX2) under the
instruction-set pin (``ganrepro.isa``), else the widest the CPU has."""


@functools.cache
def _compiled(name: str):
    global SIMD_BITS
    from torch._inductor import cpu_vec_isa

    from ganrepro import isa

    if isa.pinned():
        options = dict(isa.INDUCTOR_OPTIONS)
        SIMD_BITS = options["cpp.simdlen"]
    else:
        isas = cpu_vec_isa.valid_vec_isa_list()
        SIMD_BITS = isas[0].bit_width() if isas else 0
        options = {"cpp.simdlen": SIMD_BITS} if SIMD_BITS else {}
    fn = {"forward": _forward, "backward_exp": _backward_exp, "backward_products": _backward_products}[name]
    return torch.compile(fn, dynamic=True, fullgraph=True, options=_known_to_inductor(options))


def _known_to_inductor(options: dict) -> dict:
    """The options this PyTorch's Inductor has (``torch.compile`` refuses an unknown one): the pinned
    ``cpp.march`` is missing from some versions (2.11, e.g. on a GPU machine's image), where
    Inductor's CPU kernels then keep their default ``-march``; the CUDA kernels use neither option."""
    from torch._inductor import config

    known = config.get_config_copy()
    return {key: value for key, value in options.items() if key.replace("-", "_") in known}
