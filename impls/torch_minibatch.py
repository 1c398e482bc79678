"""Minibatch discrimination's pairwise kernel sums in PyTorch: one layer, two formulations.

Diff this file against ``tf_minibatch.py``. Given M (..., B, K, C) (the projection of D's
features), every formulation computes

    o[..., i, k] = sum_j exp(-(d_k(i, j) + s [i == j])),   d_k(i, j) = sum_c |M[i,k,c] - M[j,k,c]|,

s = 1 ("exp-1"), 0 ("exp0") or +inf ("none": the diagonal left out). d_k(i, i) = 0 exactly, so
the diagonal term is exactly exp(-s) and the off-diagonal sum is what costs B^2.

Formulations:
- ``reference``: the published broadcast, a (..., B, K, C, B) tensor of differences summed over
  C; autograd backward. Memory and time grow as B^2 K C; kept as the baseline.
- ``production``: what training uses, in three regimes chosen by the batch size B alone (never by
  the number of stacked seeds, so a seed's bits do not depend on its stack):
  * B <= ``BROADCAST_MAX`` (16; the training batches are 8 and 12): one broadcast in pair-major
    layout, |M[.., i, None] - M[.., None, j]| as a (..., B_i, B_j, K, C) tile of at most
    16 x 16 x K x C elements, summed over C, then exp(-s [i == j] - d) with -s [i == j] a cached
    constant. At this size the cost is eager per-op overhead, not arithmetic, and this is the
    fewest autograd ops (sub, abs, sum, sub, exp, sum): fewer than the reference (which also
    builds the identity and negates separately) and about half the per-C loop's.
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
  exact algebra; it needs |M - r| <= LOG_RANGE (products stay finite), checked per call: a wider
  spread takes the exp-per-pair backward. Both directions are compiled by TorchInductor (one C++
  or Triton kernel each, the reduction over j fused; shapes dynamic, so one compilation serves
  every B). On CPU the kernels are vectorised with AVX2 and compiled for x86-64-v3 on every CPU (the
  instruction-set pin, ``ganrepro.isa``; ``SIMD_BITS``)
  even under ATEN_CPU_CAPABILITY=default, which only governs ATen's own eager kernels.
"""
from __future__ import annotations

import functools
import math

import torch

FORMULATIONS = ("reference", "production")
BROADCAST_MAX = 16
"""The production formulation uses the pair-major broadcast up to BROADCAST_MAX rows."""
TILE = 64
"""... then the per-C loop up to TILE rows, and the fused kernels above."""
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


def broadcast_sums(m, self_term: str):
    """The pair-major broadcast: |M[i,k,c] - M[j,k,c]| as one (..., B_i, B_j, K, C) tile."""
    dist = (m.unsqueeze(-3) - m.unsqueeze(-4)).abs().sum(-1)  # (..., B_i, B_j, K)
    return _production_kernel(dist, self_term).sum(-2)


def loop_sums(m, self_term: str):
    """A loop over the C dims accumulating a (..., B_i, B_j, K) tensor."""
    cols = m.unbind(-1)  # C tensors (..., B, K)
    dist = (cols[0].unsqueeze(-2) - cols[0].unsqueeze(-3)).abs()  # (..., B_i, B_j, K), summed over c
    for col in cols[1:]:  # in order; no (..., B, B, K, C) tensor is materialised
        dist = dist + (col.unsqueeze(-2) - col.unsqueeze(-3)).abs()
    return _production_kernel(dist, self_term).sum(-2)


def _production_kernel(dist, self_term: str):
    """exp(-s [i == j] - d) on d (..., B_i, B_j, K), the same numbers as exp(-(d + s [i == j])):
    negation is exact. The constant -s [i == j] is built once per batch size and cached."""
    if self_term == "exp0":
        return torch.exp(-dist)
    return torch.exp(_minus_self_diagonal(dist.shape[-2], dist.dtype, dist.device, self_term) - dist)


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


def fused_sums(m, self_term: str):
    """The fused kernels on a = M as (N, K, C, B) rows (N = the flattened leading axes)."""
    lead, (b, k, c) = m.shape[:-3], m.shape[-3:]
    a = m.reshape(-1, b, k, c).permute(0, 2, 3, 1).contiguous()
    o = _FusedSums.apply(a, SELF_VALUE[self_term])  # (N, K, B)
    return o.permute(0, 2, 1).reshape(*lead, b, k)


class _FusedSums(torch.autograd.Function):
    """o = exp(-s) + sum_{j != i} E[i, j]; backward -sum_j (g_i + g_j) E[i, j] sign(a_i - a_j)."""

    @staticmethod
    def forward(ctx, a, self_value: float):
        ctx.save_for_backward(a)
        return _compiled("forward")(a) + self_value

    @staticmethod
    def backward(ctx, grad):
        (a,) = ctx.saved_tensors
        grad = grad.contiguous()
        centre = 0.5 * (a.amax(-1, keepdim=True) + a.amin(-1, keepdim=True))
        if float((a - centre).abs().max()) <= log_range(a.dtype):
            return _compiled("backward_products")(a, torch.exp(a - centre), torch.exp(centre - a), grad), None
        return _compiled("backward_exp")(a, grad), None


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
    return torch.compile(fn, dynamic=True, fullgraph=True, options=options)
