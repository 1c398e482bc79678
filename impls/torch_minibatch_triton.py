"""The minibatch layer's kernel sums as two Triton kernels: the PyTorch twin's CUDA formulation above
``torch_minibatch.BROADCAST_MAX`` rows (``torch_minibatch.kernel_sums`` picks it on CUDA).

For M (N, B, K, C) (N the flattened leading axes) the two kernels compute, without any (B, B) tensor,

    forward   o[n, i, k]     = exp(-s) + sum_{j != i} E[i, j],
    backward  dL/dM[n,i,k,c] = -sum_{j != i} (g[n,i,k] + g[n,j,k]) E[i, j] sign(M[n,i,k,c] - M[n,j,k,c]),

E[i, j] = exp(-sum_c |M[n,i,k,c] - M[n,j,k,c]|) (the diagonal's derivative is zero: sign(0) = 0;
E's symmetry makes the backward one reduction over j instead of two; ``torch_minibatch``'s fused
kernels state the same formulas). One program handles BLOCK_I rows i of one (n, k) and loops over
the columns j in tiles of BLOCK_J: it holds a (BLOCK_I, BLOCK_J, C_PAD) tile of differences (C
padded to a power of two with zeros, which add |0 - 0| = 0 to d and 0 to the sums) and accumulates
per row. The block sizes depend on B alone, so a seed's bits do not depend on how many seeds are
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
MAX_BLOCK_J = 32


@triton.jit
def _pair_tile(m_ptr, row_base, i, j, c, b, stride_row: tl.constexpr, valid_i, valid_j, valid_c):
    """The tile's differences M[i, c] - M[j, c] (BLOCK_I, BLOCK_J, C_PAD) and E[i, j] off the diagonal."""
    mask_i = valid_i[:, None] & valid_c[None, :]
    mask_j = valid_j[:, None] & valid_c[None, :]
    a_i = tl.load(m_ptr + row_base + i[:, None] * stride_row + c[None, :], mask=mask_i, other=0.0)
    a_j = tl.load(m_ptr + row_base + j[:, None] * stride_row + c[None, :], mask=mask_j, other=0.0)
    diff = a_i[:, None, :] - a_j[None, :, :]
    dist = tl.sum(tl.abs(diff), axis=2)
    off_diagonal = (i[:, None] != j[None, :]) & valid_i[:, None] & valid_j[None, :]
    kernel = tl.where(off_diagonal, tl.exp(-dist), 0.0)
    return diff, kernel


@triton.jit
def _forward_kernel(m_ptr, o_ptr, b, K: tl.constexpr, C: tl.constexpr, C_PAD: tl.constexpr,
                    BLOCK_I: tl.constexpr, BLOCK_J: tl.constexpr, SELF_S: tl.constexpr):
    """o[n, i, k] = exp(-s) + sum_{j != i} E[i, j] for BLOCK_I rows i of one (n, k); s = SELF_S, or
    none (the diagonal left out) when SELF_S < 0."""
    nk = tl.program_id(1)
    n, k = nk // K, nk % K
    i = tl.program_id(0) * BLOCK_I + tl.arange(0, BLOCK_I)
    c = tl.arange(0, C_PAD)
    valid_i, valid_c = i < b, c < C
    row_base = n.to(tl.int64) * b * K * C + k * C
    acc = tl.zeros((BLOCK_I,), dtype=m_ptr.dtype.element_ty)
    for start in range(0, b, BLOCK_J):
        j = start + tl.arange(0, BLOCK_J)
        _, kernel = _pair_tile(m_ptr, row_base, i, j, c, b, K * C, valid_i, j < b, valid_c)
        acc += tl.sum(kernel, axis=1)
    if SELF_S >= 0:  # exp(-s) in the tensor's precision
        acc += tl.exp(tl.full((BLOCK_I,), -SELF_S, dtype=acc.dtype))
    tl.store(o_ptr + (n.to(tl.int64) * b + i) * K + k, acc, mask=valid_i)


@triton.jit
def _backward_kernel(m_ptr, g_ptr, dm_ptr, b, K: tl.constexpr, C: tl.constexpr, C_PAD: tl.constexpr,
                     BLOCK_I: tl.constexpr, BLOCK_J: tl.constexpr):
    """dL/dM[n, i, k, :] = -sum_{j != i} (g_i + g_j) E[i, j] sign(M_i - M_j) for BLOCK_I rows i of one (n, k)."""
    nk = tl.program_id(1)
    n, k = nk // K, nk % K
    i = tl.program_id(0) * BLOCK_I + tl.arange(0, BLOCK_I)
    c = tl.arange(0, C_PAD)
    valid_i, valid_c = i < b, c < C
    row_base = n.to(tl.int64) * b * K * C + k * C
    g_base = n.to(tl.int64) * b * K + k
    g_i = tl.load(g_ptr + g_base + i * K, mask=valid_i, other=0.0)
    acc = tl.zeros((BLOCK_I, C_PAD), dtype=m_ptr.dtype.element_ty)
    for start in range(0, b, BLOCK_J):
        j = start + tl.arange(0, BLOCK_J)
        valid_j = j < b
        diff, kernel = _pair_tile(m_ptr, row_base, i, j, c, b, K * C, valid_i, valid_j, valid_c)
        g_j = tl.load(g_ptr + g_base + j * K, mask=valid_j, other=0.0)
        weight = (g_i[:, None] + g_j[None, :]) * kernel
        sign = tl.where(diff > 0, 1.0, tl.where(diff < 0, -1.0, 0.0)).to(diff.dtype)
        acc += tl.sum(weight[:, :, None] * sign, axis=1)
    mask = valid_i[:, None] & valid_c[None, :]
    tl.store(dm_ptr + row_base + i[:, None] * (K * C) + c[None, :], -acc, mask=mask)


def block_sizes(batch: int) -> tuple[int, int]:
    """(BLOCK_I, BLOCK_J) for B rows: powers of two, at most 64 and 32, no larger than B needs."""
    width = triton.next_power_of_2(max(batch, 1))
    return min(MAX_BLOCK_I, max(width, 2)), min(MAX_BLOCK_J, max(width, 2))


def _launch(kernel, m, *args, **constants):
    n, b, k, c = m.shape
    block_i, block_j = block_sizes(b)
    grid = (triton.cdiv(b, block_i), n * k)
    kernel[grid](m, *args, K=k, C=c, C_PAD=triton.next_power_of_2(c), BLOCK_I=block_i, BLOCK_J=block_j,
                 num_warps=4, **constants)


SELF_S = {"exp-1": 1.0, "exp0": 0.0, "none": -1.0}
"""The forward kernel's SELF_S per self-term mode (-1: none)."""


def triton_sums(m, self_term: str):
    """o (..., B, K) from M (..., B, K, C): the two kernels above, differentiable once."""
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
            _launch(_forward_kernel, m, o, b, SELF_S=self_s)
        return o

    @staticmethod
    def backward(ctx, grad):
        (m,) = ctx.saved_tensors
        dm = torch.empty_like(m)
        if dm.numel():
            _launch(_backward_kernel, m, grad.contiguous(), dm, m.shape[1])
        return dm, None


def supported(m) -> bool:
    """Whether these kernels can take M: a floating tensor (float32 or float64) with C at most 64."""
    return m.dtype in (torch.float32, torch.float64) and m.shape[-1] <= 64 and math.prod(m.shape) < 2 ** 31
