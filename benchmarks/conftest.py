"""Benchmarks run on one core: the process is pinned to the first CPU it may use, and both
twins already use one intra-op thread. Run them with ``tox -e bench`` (see the README)."""
from __future__ import annotations

import os

os.environ.setdefault("ATEN_CPU_CAPABILITY", "default")  # as ganrepro.impls.torch_twin sets it

import ganrepro  # noqa: F401  (the instruction-set pin, before anything loads NumPy)


def pytest_configure(config):
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
