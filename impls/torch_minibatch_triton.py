"""The minibatch layer's kernel sums as two Triton kernels: the PyTorch twin's CUDA formulation above
``torch_minibatch.BROADCAST_MAX`` rows (``torch_minibatch.kernel_sums`` picks it on CUDA).

For M (N, B, K, C) (N the flattened leading axes) the two kernels compute, without any (B, B) tensor,

    forward   o[n, i, k]     = exp(-s) + sum_{j != i} E[i, j],
    backward  dL/dM[n,i,k,c] = -sum_{j != i} (g[n,i,k] + g[n,j,k]) E[i, j] sign(M[n,i,k,c] - M[n,j,k,c]),

E[i, j] = exp(-sum_c |M[n,i,k,c] - M[n,j,k,c]|) (the diagonal's derivative is zero: sign(0) = 0;
E's symmetry makes the backward one reduction over j instead of two; ``torch_minibatch``'s fused
kernels state the same formulas). One program handles BLOCK_I rows i of one (n, k) and loops over
the columns j in (BLOCK_I, BLOCK_J) tiles, one column c of M at a time (d adds its C terms in index
order): the forward adds the tiles' E element-wise and sums over j once at the end; the backward
adds each tile's (g_i + g_j) E sign(M_ic - M_jc) element-wise into column c's accumulator (C <= 4)
and sums over j once at the end.
The block sizes depend on B alone, so a seed's bits do not depend on how many seeds are
stacked with it (N), and nothing is read back to the host. Each direction is one launch: on a GPU
the earlier formulations' several kernels each cost more in launches than in arithmetic below
B = 512, and the fused Inductor kernels' tiling left the B = 8,192 case 1.4 ms.

Triton compiles a kernel per dtype and block-size class on first use. Without a GPU the same
kernels run in Triton's interpreter (``TRITON_INTERPRET=1`` before triton is imported), which is
how the tests check them on the CPU (``tests/test_minibatch_triton.py``).
"""
from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

MAX_BLOCK_I = 64
MAX_BLOCK_J = 64
MAX_C = 4
"""The backward kernel's accumulators: one per column of M (C = 3 in every named variant)."""
FORWARD_WARPS, BACKWARD_WARPS = 4, 8
"""Warps per program (the backward holds MAX_C accumulators of BLOCK_I x BLOCK_J; with 8 warps,
none spills to local memory in float32 or float64 on sm_90). Timed on an H100 with these and the
block sizes below; ``benchmarks/probe_triton_tiles.py`` times other choices."""


@triton.jit
def _kernel_tile(m_ptr, row_base, i, j, valid_i, valid_j, STRIDE: tl.constexpr, C: tl.constexpr,
                 BLOCK_I: tl.constexpr, BLOCK_J: tl.constexpr):
    """E[i, j] (BLOCK_I, BLOCK_J) off the diagonal (0 on it and outside the batch): one column c at a
    time, d = sum_c |M[i, c] - M[j, c]| in index order, then exp(-d)."""
    dist = tl.zeros((BLOCK_I, BLOCK_J), dtype=m_ptr.dtype.element_ty)
    for c in tl.static_range(C):
        a_i = tl.load(m_ptr + row_base + i * STRIDE + c, mask=valid_i, other=0.0)
        a_j = tl.load(m_ptr + row_base + j * STRIDE + c, mask=valid_j, other=0.0)
        dist += tl.abs(a_i[:, None] - a_j[None, :])
    off_diagonal = (i[:, None] != j[None, :]) & valid_i[:, None] & valid_j[None, :]
    return tl.where(off_diagonal, tl.exp(-dist), 0.0)


@triton.jit
def _forward_kernel(m_ptr, o_ptr, b, K: tl.constexpr, C: tl.constexpr, BLOCK_I: tl.constexpr,
                    BLOCK_J: tl.constexpr, SELF_S: tl.constexpr):
    """o[n, i, k] = exp(-s) + sum_{j != i} E[i, j] for BLOCK_I rows i of one (n, k); s = SELF_S, or
    none (the diagonal left out) when SELF_S < 0. The tiles add up element-wise; one sum over j at
    the end."""
    nk = tl.program_id(1)
    n, k = nk // K, nk % K
    i = tl.program_id(0) * BLOCK_I + tl.arange(0, BLOCK_I)
    valid_i = i < b
    row_base = n.to(tl.int64) * b * K * C + k * C
    acc = tl.zeros((BLOCK_I, BLOCK_J), dtype=m_ptr.dtype.element_ty)
    for start in range(0, b, BLOCK_J):
        j = start + tl.arange(0, BLOCK_J)
        acc += _kernel_tile(m_ptr, row_base, i, j, valid_i, j < b, K * C, C, BLOCK_I, BLOCK_J)
    o = tl.sum(acc, axis=1)
    if SELF_S >= 0:  # exp(-s) in the tensor's precision
        o += tl.exp(tl.full((BLOCK_I,), -SELF_S, dtype=o.dtype))
    tl.store(o_ptr + (n.to(tl.int64) * b + i) * K + k, o, mask=valid_i)


@triton.jit
def _signed(m_ptr, row_base, i, j, valid_i, valid_j, weight, STRIDE: tl.constexpr, c: tl.constexpr):
    """weight sign(M[i, c] - M[j, c]) (BLOCK_I, BLOCK_J)."""
    a_i = tl.load(m_ptr + row_base + i * STRIDE + c, mask=valid_i, other=0.0)
    a_j = tl.load(m_ptr + row_base + j * STRIDE + c, mask=valid_j, other=0.0)
    diff = a_i[:, None] - a_j[None, :]
    return tl.where(diff > 0, weight, tl.where(diff < 0, -weight, 0.0))


@triton.jit
def _store_column(dm_ptr, row_base, i, valid_i, acc, STRIDE: tl.constexpr, c: tl.constexpr):
    """dL/dM[i, c] = -(the accumulated tiles summed over j)."""
    tl.store(dm_ptr + row_base + i * STRIDE + c, -tl.sum(acc, axis=1), mask=valid_i)


@triton.jit
def _backward_kernel(m_ptr, g_ptr, dm_ptr, b, K: tl.constexpr, C: tl.constexpr, BLOCK_I: tl.constexpr,
                     BLOCK_J: tl.constexpr):
    """dL/dM[n, i, k, :] = -sum_{j != i} (g_i + g_j) E[i, j] sign(M_i - M_j) for BLOCK_I rows i of one
    (n, k), C <= MAX_C: per tile E first, then for each column c the tile's signed weights added
    element-wise into that column's (BLOCK_I, BLOCK_J) accumulator; one sum over j per column at the
    end. (One accumulator per column, written out: Triton's loops carry named tensors, not lists.)"""
    nk = tl.program_id(1)
    n, k = nk // K, nk % K
    i = tl.program_id(0) * BLOCK_I + tl.arange(0, BLOCK_I)
    valid_i = i < b
    row_base = n.to(tl.int64) * b * K * C + k * C
    g_base = n.to(tl.int64) * b * K + k
    g_i = tl.load(g_ptr + g_base + i * K, mask=valid_i, other=0.0)
    acc0 = tl.zeros((BLOCK_I, BLOCK_J), dtype=m_ptr.dtype.element_ty)
    acc1 = tl.zeros((BLOCK_I, BLOCK_J), dtype=m_ptr.dtype.element_ty)
    acc2 = tl.zeros((BLOCK_I, BLOCK_J), dtype=m_ptr.dtype.element_ty)
    acc3 = tl.zeros((BLOCK_I, BLOCK_J), dtype=m_ptr.dtype.element_ty)
    for start in range(0, b, BLOCK_J):
        j = start + tl.arange(0, BLOCK_J)
        valid_j = j < b
        g_j = tl.load(g_ptr + g_base + j * K, mask=valid_j, other=0.0)
        kernel = _kernel_tile(m_ptr, row_base, i, j, valid_i, valid_j, K * C, C, BLOCK_I, BLOCK_J)
        weight = (g_i[:, None] + g_j[None, :]) * kernel
        acc0 += _signed(m_ptr, row_base, i, j, valid_i, valid_j, weight, K * C, 0)
        if C > 1:
            acc1 += _signed(m_ptr, row_base, i, j, valid_i, valid_j, weight, K * C, 1)
        if C > 2:
            acc2 += _signed(m_ptr, row_base, i, j, valid_i, valid_j, weight, K * C, 2)
        if C > 3:
            acc3 += _signed(m_ptr, row_base, i, j, valid_i, valid_j, weight, K * C, 3)
    _store_column(dm_ptr, row_base, i, valid_i, acc0, K * C, 0)
    if C > 1:
        _store_column(dm_ptr, row_base, i, valid_i, acc1, K * C, 1)
    if C > 2:
        _store_column(dm_ptr, row_base, i, valid_i, acc2, K * C, 2)
    if C > 3:
        _store_column(dm_ptr, row_base, i, valid_i, acc3, K * C, 3)


def block_sizes(batch: int) -> tuple[int, int]:
    """(BLOCK_I, BLOCK_J) for B rows: powers of two, at most 64, no larger than B needs."""
    width = triton.next_power_of_2(max(batch, 1))
    return min(MAX_BLOCK_I, max(width, 2)), min(MAX_BLOCK_J, max(width, 2))


def _launch(kernel, m, *args, num_warps: int, **constants):
    n, b, k, c = m.shape
    block_i, block_j = block_sizes(b)
    grid = (triton.cdiv(b, block_i), n * k)
    kernel[grid](m, *args, K=k, C=c, BLOCK_I=block_i, BLOCK_J=block_j, num_warps=num_warps, **constants)


SELF_S = {"exp-1": 1.0, "exp0": 0.0, "none": -1.0}
"""The forward kernel's SELF_S per self-term mode (-1: none)."""


def triton_sums(m, self_term: str):
    """o (..., B, K) from M (..., B, K, C): the two kernels above, differentiable once."""
    if not supported(m):
        raise ValueError(f"the Triton kernels take float32 or float64 M with C <= {MAX_C}; got {m.dtype} "
                         f"of shape {tuple(m.shape)}")
    lead, (b, k, c) = m.shape[:-3], m.shape[-3:]
    o = _TritonSums.apply(m.reshape(-1, b, k, c).contiguous(), SELF_S[self_term])
    return o.reshape(*lead, b, k)


class _TritonSums(torch.autograd.Function):
    """One launch of ``_forward_kernel``; the backward one of ``_backward_kernel``."""

    @staticmethod
    def forward(ctx, m, self_s: float):
        ctx.save_for_backward(m)
        n, b, k, _ = m.shape
        o = torch.empty((n, b, k), dtype=m.dtype, device=m.device)
        if o.numel():
            _launch(_forward_kernel, m, o, b, num_warps=FORWARD_WARPS, SELF_S=self_s)
        return o

    @staticmethod
    def backward(ctx, grad):
        (m,) = ctx.saved_tensors
        dm = torch.empty_like(m)
        if dm.numel():
            _launch(_backward_kernel, m, grad.contiguous(), dm, m.shape[1], num_warps=BACKWARD_WARPS)
        return dm, None


def supported(m) -> bool:
    """Whether these kernels can take M: float32 or float64, C at most MAX_C, fewer than 2^31 elements."""
    return m.dtype in (torch.float32, torch.float64) and m.shape[-1] <= MAX_C and math.prod(m.shape) < 2 ** 31
