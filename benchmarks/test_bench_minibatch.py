"""The minibatch-discrimination layer across batch sizes: framework x formulation x
batch size x pass x device, pytest-benchmark. Each case is ``ganrepro.bench.cases.make_case``, the same
code ``ganrepro bench`` times for the tables in ``reports/benchmarks/``; ``extra_info`` records
the batch size, formulation, pass, device, ATen's CPU capability, Inductor's vector width and
the peak memory of one call (here measured inside the pytest process: on CPU the growth of the
resident set's high-water mark, which allocator reuse can hide; the tables' figures come from
fresh worker processes with glibc's reuse turned off, see ``reports/benchmarks/README.md``).

Targets (one core, float32, B = 4096, forward+backward): production <= 0.3 s in both
frameworks, >= 20x faster than the reference in PyTorch eager and >= 6x in TF eager, peak
memory under 64 MB; at B = 8 production no slower than the reference. Cases whose estimated
memory exceeds half of the free memory (the reference at B = 8192) are skipped.
"""
from __future__ import annotations

import pytest

from ganrepro.bench import cases as bench
from ganrepro.impls import available

BATCH_SIZES = [*bench.DEFAULT_BATCH_SIZES, bench.LARGE_BATCH]


def _framework(name):
    return pytest.param(name, marks=pytest.mark.skipif(not available(name), reason=f"{name} not installed"))


def _device(name):
    if name == "cpu":
        return name
    return pytest.param(name, marks=pytest.mark.skipif(not (available("torch") and bench.cuda_available()),
                                                       reason="no CUDA device"))


@pytest.mark.benchmark(group="minibatch layer")
@pytest.mark.parametrize("pass_", bench.PASSES)
@pytest.mark.parametrize("batch", BATCH_SIZES)
@pytest.mark.parametrize("formulation", bench.FORMULATIONS)
@pytest.mark.parametrize("framework", [_framework(f) for f in bench.FRAMEWORKS])
@pytest.mark.parametrize("device", [_device(d) for d in bench.DEVICES])
def test_minibatch_layer(benchmark, device, framework, formulation, batch, pass_):
    if device == "cuda" and framework == "tf":
        pytest.skip("the TF twin is CPU-only here (tensorflow-cpu); CUDA rows are PyTorch's")
    if not bench.fits(formulation, batch, device):
        pytest.skip(f"{formulation} at B={batch} needs ~{bench.estimated_bytes(formulation, batch) >> 20} MiB")
    case = bench.make_case(framework, formulation, batch, pass_, device)
    case.run()  # warm-up: compilation (Inductor, XLA), allocator
    rounds = 2 if formulation == "reference" and batch >= 2048 else 5
    benchmark.pedantic(case.run, rounds=rounds, iterations=1)
    peak, method = bench.peak_memory(case.run, device)
    benchmark.extra_info.update(case.info, **bench.compiled_with(case), peak_bytes=peak, memory_method=method)


@pytest.mark.benchmark(group="minibatch layer, training shape")
@pytest.mark.parametrize("seeds", [32, 1024])
@pytest.mark.parametrize("batch", [8, 12])
@pytest.mark.parametrize("formulation", bench.FORMULATIONS)
@pytest.mark.parametrize("framework", [_framework(f) for f in bench.FRAMEWORKS])
def test_minibatch_layer_training_shape(benchmark, framework, formulation, batch, seeds):
    """Forward+backward at the training batches (8: protocol 2017, 12: 2016) for a stack of 32
    seeds, the shape the sweeps train, and of 1024, a large sweep's stack (the tables above use
    one seed). Divide by ``seeds`` for the cost per seed."""
    case = bench.make_case(framework, formulation, batch, "forward+backward", "cpu", seeds=seeds)
    case.run()
    rounds = 200 if seeds <= 32 else 20
    benchmark.pedantic(case.run, rounds=rounds, iterations=1, warmup_rounds=5 if seeds <= 32 else 2)
    benchmark.extra_info.update(case.info, seeds=seeds)
