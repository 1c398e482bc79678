"""Helpers shared by the benchmark modules (benchmark modules never import each other).

Importable as ``bench_helpers``: pytest puts this folder on ``sys.path`` when it loads
``benchmarks/conftest.py`` (the default "prepend" import mode; the folder has no ``__init__.py``).
"""
from __future__ import annotations

import importlib
import os
import time

import pytest

from ganrepro.bench import cases, training_steps
from ganrepro.devices import DeviceUnavailable
from ganrepro.impls import FRAMEWORKS, available, get_backend
from ganrepro.training import train

os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")  # a GPU TensorFlow must leave memory to PyTorch's cases

FRAMEWORK_PARAMS = [pytest.param(f, marks=pytest.mark.skipif(not available(f), reason=f"{f} not installed"))
                    for f in FRAMEWORKS]
"""The frameworks as pytest parameters, each skipped where it is not installed."""

CUDA = pytest.mark.skipif(not (available("torch") and cases.cuda_available()), reason="no CUDA device")
"""Marks a CUDA case: skipped where PyTorch sees no CUDA device."""


def run_benchmark(benchmark, config, framework, rounds, device="cpu"):
    """Time whole runs of ``config`` on ``device`` (after one warm-up run) and record the per-step
    costs in ``extra_info``; returns the best training time (``timings["train_s"]``) in seconds."""
    t0 = time.perf_counter()
    train(config, framework, device=device)  # warm-up: imports, XLA compilation, allocator
    warmup = time.perf_counter() - t0
    timings = []

    def one_run():
        out = train(config, framework, device=device)
        timings.append(out.timings["train_s"])

    benchmark.pedantic(one_run, rounds=rounds, iterations=1)
    seeds, steps = len(config.seeds), config.iterations
    best = min(timings)
    benchmark.extra_info.update(
        framework=framework, config=config.identity, stack_size=seeds, iterations=steps, device=device,
        warmup_s=round(warmup, 4), best_train_s=best,
        us_per_step=best / steps * 1e6, us_per_seed_step=best / steps / seeds * 1e6)
    return best


def on_device(framework: str, device: str):
    """(twin, plain baseline) of ``framework``, both set to run on ``device``; the test is skipped
    where the framework cannot use it. Call :func:`back_to_cpu` after (later tests use the twin)."""
    twin = get_backend(framework)
    try:
        twin.use_device(device)
    except DeviceUnavailable as exc:
        pytest.skip(str(exc))
    plain = importlib.import_module(f"ganrepro.bench.plain_{framework}")
    plain.use_device(device)
    return twin, plain


def back_to_cpu(twin, plain, device: str) -> None:
    twin.use_device("cpu")
    plain.use_device("cpu")
    if device == "cuda" and twin.NAME == "torch":
        import torch

        torch.cuda.empty_cache()


def baseline_step_s(plain, config, weights, chunk, rule: dict) -> float:
    """Best seconds per step of the plain baseline on the chunk (``ganrepro.bench.training_steps``'s
    rule of rounds), every call from the same state."""
    state = plain.init_state(config, weights["G"], weights["D"])
    timing = cases.time_case(lambda: plain.train_chunk(config, state, chunk), **rule)
    return timing["best_s"] / chunk.n_valid


def step_benchmark(benchmark, framework: str, device: str, protocol: str, minibatch: bool, stack: int,
                   rounds: int) -> dict:
    """The training table's case (``ganrepro.bench.training_steps``): the twin's ``train_chunk`` on a
    chunk of a few steps for S = ``stack`` stacked seeds, every round from the same state, after a
    warm-up call (compilation); then the plain baseline's same steps, in the same test. Records and
    returns the costs: seconds per step, ns per seed-step, the baseline's and the ratio."""
    twin, plain = on_device(framework, device)
    try:
        steps = training_steps.steps_per_call(stack, device, quick=False)
        if training_steps.estimated_bytes(protocol, minibatch, stack, steps) > (
                training_steps.MEMORY_FRACTION * training_steps.free_bytes(framework, device)):
            pytest.skip(f"S = {stack} needs more than half the free memory")
        config, weights, chunk = training_steps.stacked_inputs(protocol, minibatch, stack, steps)
        state = twin.init_state(config, weights["G"], weights["D"])
        t0 = time.perf_counter()
        twin.train_chunk(config, state, chunk)  # warm-up: XLA compilation, allocator
        warmup = time.perf_counter() - t0
        timings = []

        def one_call():
            t0 = time.perf_counter()
            twin.train_chunk(config, state, chunk)
            timings.append(time.perf_counter() - t0)

        benchmark.pedantic(one_call, rounds=rounds, iterations=1)
        step = min(timings) / steps
        base = baseline_step_s(plain, config, weights, chunk, training_steps.timing_rule(stack, device, quick=False))
    finally:
        back_to_cpu(twin, plain, device)
    info = {"framework": framework, "device": device, "protocol": protocol, "minibatch": minibatch, "stack": stack,
            "steps_per_call": steps, "warmup_s": round(warmup, 4), "step_s": step, "seed_step_ns": step / stack * 1e9,
            "run_s": step * training_steps.run_steps(protocol), "baseline_step_s": base,
            "baseline_seed_step_ns": base / stack * 1e9, "vs_baseline": step / base}
    benchmark.extra_info.update(info)
    return info
