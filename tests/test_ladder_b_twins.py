"""Agreement ladder, rung (b): TensorFlow vs PyTorch on the same weights and inputs: forward
outputs, losses, and the gradients of G and D (both dtypes, every cell of the core protocols)."""
from __future__ import annotations

import numpy as np
import pytest

from ganrepro.config import make_config
from ganrepro.impls.interface import FORWARD_KEYS
from ganrepro.streams import training_chunks
from ganrepro.weights import initial_weights

from helpers import CELLS, player_scale
from helpers import TWIN_BOUNDS as BOUNDS  # relative to each quantity's scale; see helpers.py


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("cell", list(CELLS))
def test_forward_and_gradients_agree_across_frameworks(twins, cell, dtype, agreement):
    torch_twin, tf_twin = twins
    kw = dict(CELLS[cell])
    config = make_config(kw.pop("protocol"), dtype=dtype, seeds=(0, 1, 2), **kw)
    w = initial_weights(config)
    chunk = next(training_chunks(config))
    # a trained-looking D is not needed: both D calls see real and generated batches
    args = (config, w["G"], w["D"], chunk.x[0], chunk.z_d[0])
    a, b = torch_twin.forward_and_gradients(*args), tf_twin.forward_and_gradients(*args)
    assert set(a) == set(b) and set(FORWARD_KEYS) <= set(a)
    assert all(a[k].dtype == np.dtype(dtype) for k in a)
    fwd = max(np.max(np.abs(a[k] - b[k])) / max(np.max(np.abs(b[k])), 1e-30) for k in FORWARD_KEYS)
    grads = 0.0
    for prefix in ("grad_d/", "grad_g/", "grad_g_out"):
        scale = player_scale(b, prefix)
        grads = max(grads, max(np.max(np.abs(a[k] - b[k])) / scale for k in b if k.startswith(prefix)))
    agreement(f"forward and losses, TF vs PyTorch ({dtype})", fwd, BOUNDS[dtype])
    agreement(f"gradients of G and D, TF vs PyTorch ({dtype})", grads, BOUNDS[dtype])
