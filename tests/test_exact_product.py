"""The exact product (``impls/numpy_exact_product.py``, docs/images.md#products): the image track's float32
matrix products, whose bits no library chooses.

Checked here: the NumPy reference, each twin (PyTorch's CPU path and the path it takes on CUDA, run on
the CPU; TensorFlow's, eager and compiled by XLA) and their gradients give the same bits; the bits do
not depend on the order of the K terms (where a plain float32 product's do), on the stack, or on other
rows and columns; the error bound; non-finite inputs; and the image twins' float32 layers agreeing
bit for bit across the frameworks.
"""
from __future__ import annotations

import importlib

import numpy as np
import pytest

from ganrepro.impls import get_image_backend
from ganrepro.impls import numpy_exact_product as ref


def draw(shape, seed, spread=0):
    """Normal values times 2^U, U uniform in [-spread, spread] (a wide dynamic range within rows and columns)."""
    rng = np.random.default_rng([seed, *shape])
    x = rng.standard_normal(shape) * np.exp2(rng.integers(-spread, spread + 1, shape))
    return x.astype(np.float32)


CASES = [((2, 5, 3, 4), 0), ((3, 64, 128, 64), 0), ((2, 40, 1000, 7), 30), ((2, 50, 2, 9), 60), ((1, 1, 1, 1), 0),
         ((2, 33, 256, 20), 4)]
IDS = [f"S{s}-M{m}-K{k}-N{n}-spread{w}" for (s, m, k, n), w in CASES]


def operands(shape, spread, seed=0):
    s, m, k, n = shape
    return draw((s, m, k), seed, spread), draw((s, k, n), seed + 1, spread)


def twin_product(framework: str):
    """The framework's ``<framework>_exact_product.product`` on NumPy arrays, through the image twin's ``vjp``
    (TensorFlow: compiled by XLA, as in training): (y, [dA, dB]) for a cotangent."""
    twin = get_image_backend(framework)
    module = importlib.import_module(f"ganrepro.impls.{framework}_exact_product")
    return lambda a, b, cot: twin.vjp(module.product, [a, b], cot)


# ---- the formula --------------------------------------------------------------------------------------
def test_slice_bits_is_the_widest_grid_whose_sums_are_exact_in_float64():
    for k in (1, 2, 3, 4, 5, 16, 17, 255, 256, 257, 784, 1024, 1025, 1 << 20):
        t = ref.slice_bits(k)
        assert k * 4 ** t <= 2 ** 53 < (1 << (k - 1).bit_length()) * 4 ** (t + 1), k
    assert [ref.slice_bits(k) for k in (2, 16, 256, 1024)] == [26, 24, 22, 21]
    with pytest.raises(ValueError, match="at least 1, got 0"):
        ref.slice_bits(0)


@pytest.mark.parametrize(("shape", "spread"), CASES, ids=IDS)
def test_the_reference_is_within_its_bound_of_the_exact_product(shape, spread, agreement):
    """|y - AB| <= 2.01 K 2^-t max|A_i.| max|B_.j| (each input off by at most 2^-t of its row's or column's
    largest) + 2^-24 |AB| (the one rounding to float32), AB in float64 (exact here: products of float32 are
    exact in float64 and the sums' error is far below the bound)."""
    a, b = operands(shape, spread)
    exact = a.astype(np.float64) @ b.astype(np.float64)
    y = ref.product(a, b)
    k, t = shape[2], ref.slice_bits(shape[2])
    scale = np.max(np.abs(a), -1, keepdims=True).astype(np.float64) * np.max(np.abs(b), -2, keepdims=True)
    bound = 2.01 * k * 2.0 ** -t * scale + 2.0 ** -24 * np.abs(exact)
    agreement("exact product vs A B in float64, in units of its bound", float(np.max(np.abs(y - exact) / bound)), 1.0)


@pytest.mark.parametrize(("shape", "spread"), CASES, ids=IDS)
def test_the_bits_do_not_depend_on_the_order_of_k_nor_on_the_stack(shape, spread):
    a, b = operands(shape, spread)
    y = ref.product(a, b)
    for order in (np.arange(shape[2])[::-1], np.random.default_rng(1).permutation(shape[2])):
        assert ref.product(a[..., order], b[..., order, :]).tobytes() == y.tobytes()
    for s in range(shape[0]):  # one matrix alone, and one row or column alone
        assert ref.product(a[s:s + 1], b[s:s + 1]).tobytes() == y[s:s + 1].tobytes()
    assert ref.product(a[:, :1], b).tobytes() == y[:, :1].tobytes()
    assert ref.product(a, b[..., -1:]).tobytes() == y[..., -1:].tobytes()


@pytest.mark.parametrize(("shape", "spread"), CASES, ids=IDS)
def test_the_float64_sums_are_the_integer_sums(shape, spread):
    """The reference sums the grid's integers in float64 (NumPy's BLAS); int64 arithmetic, exact by
    construction, gives the same sums, and so the same bits."""
    a, b = operands(shape, spread)
    t = ref.slice_bits(shape[2])
    (qa, row), (qb, col) = ref.grid(a, -1, t), ref.grid(b, -2, t)
    integer_sums = qa.astype(np.int64) @ qb.astype(np.int64)
    assert np.array_equal(qa @ qb, integer_sums)
    assert ref.scale_back(integer_sums, row, col, t).tobytes() == ref.product(a, b).tobytes()
    assert np.max(np.abs(qa)) <= 2 ** t and np.max(np.abs(qb)) <= 2 ** t


def test_a_plain_float32_product_does_depend_on_the_order_of_k():
    """What the exact product removes, visible here: NumPy's float32 product of K = 1000 terms, reversed."""
    a, b = operands((2, 40, 1000, 7), 30)
    reversed_k = np.arange(1000)[::-1]
    assert (a[..., reversed_k] @ b[..., reversed_k, :]).tobytes() != (a @ b).tobytes()


def test_non_finite_values_give_nan_in_their_row_and_column_only():
    a, b = operands((2, 6, 5, 4), 0)
    a[0, 1, 2], a[1, 3, 0], b[0, 4, 2], b[1, 0, 3] = np.nan, np.inf, -np.inf, np.nan
    a[0, 4, 0] = 3e38  # huge but finite: its row is finite
    y = ref.product(a, b)
    nan = np.zeros(y.shape, bool)
    nan[0, 1, :], nan[1, 3, :], nan[0, :, 2], nan[1, :, 3] = True, True, True, True
    assert np.array_equal(np.isnan(y), nan)
    clean_a, clean_b = np.where(np.isfinite(a), a, 0), np.where(np.isfinite(b), b, 0)
    assert np.array_equal(y[~nan], ref.product(clean_a, clean_b)[~nan])


def test_float64_operands_take_the_plain_product():
    a, b = (x.astype(np.float64) for x in operands((2, 5, 3, 4), 0))
    assert ref.product(a, b).tobytes() == (a @ b).tobytes()


# ---- the twins ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("shape", "spread"), CASES, ids=IDS)
def test_each_twin_and_its_gradients_give_the_reference_s_bits(framework, shape, spread):
    """y = A B, dA = dY B^T and dB = A^T dY, each the reference's exact product, bit for bit (TensorFlow's
    XLA flushes subnormal numbers to zero; none is drawn here)."""
    a, b = operands(shape, spread)
    cot = draw((shape[0], shape[1], shape[3]), 7, spread)
    y, (da, db) = twin_product(framework)(a, b, cot)
    assert y.tobytes() == ref.product(a, b).tobytes()
    assert da.tobytes() == ref.product(cot, np.swapaxes(b, -1, -2)).tobytes()
    assert db.tobytes() == ref.product(np.swapaxes(a, -1, -2), cot).tobytes()


def test_the_twins_agree_on_non_finite_values(framework):
    a, b = operands((2, 6, 5, 4), 0)
    a[0, 1, 2], b[1, 0, 3] = np.inf, np.nan
    y, _ = twin_product(framework)(a, b, np.ones((2, 6, 4), np.float32))
    assert y.tobytes() == ref.product(a, b).tobytes()


@pytest.mark.parametrize("framework", ["torch"], indirect=True)
@pytest.mark.parametrize(("shape", "spread"), CASES[:4], ids=IDS[:4])
def test_pytorch_s_cuda_path_gives_the_cpu_path_s_bits(framework, shape, spread):
    """``_exact_on_device`` (PyTorch's operations, float64 sums: what runs on CUDA) run on the CPU."""
    import torch

    from ganrepro.impls import torch_exact_product

    a, b = operands(shape, spread)
    a[0, 0, 0] = np.nan
    t = ref.slice_bits(shape[2])
    on_device = torch_exact_product._exact_on_device(torch.from_numpy(a), torch.from_numpy(b), t).numpy()
    assert on_device.tobytes() == ref.product(a, b).tobytes()


@pytest.mark.parametrize("layer", ["dense", "conv", "conv_transpose"])
def test_the_image_twins_float32_layers_agree_bit_for_bit(twins, layer):
    """PyTorch's convolutions take F.unfold's patches (entries in the order c, u, v) and F.fold's sums, where
    TensorFlow's take (u, v, c) and four shifted blocks: with the exact product the outputs are the same bits."""
    torch_image, tf_image = get_image_backend("torch"), get_image_backend("tf")
    shapes = {"dense": ((3, 64, 128), (3, 128, 64)), "conv": ((3, 8, 8, 8, 16), (3, 4, 4, 16, 32)),
              "conv_transpose": ((3, 8, 4, 4, 32), (3, 4, 4, 32, 16))}[layer]
    x, w = draw(shapes[0], 3), draw(shapes[1], 4)
    bias = draw((3, shapes[1][-1]), 5)
    cot = np.ones((1,), np.float32)

    def run(twin):
        y, _ = twin.vjp(lambda x_, w_, b_: getattr(twin, layer)(x_, w_, b_), [x, w, bias], cot)
        return y

    assert run(torch_image).tobytes() == run(tf_image).tobytes()


@pytest.mark.parametrize("framework", ["torch"], indirect=True)
def test_the_pytorch_twin_keeps_numpy_s_blas_on_one_thread(framework):
    """Its CPU products are NumPy's (float64 sums by OpenBLAS): one thread per process, as PyTorch's own, so that
    a sweep's workers do not compete for the cores (``torch_twin.configure``)."""
    import threadpoolctl

    from ganrepro.impls import torch_twin

    torch_twin.configure()
    blas = [pool["num_threads"] for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    assert blas and set(blas) == {1}
