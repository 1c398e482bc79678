"""The PyTorch twin of ``numpy_exact_product``: a float32 matrix product whose bits no library chooses.

The formula and why: ``numpy_exact_product`` (docs/images.md#products). Diff ``_exact_on_device``
against ``tf_exact_product._exact``. On the CPU the product is the NumPy reference's own
(``numpy_exact_product.product``), as the CPU square root is NumPy's (``torch_twin._sqrt``): its
elementwise steps give the same bits at any vector width, and there ATen's kernels, pinned to their
scalar versions (``ATEN_CPU_CAPABILITY=default``), are four times slower, and its float64 sums are
OpenBLAS's, as fast as MKL's float32 product under the pin (MKL's float64 one, ``MKL_CBWR=COMPATIBLE``,
is three times slower; ATen's int64 one up to twice). On CUDA the same steps run in PyTorch
(``_exact_on_device``), float64 sums on cuBLAS; the tests run it on the CPU too. The sums are exact,
so both paths, and the TensorFlow twin, give the same bits. The gradient is the exact product as
well: dA = dY B^T, dB = A^T dY.
"""
from __future__ import annotations

import torch

from .numpy_exact_product import FLOAT32_EXPONENT_SHIFT, NON_FINITE_EXPONENT, slice_bits
from .numpy_exact_product import product as _reference_product


def _pow2(exponent):
    """2^exponent as float64 from an int64 tensor (exponent within float64's normal range)."""
    return ((exponent + 1023) << 52).view(torch.float64)


def _biased_exponent(x, dim):
    """The float32 biased exponent field of max |x| along ``dim`` (kept as a length-1 dim): e = field - 126."""
    top = x.abs().amax(dim, keepdim=True)
    return (top.view(torch.int32) >> FLOAT32_EXPONENT_SHIFT).to(torch.int64)


def _grid(x, field, t):
    """round(x 2^(t - e)) as float64 integers, e = field - 126; zero where the maximum is not finite."""
    scaled = torch.round(x.to(torch.float64) * _pow2(t - (field - 126)))
    return torch.where(field < NON_FINITE_EXPONENT, scaled, 0.0)


def _exact_on_device(a, b, t):
    """The exact product of float32 a (..., M, K) and b (..., K, N) in PyTorch's operations, float64 sums."""
    row, col = _biased_exponent(a, -1), _biased_exponent(b, -2)
    exact = torch.matmul(_grid(a, row, t), _grid(b, col, t))  # integers: any order
    y = (exact * _pow2(row - 126 - t) * _pow2(col - 126 - t)).to(torch.float32)
    return torch.where((row < NON_FINITE_EXPONENT) & (col < NON_FINITE_EXPONENT), y, float("nan"))


def _exact(a, b):
    """The exact product of float32 a (..., M, K) and b (..., K, N) (``numpy_exact_product.product``)."""
    if a.device.type == "cpu":
        return torch.from_numpy(_reference_product(a.detach().numpy(), b.detach().numpy()))
    return _exact_on_device(a, b, slice_bits(a.shape[-1]))


class _ExactProduct(torch.autograd.Function):
    """y = exact(A, B); dA = exact(dY, B^T), dB = exact(A^T, dY)."""

    @staticmethod
    def forward(ctx, a, b):
        ctx.save_for_backward(a, b)
        return _exact(a, b)

    @staticmethod
    def backward(ctx, dy):
        a, b = ctx.saved_tensors
        da = _exact(dy, b.transpose(-1, -2)) if ctx.needs_input_grad[0] else None
        db = _exact(a.transpose(-1, -2), dy) if ctx.needs_input_grad[1] else None
        return da, db


def product(a, b):
    """A B for a (..., M, K) and b (..., K, N) of the same leading shape: the exact product for float32,
    ``torch.matmul`` for float64."""
    if a.dtype == torch.float64:
        return torch.matmul(a, b)
    return _ExactProduct.apply(a, b)
