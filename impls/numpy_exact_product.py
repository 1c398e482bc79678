"""The exact product: a float32 matrix product whose bits no library chooses (docs/images.md#products).

A float32 matrix product's last bits depend on the order in which the library adds its K terms,
and BLAS libraries pick that order by CPU model (block sizes from the cache sizes, kernels by
vendor). The image track's products are therefore computed so that every order gives the same
bits: each operand is rounded onto an integer grid of its own, the integers are multiplied and
summed exactly, and the exact sum is rounded once to float32.

For A (..., M, K) and B (..., K, N), both float32, with t = ``slice_bits(K)``:

- e_i: the exponent with max_k |A_ik| < 2^e_i (from the bits of that float32 maximum: its
  biased exponent field minus 126); f_j the same for the columns of B, max_k |B_kj| < 2^f_j;
- a_ik = round(A_ik 2^(t - e_i)) and b_kj = round(B_kj 2^(t - f_j)), rounded half to even:
  integers with |a|, |b| <= 2^t (A's rows and B's columns as t-bit block floating point);
- P_ij = sum_k a_ik b_kj, an integer with |P| <= K 2^(2t) <= 2^53, so exact in float64 (and in
  int64) whatever the order of the sum, the blocking or the library;
- y_ij = float32(P_ij 2^(e_i - t) 2^(f_j - t)): multiplying by powers of two is exact in float64,
  so the one rounding is the last;
- y_ij = NaN where row i of A or column j of B holds a value that is not finite.

Every input within a factor 2^(t - 24) of its row's (column's) largest is represented exactly;
smaller ones to within 2^-(t+1) of that largest, so the product is within a few units of float32's
rounding of the exact one (t = 22 for K <= 256, 21 for K <= 2048). Float64 operands take the plain
product (the ladder's float64 runs): nothing float64 is committed as bytes.

This module is the NumPy reference of that formula (framework-free; its float64 sums are NumPy's
BLAS, whose order does not matter here); ``torch_exact_product`` and ``tf_exact_product`` are its
twins, and ``tests/test_exact_product.py`` checks that the three give the same bits, in every order
of K, and that the float64 sums are the int64 ones.
"""
from __future__ import annotations

import numpy as np

FLOAT32_EXPONENT_SHIFT = 23
"""A float32's biased exponent field starts at bit 23."""

NON_FINITE_EXPONENT = 255
"""The biased exponent field of inf and NaN."""


def slice_bits(k: int) -> int:
    """t = floor((53 - ceil(log2 K)) / 2): the grid's bits, so that K (2^t)^2 <= 2^53 (exact sums in float64)."""
    if k < 1:
        raise ValueError(f"the inner dimension K must be at least 1, got {k}")
    return (53 - (k - 1).bit_length()) // 2


def _pow2(exponent):
    """2^exponent as float64 from an int64 array (exponent within float64's normal range)."""
    return ((np.asarray(exponent, dtype=np.int64) + 1023) << 52).view(np.float64)


def _biased_exponent(x, axis):
    """The float32 biased exponent field of max |x| along ``axis`` (kept as a length-1 axis): e = field - 126."""
    top = np.max(np.abs(x), axis=axis, keepdims=True).astype(np.float32)
    return (top.view(np.int32) >> FLOAT32_EXPONENT_SHIFT).astype(np.int64)


def grid(x: np.ndarray, axis: int, t: int) -> tuple[np.ndarray, np.ndarray]:
    """(q, field) for float32 x: field = the biased exponent field of max |x| along ``axis`` (kept), e = field - 126,
    and q = round(x 2^(t - e)) (half to even), float64 integers with |q| <= 2^t; q = 0 along a maximum that
    is not finite."""
    field = _biased_exponent(x, axis)
    q = np.multiply(x, _pow2(t - (field - 126)), dtype=np.float64)
    np.rint(q, out=q)
    if not np.all(field < NON_FINITE_EXPONENT):
        q = np.where(field < NON_FINITE_EXPONENT, q, 0.0)
    return q, field


def scale_back(exact: np.ndarray, row: np.ndarray, col: np.ndarray, t: int) -> np.ndarray:
    """y = float32(P 2^(e_i - t) 2^(f_j - t)) from the exact integer sums P (int64 or float64) and the fields of
    ``grid``; NaN where row i's or column j's maximum is not finite."""
    scaled = np.multiply(exact, _pow2(row - 126 - t), dtype=np.float64)
    np.multiply(scaled, _pow2(col - 126 - t), out=scaled)
    with np.errstate(over="ignore"):  # beyond float32's range: inf, as a float32 product gives
        y = scaled.astype(np.float32)
    finite = (row < NON_FINITE_EXPONENT) & (col < NON_FINITE_EXPONENT)
    return y if np.all(finite) else np.where(finite, y, np.float32(np.nan))


def product(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """A B by the formula above for float32 a (..., M, K) and b (..., K, N); float64 operands: a @ b."""
    if a.dtype == np.float64:
        return a @ b
    t = slice_bits(a.shape[-1])
    (qa, row), (qb, col) = grid(a, -1, t), grid(b, -2, t)
    return scale_back(np.matmul(qa, qb), row, col, t)  # sums of integers, each partial sum below 2^53: any order
