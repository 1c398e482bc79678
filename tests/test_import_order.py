"""Both frameworks in one process (``impls/import_order.py``): where Triton is installed, PyTorch's
deterministic mode imports it, and its LLVM must come before TensorFlow's or the process aborts."""
from __future__ import annotations

import importlib.util
import subprocess
import sys

import pytest

from ganrepro import impls

pytestmark = [
    pytest.mark.skipif(not (impls.available("torch") and impls.available("tf")), reason="needs both frameworks"),
    pytest.mark.skipif(importlib.util.find_spec("triton") is None,
                       reason="Triton is not installed: no second copy of LLVM to clash with TensorFlow's"),
]


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600)


def test_a_tensorflow_run_then_a_pytorch_run_in_one_process():
    """What a sweep worker does when its queue hands it TF, then PyTorch: both train and score."""
    code = """
import ganrepro
from ganrepro.config import make_config
from ganrepro.image.config import ImageConfig
from ganrepro.image.training import train as train_image
from ganrepro.training import train
for framework in ("tf", "torch", "tf"):
    train(make_config("2017", seeds=(0,), num_steps=3), framework)
    train_image(ImageConfig(model="linear", seeds=(0,), num_steps=2, checkpoint_interval=2), framework)
    print(framework, "ok")
"""
    done = _run(code)
    assert done.returncode == 0 and done.stdout.split() == ["tf", "ok", "torch", "ok", "tf", "ok"], done.stderr[-2000:]


def test_pytorch_after_a_foreign_tensorflow_import_is_refused_clearly():
    """TensorFlow imported by someone else first: the PyTorch twin says why and what to do, instead of
    letting Triton's LLVM abort the process."""
    done = _run("import tensorflow, ganrepro\nfrom ganrepro.impls import get_backend\nget_backend('torch')")
    assert done.returncode == 1 and "registered more than once" not in done.stderr, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("RuntimeError: TensorFlow was imported before Triton") and "separate processes" in last
