"""Helpers shared by the benchmark modules (benchmark modules never import each other).

Importable as ``bench_helpers``: pytest puts this folder on ``sys.path`` when it loads
``benchmarks/conftest.py`` (the default "prepend" import mode; the folder has no ``__init__.py``).
"""
from __future__ import annotations

import time

import pytest

from ganrepro.impls import FRAMEWORKS, available
from ganrepro.training import train

FRAMEWORK_PARAMS = [pytest.param(f, marks=pytest.mark.skipif(not available(f), reason=f"{f} not installed"))
                    for f in FRAMEWORKS]
"""The frameworks as pytest parameters, each skipped where it is not installed."""


def run_benchmark(benchmark, config, framework, rounds):
    """Time whole runs of ``config`` (after one warm-up run) and record the per-step costs in ``extra_info``."""
    t0 = time.perf_counter()
    train(config, framework)  # warm-up: imports, XLA compilation, allocator
    warmup = time.perf_counter() - t0
    timings = []

    def one_run():
        out = train(config, framework)
        timings.append(out.timings["train_s"])

    benchmark.pedantic(one_run, rounds=rounds, iterations=1)
    seeds, steps = len(config.seeds), config.iterations
    best = min(timings)
    benchmark.extra_info.update(
        framework=framework, config=config.identity, stack_size=seeds, iterations=steps,
        warmup_s=round(warmup, 4), best_train_s=best,
        us_per_step=best / steps * 1e6, us_per_seed_step=best / steps / seeds * 1e6)
