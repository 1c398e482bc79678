"""Helpers shared by several test modules (test modules never import each other).

Importable as ``helpers``: pytest puts this folder on ``sys.path`` when it loads ``tests/conftest.py``
(the default "prepend" import mode; the folder has no ``__init__.py``), in every xdist worker too.
"""
from __future__ import annotations

import numpy as np

# ---- the agreement ladder's cells (rungs (a) and (b)) -------------------------------------------
CELLS = {
    "2016-vanilla": dict(protocol="2016", minibatch=False),
    "2016-mbd-exp-1": dict(protocol="2016", minibatch=True),
    "2017-vanilla": dict(protocol="2017", minibatch=False),
    "2017-mbd-exp0": dict(protocol="2017", minibatch=True),
    "2017-mbd-exp-1": dict(protocol="2017", minibatch=True, mbd_self_term="exp-1"),
    "2017-mbd-none": dict(protocol="2017", minibatch=True, mbd_self_term="none"),
    # the technique switches (docs/techniques.md); each named variant's loss terms appear in one cell at least
    "2017-saturating": dict(protocol="2017", minibatch=False, g_loss="saturating"),
    "2016-saturating": dict(protocol="2016", minibatch=False, g_loss="saturating"),
    "2017-fm-paired_l2": dict(protocol="2017", minibatch=False, g_loss="none", feature_matching="paired_l2"),
    "2017-fm-paired_sq": dict(protocol="2017", minibatch=False, g_loss="none", feature_matching="paired_sq"),
    "2017-fm-mean_sq": dict(protocol="2017", minibatch=False, g_loss="none", feature_matching="mean_sq"),
    "2017-mbd-ns+fm-paired_l2x0.5": dict(protocol="2017", minibatch=True, feature_matching="paired_l2", fm_weight=0.5),
    "2017-label-smoothing": dict(protocol="2017", minibatch=False, label_smoothing=0.9),
    "2016-mbd-label-smoothing": dict(protocol="2016", minibatch=True, label_smoothing=0.8),
}
"""name: make_config arguments (``protocol`` and the switches) of each cell the ladder checks."""

# ---- rung (b): TensorFlow vs PyTorch on the same weights and inputs -----------------------------
TWIN_BOUNDS = {"float64": 1e-13, "float32": 2e-6}
"""Bounds relative to each quantity's scale (its largest magnitude over the stack; for gradients,
the largest gradient entry of that player). float64: a few ulps of accumulated rounding;
float32: eps_32 = 1.2e-7 times the depth of the computation (~10 layers forward and back)."""


def player_scale(out: dict, prefix: str) -> float:
    """The largest magnitude among the entries of ``out`` whose key starts with ``prefix``."""
    return max(np.max(np.abs(v)) for k, v in out.items() if k.startswith(prefix))


# ---- rungs (c) and (d): whole runs -------------------------------------------------------------
def curve_difference(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Per (step, seed): max over curves of |a - b| / scale, scale = max over steps of |b| per curve
    and seed (floored at 1e-12). Equal non-finite values count as agreement; any other
    non-finite difference as infinite disagreement."""
    with np.errstate(invalid="ignore", over="ignore"):
        finite_b = np.where(np.isfinite(b), np.abs(b), 0.0)
        scale = np.maximum(finite_b.max(axis=0, keepdims=True), 1e-12)
        diff = np.abs(a - b) / scale
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    diff = np.where(same, 0.0, np.where(np.isfinite(diff), diff, np.inf))
    return diff.max(axis=2)


def relative_difference(a: np.ndarray, b: np.ndarray) -> float:
    """max |a - b| / max |b| over finite entries; equal non-finite entries agree, others are inf."""
    same = (a == b) | (np.isnan(a) & np.isnan(b))
    if not np.all(same | (np.isfinite(a) & np.isfinite(b))):
        return float("inf")
    ok = ~same
    if not ok.any():
        return 0.0
    return float(np.max(np.abs(a[ok] - b[ok])) / max(np.max(np.abs(b[np.isfinite(b)])), 1e-300))


# ---- Triton's interpreter: the CUDA kernels' tests on a CPU ------------------------------------
TRITON_INTERPRETER_MIN = (3, 9)
"""Older interpreters (3.6, PyTorch 2.11's) turn a scalar argument into a 1-element array that
NumPy 2.4 (the project's pin) refuses to convert back to an int; the compiled kernels are unaffected."""


def triton_interpreter_usable() -> bool:
    """Whether triton is installed, in a version whose interpreter the kernels' tests can use."""
    import importlib.util

    if importlib.util.find_spec("triton") is None:
        return False
    import triton

    return tuple(int(part) for part in triton.__version__.split(".")[:2]) >= TRITON_INTERPRETER_MIN


def in_triton_interpreter(module: str, call: str, timeout: float = 600):
    """The JSON value that ``module.call`` (a test module of this folder, and an expression of it, e.g.
    "errors('cpu')") prints in a child process whose Triton runs kernels in its interpreter
    (``TRITON_INTERPRET=1`` must be set before triton is imported, so not in this process)."""
    import json
    import os
    import subprocess
    import sys
    from pathlib import Path

    code = (f"import json, sys; sys.path.insert(0, {str(Path(__file__).parent)!r}); "
            f"import {module} as m; print(json.dumps(m.{call}))")
    done = subprocess.run([sys.executable, "-c", code], env=dict(os.environ, TRITON_INTERPRET="1"),
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])
