"""The TensorFlow twin of ``numpy_exact_product``: a float32 matrix product whose bits no library chooses.

The formula and why: ``numpy_exact_product`` (docs/images.md#products). Diff this file against
``torch_exact_product.py``. The integer sums are taken in float64 on every device (XLA's int64 product
on the CPU is a plain loop, 10 to 45 times slower than its float64 one); they are exact, so they are
the PyTorch twin's and the NumPy reference's sums, and the three give the same bits. The gradient is
the exact product too: dA = dY B^T, dB = A^T dY.
"""
from __future__ import annotations

from ganrepro.impls import import_order  # noqa: F401  (Triton's LLVM before TensorFlow's: impls/import_order.py)

# isort: split
import tensorflow as tf

from .numpy_exact_product import FLOAT32_EXPONENT_SHIFT, NON_FINITE_EXPONENT, slice_bits


def _pow2(exponent):
    """2^exponent as float64 from an int64 tensor (exponent within float64's normal range)."""
    return tf.bitcast(tf.bitwise.left_shift(exponent + 1023, tf.constant(52, tf.int64)), tf.float64)


def _biased_exponent(x, axis):
    """The float32 biased exponent field of max |x| along ``axis`` (kept as a length-1 axis): e = field - 126."""
    top = tf.reduce_max(tf.abs(x), axis, keepdims=True)
    return tf.cast(tf.bitwise.right_shift(tf.bitcast(top, tf.int32), FLOAT32_EXPONENT_SHIFT), tf.int64)


def _grid(x, field, t):
    """round(x 2^(t - e)) as float64 integers, e = field - 126; zero where the maximum is not finite."""
    scaled = tf.round(tf.cast(x, tf.float64) * _pow2(t - (field - 126)))
    return tf.where(field < NON_FINITE_EXPONENT, scaled, tf.zeros_like(scaled))


def _exact(a, b):
    """The exact product of float32 a (..., M, K) and b (..., K, N) (``numpy_exact_product.product``)."""
    t = slice_bits(a.shape[-1])
    row, col = _biased_exponent(a, -1), _biased_exponent(b, -2)
    exact = tf.matmul(_grid(a, row, t), _grid(b, col, t))  # integers: any order
    y = tf.cast(exact * _pow2(row - 126 - t) * _pow2(col - 126 - t), tf.float32)
    return tf.where((row < NON_FINITE_EXPONENT) & (col < NON_FINITE_EXPONENT), y, tf.fill(tf.shape(y), float("nan")))


@tf.custom_gradient
def _exact_product(a, b):
    """y = exact(A, B); dA = exact(dY, B^T), dB = exact(A^T, dY)."""
    def grad(dy):
        return _exact(dy, tf.linalg.matrix_transpose(b)), _exact(tf.linalg.matrix_transpose(a), dy)
    return _exact(a, b), grad


def product(a, b):
    """A B for a (..., M, K) and b (..., K, N) of the same leading shape: the exact product for float32,
    ``tf.matmul`` for float64."""
    if a.dtype == tf.float64:
        return tf.matmul(a, b)
    return _exact_product(a, b)
