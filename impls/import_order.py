"""Triton before TensorFlow: the one import order in which both live in one process.

TensorFlow (its XLA compiler) and Triton each carry a copy of LLVM. When Triton is installed (with
a CUDA build of PyTorch, or the ``interpreter`` extra), PyTorch imports it as soon as the twins turn
on its deterministic mode: ``torch.use_deterministic_algorithms`` loads TorchInductor, which asks
whether Triton is there by importing it. Triton's LLVM, loaded after XLA's, registers the same
command-line options again and aborts the process (``LLVM ERROR: inconsistency in registered
CommandLine options``); loaded before TensorFlow, it does not. So every module of ganrepro that
imports TensorFlow imports this module first (which calls :func:`triton_before_tensorflow`), and a process that trains a
TensorFlow run and then a PyTorch one (a sweep worker, a notebook) keeps going; the PyTorch twin
refuses clearly (:func:`check_torch_after_tensorflow`) where TensorFlow was loaded by someone else
first.

Framework-free: imports Triton only (about 0.1 s), and only where it is installed.
"""
from __future__ import annotations

import importlib.util
import sys


def _triton_installed() -> bool:
    return importlib.util.find_spec("triton") is not None


def triton_before_tensorflow() -> None:
    """Import Triton now if it is installed and neither it nor TensorFlow is loaded yet; else nothing."""
    if "triton" in sys.modules or "tensorflow" in sys.modules or not _triton_installed():
        return
    import triton  # noqa: F401  (its LLVM first: see the module docstring)


def check_torch_after_tensorflow() -> None:
    """RuntimeError (one paragraph: why, and the fix) where setting PyTorch up would abort the process:
    TensorFlow is loaded, Triton is installed and not loaded yet."""
    if "tensorflow" in sys.modules and "triton" not in sys.modules and _triton_installed():
        raise RuntimeError(
            "TensorFlow was imported before Triton, and PyTorch's deterministic mode would now import Triton, "
            "whose copy of LLVM then aborts the process ('LLVM ERROR: inconsistency in registered CommandLine "
            "options'). Import ganrepro's twins before tensorflow (or 'import triton' first), or run the "
            "frameworks in separate processes.")


triton_before_tensorflow()
