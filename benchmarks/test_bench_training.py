"""Training throughput: one seed (a whole protocol-2017 run) and a stack of 128 seeds.

Targets (issue 2, item 9; one core): the TF1 reference needs 6-8 s per 5000-step protocol-2017
run, its PyTorch port about 22 s. A single TF run must be at least 20x faster (<= 0.3 s), a
single PyTorch run at least 2x faster (<= 11 s), and a stack of S = 128 at or under 25 us per
seed-step in both frameworks. ``extra_info`` records the per-step and per-seed-step costs.
Compilation (XLA) happens in the warm-up round and is timed separately in ``extra_info``.
"""
from __future__ import annotations

import time

import pytest

from ganrepro.config import make_config
from ganrepro.impls import FRAMEWORKS, available
from ganrepro.training import train

FRAMEWORK_PARAMS = [pytest.param(f, marks=pytest.mark.skipif(not available(f), reason=f"{f} not installed"))
                    for f in FRAMEWORKS]


def run_benchmark(benchmark, config, framework, rounds):
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


@pytest.mark.parametrize("minibatch", [False, True], ids=["vanilla", "mbd"])
@pytest.mark.parametrize("framework", FRAMEWORK_PARAMS)
def test_single_run_protocol_2017(benchmark, framework, minibatch):
    """One seed, 5000 (+1) steps of protocol 2017."""
    config = make_config("2017", minibatch=minibatch, seeds=(0,))
    run_benchmark(benchmark, config, framework, rounds=5 if framework == "tf" else 2)


@pytest.mark.parametrize("minibatch", [False, True], ids=["vanilla", "mbd"])
@pytest.mark.parametrize("framework", FRAMEWORK_PARAMS)
def test_stack_of_128_protocol_2017(benchmark, framework, minibatch):
    """128 seeds trained as one stack (1000 steps: the per-seed-step cost does not depend on length)."""
    config = make_config("2017", minibatch=minibatch, seeds=range(128), num_steps=1000)
    run_benchmark(benchmark, config, framework, rounds=3)


@pytest.mark.parametrize("framework", FRAMEWORK_PARAMS)
def test_single_run_protocol_2016(benchmark, framework):
    """One seed of protocol 2016 (1000 pretraining steps, then 1200 steps), with minibatch discrimination."""
    config = make_config("2016", minibatch=True, seeds=(0,))
    run_benchmark(benchmark, config, framework, rounds=3)
