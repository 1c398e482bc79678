"""Cost of scoring one run: the metrics on 10,000 generated samples (once per seed per run).

Target: ``evaluate`` (KS, W1 and the Parzen score: bandwidth chosen from 14 values on 2,000
validation draws, scored on 10,000 test draws) at most 60 ms per run on one core, 5x under the
0.3 s it took before the bandwidth selection stopped computing every validation score
(metrics/kde_select.py), for a target-like sample, a narrow one (std 0.05) and a bimodal one.
Measured on the 2-core development machine (Intel Xeon with AVX-512, NumPy's SIMD pinned to
AVX2 by ganrepro's instruction-set pin, NumPy 2.4): 33 ms, 16 ms and 14 ms (before: 0.24 s,
0.27 s and 0.16 s), each scored with seed 0's evaluation stream (h* = 0.125, 0.5, 1.0). Most
of the rest is the test score at h* (its code unchanged), whose cost grows as h* shrinks: 19-37 ms
at h* = 0.044-0.18, so ~30-47 ms per run, but the ~1 in 9 perfect samples whose validation draw
picks h* < 0.04 take ~75 ms, over the target.
"""
from __future__ import annotations

import numpy as np
import pytest

from ganrepro.metrics import evaluate, evaluate_many, ks_statistic, wasserstein1
from ganrepro.seeding import rng_for

TARGET_EVALUATE_S = 0.060


def samples():
    return np.random.default_rng(0).normal(4.0, 0.5, 10_000)


def _shapes():
    r = np.random.default_rng(0)
    return {
        "target-like": r.normal(4.0, 0.5, 10_000),
        "narrow": r.normal(4.0, 0.05, 10_000),
        "bimodal": np.concatenate([r.normal(3.0, 0.1, 5000), r.normal(5.0, 0.1, 5000)]),
    }


def test_evaluate_10k(benchmark):
    x = samples()
    benchmark(lambda: evaluate(x, rng=np.random.default_rng(1)))


@pytest.mark.benchmark(group="evaluate per shape")
@pytest.mark.parametrize("shape", list(_shapes()))
def test_evaluate_10k_meets_target(benchmark, shape):
    x = _shapes()[shape]
    evaluate(x, rng=rng_for(0, "evaluation"))  # warm-up: imports, cached translation tables
    benchmark.pedantic(lambda: evaluate(x, rng=rng_for(0, "evaluation")), rounds=10, iterations=1)
    best = benchmark.stats.stats.min
    benchmark.extra_info.update(shape=shape, target_s=TARGET_EVALUATE_S)
    assert best <= TARGET_EVALUATE_S, f"evaluate, {shape}: {best * 1e3:.1f} ms (target {TARGET_EVALUATE_S * 1e3:g} ms)"


def test_evaluate_many_8x10k(benchmark):
    """Eight seeds' samples scored as one stack (sorted once)."""
    stack = np.random.default_rng(2).normal(4.0, 0.5, (8, 10_000))
    benchmark(lambda: evaluate_many(stack, [np.random.default_rng(s) for s in range(8)]))


def test_wasserstein1_10k(benchmark):
    benchmark(wasserstein1, samples())


def test_ks_10k(benchmark):
    benchmark(ks_statistic, samples())
