"""Training throughput: one training step, one seed (a whole run) and a stack of seeds, per
protocol and framework (the training group; the layer group is test_bench_minibatch.py).

Targets (one core): the TF1 reference needs 6-8 s per 5000-step protocol-2017
run, its PyTorch port about 22 s. A single TF run must be at least 20x faster (<= 0.3 s), a
single PyTorch run at least 2x faster (<= 11 s), and a stack of S = 128 at or under 25 us per
seed-step in both frameworks. ``extra_info`` records the per-step and per-seed-step costs.
Compilation (XLA) happens in the warm-up round and is timed separately in ``extra_info``.
"""
from __future__ import annotations

import pytest

from ganrepro.config import make_config
from ganrepro.impls import get_backend
from ganrepro.streams import training_chunks
from ganrepro.weights import initial_weights

from bench_helpers import FRAMEWORK_PARAMS, run_benchmark


@pytest.mark.benchmark(group="training step")
@pytest.mark.parametrize("minibatch", [False, True], ids=["vanilla", "mbd"])
@pytest.mark.parametrize("protocol", ["2016", "2017"])
@pytest.mark.parametrize("framework", FRAMEWORK_PARAMS)
def test_training_step(benchmark, framework, protocol, minibatch):
    """One training step (D's update, then G's) of one seed, as the training loop runs it: a chunk
    of one step (TF: its compiled loop; the compilation is in the warm-up)."""
    config = make_config(protocol, minibatch=minibatch, seeds=(0,), pretrain_steps=0)
    backend = get_backend(framework)
    init = initial_weights(config)
    chunk = next(training_chunks(config, max_chunk=1))
    state = backend.init_state(config, init["G"], init["D"])
    backend.train_chunk(config, state, chunk)  # warm-up

    def one_step():
        backend.train_chunk(config, backend.init_state(config, init["G"], init["D"]), chunk)

    benchmark.pedantic(one_step, rounds=50, iterations=1, warmup_rounds=2)
    benchmark.extra_info.update(framework=framework, config=config.identity, batch=config.batch_size,
                                minibatch=minibatch, includes="init_state + one step")


@pytest.mark.benchmark(group="stacked run")
@pytest.mark.parametrize("minibatch", [False, True], ids=["vanilla", "mbd"])
@pytest.mark.parametrize("framework", FRAMEWORK_PARAMS)
def test_stack_of_128_protocol_2016(benchmark, framework, minibatch):
    """128 seeds of protocol 2016 trained as one stack (1000 pretraining steps, then 1200)."""
    config = make_config("2016", minibatch=minibatch, seeds=range(128))
    run_benchmark(benchmark, config, framework, rounds=2)


@pytest.mark.benchmark(group="whole run")
@pytest.mark.parametrize("minibatch", [False, True], ids=["vanilla", "mbd"])
@pytest.mark.parametrize("framework", FRAMEWORK_PARAMS)
def test_single_run_protocol_2017(benchmark, framework, minibatch):
    """One seed, 5000 (+1) steps of protocol 2017."""
    config = make_config("2017", minibatch=minibatch, seeds=(0,))
    run_benchmark(benchmark, config, framework, rounds=5 if framework == "tf" else 2)


@pytest.mark.benchmark(group="stacked run")
@pytest.mark.parametrize("minibatch", [False, True], ids=["vanilla", "mbd"])
@pytest.mark.parametrize("framework", FRAMEWORK_PARAMS)
def test_stack_of_128_protocol_2017(benchmark, framework, minibatch):
    """128 seeds trained as one stack (1000 steps: the per-seed-step cost does not depend on length)."""
    config = make_config("2017", minibatch=minibatch, seeds=range(128), num_steps=1000)
    run_benchmark(benchmark, config, framework, rounds=3)


@pytest.mark.benchmark(group="whole run")
@pytest.mark.parametrize("framework", FRAMEWORK_PARAMS)
def test_single_run_protocol_2016(benchmark, framework):
    """One seed of protocol 2016 (1000 pretraining steps, then 1200 steps), with minibatch discrimination."""
    config = make_config("2016", minibatch=True, seeds=(0,))
    run_benchmark(benchmark, config, framework, rounds=3)
