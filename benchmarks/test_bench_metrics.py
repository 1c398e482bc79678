"""Cost of scoring one run: the metrics on 10,000 generated samples (once per seed per run)."""
from __future__ import annotations

import numpy as np

from ganrepro.metrics import evaluate, ks_statistic, wasserstein1


def samples():
    return np.random.default_rng(0).normal(4.0, 0.5, 10_000)


def test_evaluate_10k(benchmark):
    x = samples()
    benchmark(lambda: evaluate(x, rng=np.random.default_rng(1)))


def test_wasserstein1_10k(benchmark):
    benchmark(wasserstein1, samples())


def test_ks_10k(benchmark):
    benchmark(ks_statistic, samples())
