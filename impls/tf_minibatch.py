"""Minibatch discrimination's pairwise kernel sums in TensorFlow: one layer, two formulations.

Diff this file against ``torch_minibatch.py``. Given M (..., B, K, C) (the projection of D's
features), every formulation computes

    o[..., i, k] = sum_j exp(-(d_k(i, j) + s [i == j])),   d_k(i, j) = sum_c |M[i,k,c] - M[j,k,c]|,

s = 1 ("exp-1"), 0 ("exp0") or +inf ("none": the diagonal left out). d_k(i, i) = 0 exactly, so
the diagonal term is exactly exp(-s) and the off-diagonal sum is what costs B^2.

Formulations:
- ``reference``: the published broadcast, a (..., B, K, C, B) tensor of differences summed over
  C; autograd backward. Memory and time grow as B^2 K C; kept as the baseline.
- ``production``: what training uses. Up to ``TILE`` rows it is the per-C loop TF has always
  trained with (a (..., B, B, K) tensor of at most 64 x 64 x K), compiled by XLA as one
  computation: inside the XLA-compiled training loop that is the computation it always was
  (training bits unchanged); an eager call (D's decision boundary, the benchmarks) is one
  dispatch instead of ~20 eager ops. (PyTorch eager has no such fusion, so its twin takes a
  one-broadcast path up to 16 rows instead; XLA fuses either form, and the twins' numbers agree
  within rounding, not bitwise.) Above, an XLA-compiled loop over tiles of ``ROWS`` rows i
  against all B columns j, so that no more than a (N, K, ROWS, B) block exists at a time:
    forward   o[i] = exp(-s) + sum_{j != i} E[i, j],
    backward  dL/dM[i,k,c] = -sum_j (g[i,k] + g[j,k]) E[i,j,k] sign(M[i,k,c] - M[j,k,c])
  (hand-written with ``tf.custom_gradient``; it uses E's symmetry: one reduction over j instead
  of two). E[i,j,k] = exp(-d_k(i, j)) for j != i, evaluated
  without an exp per pair: with r the midrange of M[:, k, c] over the batch, u = exp(M - r),
  v = exp(r - M), exp(-|x_i - x_j|) = min(u_i v_j, u_j v_i), so E = prod_c min(u_ic v_jc, u_jc v_ic).
  That is exact algebra; it needs |M - r| <= LOG_RANGE (products stay finite), checked per call
  (``tf.cond``): a wider spread takes the same loops with one exp per pair.
"""
from __future__ import annotations

import math

from ganrepro.impls import import_order  # noqa: F401  (Triton's LLVM before TensorFlow's: impls/import_order.py)

# isort: split
import numpy as np
import tensorflow as tf

FORMULATIONS = ("reference", "production")
TILE = 64
"""The production formulation uses the per-C loop up to TILE rows, the tiled loops above."""
ROWS = 32
"""Rows i per step of the tiled loops (a block of N x K x ROWS x B)."""
SELF_VALUE = {"exp-1": math.exp(-1.0), "exp0": 1.0, "none": 0.0}


def log_range(dtype) -> float:
    """Largest |M - r| for which u_i v_j = exp(2 |M - r|) at most stays finite: log(max) / 2 - 1."""
    return 0.5 * math.log(float(np.finfo(dtype.as_numpy_dtype).max)) - 1.0


def kernel_sums(m, self_term: str, formulation: str = "production"):
    """o (..., B, K) from M (..., B, K, C) in the named formulation (see the module docstring)."""
    if formulation == "reference":
        return reference_sums(m, self_term)
    if formulation == "production":
        return _compiled_loop_sums(m, self_term) if m.shape[-3] <= TILE else tiled_sums(m, self_term)
    raise ValueError(f"unknown minibatch formulation {formulation!r}; allowed: {', '.join(FORMULATIONS)}")


def reference_sums(m, self_term: str):
    """The broadcast of the reference: |M[i,k,c] - M[j,k,c]| as one (..., B_i, K, C, B_j) tensor."""
    rank = m.shape.rank
    mt = tf.transpose(m, [*range(rank - 3), rank - 2, rank - 1, rank - 3])  # (..., K, C, B_j)
    dist = tf.reduce_sum(tf.abs(tf.expand_dims(m, -1) - tf.expand_dims(mt, -4)), -2)  # (..., B_i, K, B_j)
    eye = tf.expand_dims(tf.eye(m.shape[-3], dtype=m.dtype), -2)  # (B_i, 1, B_j)
    kernel = _pair_kernel(dist, eye, self_term)
    return tf.reduce_sum(kernel, -1)


def loop_sums(m, self_term: str):
    """A loop over the C dims accumulating a (..., B_i, B_j, K) tensor: the twins' training code."""
    cols = tf.unstack(m, axis=-1)  # C tensors (S, B, K)
    dist = tf.abs(tf.expand_dims(cols[0], -2) - tf.expand_dims(cols[0], -3))  # (S, B_i, B_j, K), summed over c
    for col in cols[1:]:  # in order; no (S, B, B, K, C) tensor is materialised
        dist = dist + tf.abs(tf.expand_dims(col, -2) - tf.expand_dims(col, -3))
    eye = tf.expand_dims(tf.eye(m.shape[-3], dtype=m.dtype), -1)  # (B_i, B_j, 1)
    kernel = _pair_kernel(dist, eye, self_term)
    # The sum over j as a chain of adds, j = 0, 1, ...: XLA's reduce picks its loop order by the
    # tensor's size (from a stack of 128 seeds on, a seed's sum rounded differently than alone);
    # the chain is that order for every stack size (the bits of stacks up to 64 are unchanged).
    terms = tf.unstack(kernel, axis=-2)
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def _pair_kernel(dist, eye, self_term: str):
    """exp(-(d + s [i == j])): s = 1 adds the identity, s = 0 nothing, s = inf zeroes the diagonal."""
    if self_term == "exp-1":
        return tf.exp(-(dist + eye))
    if self_term == "exp0":
        return tf.exp(-dist)
    return tf.exp(-dist) * (1 - eye)


_compiled_loop_sums = tf.function(loop_sums, jit_compile=True)
"""The per-C loop as one XLA computation (forward and backward): in eager calls one dispatch
instead of ~20 ops; inside the XLA-compiled training loop it is inlined, the same HLO as before."""


def tiled_sums(m, self_term: str):
    """The tiled loops on a = M as (N, K, C, B) rows (N = the flattened leading axes)."""
    b, k, c = m.shape[-3:]
    lead = tf.shape(m)[:-3]
    a = tf.transpose(tf.reshape(m, [-1, b, k, c]), [0, 2, 3, 1])
    self_value = SELF_VALUE[self_term]

    @tf.custom_gradient
    def sums(a):
        """o = exp(-s) + sum_{j != i} E[i, j]; backward -sum_j (g_i + g_j) E[i, j] sign(a_i - a_j)."""
        rows = tf.stop_gradient(a)  # the compiled loops are not differentiated: the backward is grad's
        return _forward(rows) + self_value, lambda g: _backward(rows, g)

    o = sums(a)  # (N, K, B)
    return tf.reshape(tf.transpose(o, [0, 2, 1]), tf.concat([lead, [b, k]], 0))


# ---- the tiled loops, compiled by XLA; a (N, K, C, B), rows i, columns j -------------------------
def _factors(a):
    """(u, v) = (exp(a - r), exp(r - a)), r the midrange over B; and whether |a - r| fits."""
    centre = 0.5 * (tf.reduce_max(a, -1, keepdims=True) + tf.reduce_min(a, -1, keepdims=True))
    fits = tf.reduce_max(tf.abs(a - centre)) <= log_range(a.dtype)
    return tf.exp(a - centre), tf.exp(centre - a), fits


def _row_tile(x, t):
    """Rows t*ROWS .. (t+1)*ROWS - 1 of x (..., B) padded to a whole number of tiles: (..., ROWS)."""
    b = x.shape[-1]
    n = -(-b // ROWS)
    padded = tf.pad(x, [[0, 0]] * (x.shape.rank - 1) + [[0, n * ROWS - b]])
    tiles = tf.reshape(padded, tf.concat([tf.shape(x)[:-1], [n, ROWS]], 0))
    return tf.gather(tiles, t, axis=x.shape.rank - 1)


def _kernel(t, a, u, v, products: bool):
    """E (N, K, ROWS, B) for the rows of tile t, zero on the diagonal (and for padding rows)."""
    rows_a = _row_tile(a, t)
    if products:
        rows_u, rows_v = _row_tile(u, t), _row_tile(v, t)
        kernel = None
        for c in range(a.shape[2]):
            factor = tf.minimum(rows_u[:, :, c, :, None] * v[:, :, c, None, :],
                                u[:, :, c, None, :] * rows_v[:, :, c, :, None])
            kernel = factor if kernel is None else kernel * factor
    else:
        dist = tf.reduce_sum(tf.abs(rows_a[:, :, :, :, None] - a[:, :, :, None, :]), 2)
        kernel = tf.exp(-dist)
    rows = tf.range(ROWS) + t * ROWS
    off = tf.not_equal(rows[:, None], tf.range(a.shape[-1])[None, :])
    return tf.where(off, kernel, tf.zeros([], a.dtype))


def _stack_tiles(pieces, b):
    """(n, ..., ROWS) tile results -> (..., B)."""
    out = tf.transpose(pieces, [*range(1, pieces.shape.rank - 1), 0, pieces.shape.rank - 1])
    out = tf.reshape(out, tf.concat([tf.shape(out)[:-2], [-1]], 0))
    return out[..., :b]


def _loop(body, steps, dtype):
    _, acc = tf.while_loop(lambda t, _: t < steps, lambda t, acc: (t + 1, acc.write(t, body(t))),
                           (tf.constant(0), tf.TensorArray(dtype, steps)))
    return acc.stack()


@tf.function(jit_compile=True)
def _forward(a):
    """sum_{j != i} E[i, j]: (N, K, B)."""
    b = a.shape[-1]
    u, v, fits = _factors(a)

    def tiles(products):
        return lambda: _stack_tiles(
            _loop(lambda t: tf.reduce_sum(_kernel(t, a, u, v, products), -1), -(-b // ROWS), a.dtype), b)

    return tf.cond(fits, tiles(True), tiles(False))


@tf.function(jit_compile=True)
def _backward(a, g):
    """-sum_j (g_i + g_j) E[i, j] sign(a_ic - a_jc): (N, K, C, B); one loop step per tile."""
    b = a.shape[-1]
    u, v, fits = _factors(a)

    def step(t, products):
        weights = _kernel(t, a, u, v, products) * (_row_tile(g, t)[:, :, :, None] + g[:, :, None, :])
        rows = _row_tile(a, t)
        return -tf.stack([tf.reduce_sum(weights * tf.sign(rows[:, :, c, :, None] - a[:, :, c, None, :]), -1)
                          for c in range(a.shape[2])], 2)  # (N, K, C, ROWS)

    def tiles(products):
        return lambda: _stack_tiles(_loop(lambda t: step(t, products), -(-b // ROWS), a.dtype), b)

    return tf.cond(fits, tiles(True), tiles(False))
