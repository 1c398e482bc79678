"""Cost of each technique switch in the stacked benchmark: a stack of 128
seeds, protocol 2017, 1000 steps, per framework. Target: each within 1.5x of the plain
protocol's per-seed-step cost (``test_stack_of_128_protocol_2017[*-vanilla]``)."""
from __future__ import annotations

import pytest

from ganrepro.config import make_config

from bench_helpers import FRAMEWORK_PARAMS, run_benchmark

TECHNIQUES = {
    "plain": {},
    "saturating": dict(g_loss="saturating"),
    "fm-paired_l2": dict(g_loss="none", feature_matching="paired_l2"),
    "ns+fm-mean_sq": dict(feature_matching="mean_sq"),
    "noise-d_inputs": dict(instance_noise=0.001),
    "noise-z": dict(instance_noise=0.001, noise_target="z"),
    "noise-linear": dict(instance_noise=0.1, noise_schedule="linear"),
    "label-smoothing": dict(label_smoothing=0.9),
    "historical-averaging": dict(historical_averaging=0.001),
}


@pytest.mark.parametrize("technique", list(TECHNIQUES))
@pytest.mark.parametrize("framework", FRAMEWORK_PARAMS)
def test_stack_of_128_with_technique(benchmark, framework, technique):
    config = make_config("2017", seeds=range(128), num_steps=1000, **TECHNIQUES[technique])
    run_benchmark(benchmark, config, framework, rounds=3)
    benchmark.extra_info["technique"] = technique
