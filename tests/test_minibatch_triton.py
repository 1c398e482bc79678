"""The minibatch layer's Triton kernels (``impls/torch_minibatch_triton.py``), PyTorch's formulation on
CUDA above B = 16, against the float64 NumPy reference in value and gradient, within the layer's bounds
(``test_minibatch_layer``: 16 eps per term); and a seed's bits the same alone and in a stack.

Without a GPU the kernels run in Triton's interpreter, which needs ``TRITON_INTERPRET=1`` before
triton is imported: those cases run in a child process (``python -c``), which prints its results as
JSON. Where PyTorch sees a CUDA device, the same cases run compiled on the GPU, and the layer's
production formulation there is shown to be these kernels. Without triton installed (a CPU build of
PyTorch does not bring it; tox's test environment installs it) everything here skips; the
interpreter's case needs Triton 3.9 or later (``helpers.TRITON_INTERPRETER_MIN``).
"""
from __future__ import annotations

import importlib.util

import numpy as np
import pytest
from test_minibatch_layer import GRAD_BOUND_EPS, SELF_TERMS, VALUE_BOUND_EPS, gaussian_inputs

from ganrepro import impls
from ganrepro.bench.cases import cuda_available
from ganrepro.impls import numpy_ref

from helpers import in_triton_interpreter, triton_interpreter_usable

pytestmark = pytest.mark.skipif(not (impls.available("torch") and importlib.util.find_spec("triton")),
                                reason="needs PyTorch and triton")

SHAPES = [(1, 17, 5, 3), (3, 40, 5, 3), (2, 100, 2, 1), (1, 65, 4, 4), (130, 4, 3)]
"""B just above the broadcast's 16, below and above one 64-row block (B = 65, 100: partial tiles),
stacked seeds, other K and C (1 to MAX_C = 4), no leading axis."""
DTYPES = ("float32", "float64")
STACK = (5, 33, 5, 3)
"""Seeds stacked to check that seed 2's bits are its bits alone."""


def errors(device: str) -> dict:
    """{case: (value error, gradient error)} in units of eps per term, and {"stack": bitwise?} for
    STACK's seed 2 alone vs stacked, from ``triton_sums`` on ``device``."""
    import torch

    from ganrepro.impls import get_backend

    get_backend("torch")
    from ganrepro.impls.torch_minibatch_triton import triton_sums

    def run(m, g, self_term):
        mt = torch.from_numpy(m).to(device).requires_grad_(True)
        o = triton_sums(mt, self_term)
        (grad,) = torch.autograd.grad(o, mt, torch.from_numpy(g).to(device))
        return o.detach().cpu().numpy(), grad.cpu().numpy()

    out = {}
    for shape in SHAPES:
        for dtype in DTYPES:
            m, g = gaussian_inputs(shape, dtype)
            eps, b = np.finfo(dtype).eps, shape[-3]
            for self_term in SELF_TERMS:
                o, grad = run(m, g, self_term)
                o_ref = numpy_ref.minibatch_kernel_sums(m, self_term)
                grad_ref = numpy_ref.minibatch_kernel_vjp(m, self_term, g)
                assert o.shape == o_ref.shape and o.dtype == m.dtype and grad.shape == m.shape
                value = float(np.max(np.abs(o - o_ref)) / b / eps)
                gradient = float(np.max(np.abs(grad - grad_ref)) / (b * 2 * np.max(np.abs(g))) / eps)
                out["x".join(map(str, shape)) + f" {dtype} {self_term}"] = (value, gradient)
    m, g = gaussian_inputs(STACK, "float32")
    stacked, alone = run(m, g, "exp-1"), run(m[2:3], g[2:3], "exp-1")
    out["stack"] = all(np.array_equal(s[2:3], a) for s, a in zip(stacked, alone, strict=True))
    return out


def _check(results: dict, agreement, where: str) -> None:
    assert results.pop("stack") is True, "a seed's bits differ alone and in a stack"
    assert len(results) == len(SHAPES) * len(DTYPES) * len(SELF_TERMS)
    worst_value = max(v for v, _ in results.values())
    worst_gradient = max(g for _, g in results.values())
    agreement(f"torch triton kernels ({where}): value error per term / eps", worst_value, VALUE_BOUND_EPS)
    agreement(f"torch triton kernels ({where}): gradient error per term / eps", worst_gradient, GRAD_BOUND_EPS)


def test_m_the_kernels_do_not_take_is_refused_by_name():
    import torch

    from ganrepro.impls.torch_minibatch_triton import supported, triton_sums

    wide = torch.zeros(2, 20, 5, 5)
    assert not supported(wide) and not supported(torch.zeros(2, 20, 5, 3, dtype=torch.float16))
    with pytest.raises(ValueError, match=r"C <= 4; got torch.float32 of shape \(2, 20, 5, 5\)"):
        triton_sums(wide, "exp0")


@pytest.mark.skipif(not triton_interpreter_usable(),
                    reason="Triton's interpreter before 3.9 cannot take scalar arguments under NumPy 2.4")
def test_the_triton_kernels_match_the_reference_in_triton_s_interpreter(agreement):
    _check(in_triton_interpreter("test_minibatch_triton", "errors('cpu')"), agreement, "interpreted")


NEEDS_CUDA = pytest.mark.skipif(not cuda_available(), reason="needs a CUDA device")


@NEEDS_CUDA
def test_the_triton_kernels_match_the_reference_on_cuda(agreement):
    _check(errors("cuda"), agreement, "cuda")


@NEEDS_CUDA
def test_on_cuda_the_layer_s_production_formulation_above_16_rows_is_the_triton_kernels():
    import torch

    from ganrepro.impls import get_backend

    get_backend("torch")
    from ganrepro.impls import torch_minibatch
    from ganrepro.impls.torch_minibatch_triton import triton_sums

    m, g = gaussian_inputs((2, 48, 5, 3), "float32")
    results = []
    for fn in (lambda t: torch_minibatch.kernel_sums(t, "exp-1"), lambda t: triton_sums(t, "exp-1")):
        mt = torch.from_numpy(m).cuda().requires_grad_(True)
        o = fn(mt)
        (grad,) = torch.autograd.grad(o, mt, torch.from_numpy(g).cuda())
        results.append((o.detach().cpu().numpy(), grad.cpu().numpy()))
    assert all(np.array_equal(a, b) for a, b in zip(*results, strict=True))
