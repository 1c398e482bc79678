"""Training throughput: one training step, one seed (a whole run) and a stack of seeds, per
protocol and framework (the training group; the layer group is test_bench_minibatch.py).

Targets (one core): the TF1 reference needs 6-8 s per 5000-step protocol-2017
run, its PyTorch port about 22 s. A single TF run must be at least 20x faster (<= 0.3 s), a
single PyTorch run at least 2x faster (<= 11 s), and a stack of S = 128 at or under 25 us per
seed-step in both frameworks. ``extra_info`` records the per-step and per-seed-step costs.
Compilation (XLA) happens in the warm-up round and is timed separately in ``extra_info``.

Group "training per stack": the training table's cases (``ganrepro bench``'s
``training_<device>`` tables, ``ganrepro.bench.training_steps``), protocol 2017, float32: the
twin's steps for S stacked seeds, each with the plain eager stacked baseline of the same step
(``ganrepro.bench.plain_torch`` / ``plain_tf``) timed in the same test; ``extra_info`` records
both and their ratio (``vs_baseline``). CPU: S = 1, 128, 4,096, recorded only. CUDA (skipped
without a device): S = 1, 4,096, 65,536, and one seed's whole run, with the GPU targets: at
S = 65,536 at most 20 ns per seed-step without minibatch discrimination and 40 ns with it; one
seed, 5,001 steps (training only) at most 2 s.
"""
from __future__ import annotations

import pytest

from ganrepro.bench import training_steps
from ganrepro.config import make_config
from ganrepro.impls import get_backend
from ganrepro.streams import training_chunks
from ganrepro.weights import initial_weights

from bench_helpers import (
    CUDA,
    FRAMEWORK_PARAMS,
    back_to_cpu,
    baseline_step_s,
    on_device,
    run_benchmark,
    step_benchmark,
)


@pytest.mark.benchmark(group="training step")
@pytest.mark.parametrize("minibatch", [False, True], ids=["vanilla", "mbd"])
@pytest.mark.parametrize("protocol", ["2016", "2017"])
@pytest.mark.parametrize("framework", FRAMEWORK_PARAMS)
def test_training_step(benchmark, framework, protocol, minibatch):
    """One training step (D's update, then G's) of one seed, as the training loop runs it: a chunk
    of one step (TF: its compiled loop; the compilation is in the warm-up)."""
    config = make_config(protocol, minibatch=minibatch, seeds=(0,), pretrain_steps=0)
    backend = get_backend(framework)
    backend.use_device("cpu")
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


# ---- the training table's cases: the twin beside its plain baseline, per stack size ---------------
@pytest.mark.benchmark(group="training per stack")
@pytest.mark.parametrize("stack", [1, 128, 4096])
@pytest.mark.parametrize("minibatch", [False, True], ids=["vanilla", "mbd"])
@pytest.mark.parametrize("framework", FRAMEWORK_PARAMS)
def test_training_per_stack_cpu(benchmark, framework, minibatch, stack):
    """Protocol 2017 on the CPU: recorded (with the baseline and the ratio), no target asserted."""
    step_benchmark(benchmark, framework, "cpu", "2017", minibatch, stack, rounds=3 if stack >= 4096 else 20)


@CUDA
@pytest.mark.benchmark(group="training per stack")
@pytest.mark.parametrize("stack", [1, 4096, training_steps.TARGET_STACK])
@pytest.mark.parametrize("minibatch", [False, True], ids=["vanilla", "mbd"])
@pytest.mark.parametrize("framework", FRAMEWORK_PARAMS)
def test_training_per_stack_cuda(benchmark, framework, minibatch, stack):
    """Protocol 2017 on CUDA; at S = 65,536 at most 20 ns per seed-step (40 with minibatch discrimination)."""
    info = step_benchmark(benchmark, framework, "cuda", "2017", minibatch, stack, rounds=20)
    if stack >= training_steps.TARGET_STACK:
        target = training_steps.TARGET_SEED_STEP_NS[minibatch]
        assert info["seed_step_ns"] <= target, (
            f"{info['seed_step_ns']:.3g} ns per seed-step at S = {stack} (target {target:g}; baseline "
            f"{info['baseline_seed_step_ns']:.3g} ns)")


@CUDA
@pytest.mark.benchmark(group="training per stack")
@pytest.mark.parametrize("minibatch", [False, True], ids=["vanilla", "mbd"])
@pytest.mark.parametrize("framework", FRAMEWORK_PARAMS)
def test_single_run_protocol_2017_cuda(benchmark, framework, minibatch):
    """One seed, 5,001 steps of protocol 2017 on CUDA, training only (``train``'s ``train_s``): at
    most 2 s. The baseline's time: its per-step time on the table's chunk (10 steps) x 5,001."""
    twin, plain = on_device(framework, "cuda")  # skips where the framework sees no GPU
    back_to_cpu(twin, plain, "cuda")
    config = make_config("2017", minibatch=minibatch, seeds=(0,))
    best = run_benchmark(benchmark, config, framework, rounds=3, device="cuda")
    twin, plain = on_device(framework, "cuda")
    try:
        steps = training_steps.steps_per_call(1, "cuda", quick=False)
        case, weights, chunk = training_steps.stacked_inputs("2017", minibatch, 1, steps)
        base = baseline_step_s(plain, case, weights, chunk, training_steps.timing_rule(1, "cuda", quick=False))
    finally:
        back_to_cpu(twin, plain, "cuda")
    baseline_run = base * config.iterations
    benchmark.extra_info.update(baseline_run_s=baseline_run, vs_baseline=best / baseline_run)
    assert best <= training_steps.TARGET_SINGLE_RUN_S, (
        f"one seed, {config.iterations} steps: {best:.3g} s (target {training_steps.TARGET_SINGLE_RUN_S:g} s; "
        f"baseline {baseline_run:.3g} s)")
