"""The benchmark cases of the minibatch-discrimination layer and how one is measured.

``make_case`` builds one case (framework x formulation x batch size x pass x device) as a call;
``time_case`` times it, ``peak_memory`` measures what one call adds, ``matmul_rate`` and
``floor_seconds`` give the arithmetic floor. The same code runs under pytest-benchmark
(``benchmarks/test_bench_minibatch.py``) and in ``ganrepro bench``'s worker processes
(``ganrepro.bench.workers``). How and why it measures this way: ``ganrepro.bench.tables.METHOD``.
Importing this module loads no framework (each case imports its framework when it is built).
"""
from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FRAMEWORKS = ("torch", "tf")
FORMULATIONS = ("reference", "production")
PASSES = ("forward", "forward+backward")
DEVICES = ("cpu", "cuda")
KERNELS, DIMS = 5, 3
SELF_TERM = "exp0"
DEFAULT_BATCH_SIZES = tuple(2 ** p for p in range(3, 13))  # 8 .. 4096
LARGE_BATCH = 8192  # added where memory allows
QUICK_BATCH_SIZES = (8, 96)
FLOOR_OPS_FORWARD = 55  # per B^2: see tables.METHOD
FLOOR_OPS_BACKWARD_FACTOR = 3
MATMUL_N = 1024
MEMORY_FRACTION = 0.5  # a case runs only if its estimated peak is under this share of free memory
DEFAULT_OUT = "reports/benchmarks"
MAX_BENCH_BATCH = 16384
"""The largest batch size measured: a case costs 55 B^2 operations forward (165 B^2 with the
backward) per call and several calls are timed, so 16384 (4x the default 8192) already takes
minutes per case on one core; the time grows as B^2."""


@dataclass
class Case:
    """One benchmark case: ``run()`` does one call (and synchronises); ``info`` describes it."""

    run: Callable[[], None]
    info: dict = field(default_factory=dict)


def cuda_available() -> bool:
    """Whether PyTorch sees a CUDA device (imports torch)."""
    try:
        import torch
    except ImportError:
        return False
    return torch.cuda.is_available()


def estimated_bytes(formulation: str, batch: int, itemsize: int = 4) -> int:
    """A generous estimate of a case's peak: the reference holds a few (B, K, C, B) tensors."""
    if formulation == "reference":
        return 4 * batch * batch * KERNELS * DIMS * itemsize
    return 64 * batch * KERNELS * DIMS * itemsize + (64 << 20)


def free_bytes(device: str) -> int:
    if device == "cuda":
        import torch

        return torch.cuda.mem_get_info()[0]
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 1 << 62


def fits(formulation: str, batch: int, device: str) -> bool:
    return estimated_bytes(formulation, batch) <= MEMORY_FRACTION * free_bytes(device)


def inputs(batch: int, seeds: int = 1, seed: int = 0):
    """M (S, B, K, C) ~ N(0, 1) and an upstream gradient g (S, B, K) ~ N(0, 1), float32 NumPy."""
    import numpy as np

    rng = np.random.default_rng(seed)
    return (rng.standard_normal((seeds, batch, KERNELS, DIMS)).astype(np.float32),
            rng.standard_normal((seeds, batch, KERNELS)).astype(np.float32))


def make_case(framework: str, formulation: str, batch: int, pass_: str, device: str = "cpu", seeds: int = 1) -> Case:
    """The layer's kernel sums o = kernel_sums(M) (and dL/dM for L = sum(g o) with the backward),
    M of ``seeds`` stacked seeds (1 in the tables; training stacks up to 32)."""
    if pass_ not in PASSES:
        raise ValueError(f"unknown pass {pass_!r}; allowed: {', '.join(PASSES)}")
    m_np, g_np = inputs(batch, seeds)
    backward = pass_ == "forward+backward"
    if framework == "torch":
        import torch

        from ..impls import get_backend
        from ..impls import torch_minibatch as layer

        get_backend("torch")  # the twin's configuration: one thread, deterministic, no TF32
        torch.backends.cuda.matmul.allow_tf32 = False
        m = torch.from_numpy(m_np).to(device).requires_grad_(backward)
        g = torch.from_numpy(g_np).to(device)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

        def run():
            o = layer.kernel_sums(m, SELF_TERM, formulation)
            if backward:
                torch.autograd.grad(o, m, g)
            sync()

        info: dict[str, Any] = {"capability": torch.backends.cpu.get_cpu_capability() if device == "cpu" else "cuda",
                "framework_version": torch.__version__}
    elif framework == "tf":
        from ..impls.import_order import triton_before_tensorflow

        triton_before_tensorflow()
        import tensorflow as tf

        from ..impls import get_backend
        from ..impls import tf_minibatch as layer

        get_backend("tf")
        with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
            m, g = tf.constant(m_np), tf.constant(g_np)

        def run():
            with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
                if backward:
                    with tf.GradientTape() as tape:
                        tape.watch(m)
                        o = layer.kernel_sums(m, SELF_TERM, formulation)
                    last = tape.gradient(o, m, output_gradients=g)
                else:
                    last = layer.kernel_sums(m, SELF_TERM, formulation)
                float(tf.reduce_sum(last[..., :1, :1]))  # waits for the result

        info = {"capability": "XLA-compiled" if formulation == "production" else "eager ops",
                "framework_version": tf.__version__}
    else:
        raise ValueError(f"unknown framework {framework!r}; allowed: {', '.join(FRAMEWORKS)}")
    if formulation not in FORMULATIONS:
        raise ValueError(f"unknown formulation {formulation!r}; allowed: {', '.join(FORMULATIONS)}")
    info.update(framework=framework, formulation=formulation, batch=batch, passes=pass_, device=device,
                seeds=seeds, kernels=KERNELS, dims=DIMS, self_term=SELF_TERM, dtype="float32")
    return Case(run, info)


def compiled_with(case: Case) -> dict:
    """After a case ran: the vector width of PyTorch's Inductor kernels, if the case used them."""
    info = case.info
    if info["framework"] == "torch" and info["formulation"] == "production":
        from ..impls import torch_minibatch

        if info["batch"] > torch_minibatch.TILE:
            return {"inductor_simd_bits": torch_minibatch.SIMD_BITS}
    return {"inductor_simd_bits": None}


def time_case(run: Callable[[], None], min_time: float = 1.0, min_rounds: int = 3, max_rounds: int = 50) -> dict:
    """Warm-up call (compilation), then rounds until ``min_time`` s and ``min_rounds`` (2 for a
    round over 3 s): {"best_s", "median_s", "rounds", "warmup_s"}."""
    t0 = time.perf_counter()
    run()
    warmup = time.perf_counter() - t0
    times: list[float] = []
    while len(times) < max_rounds:
        t0 = time.perf_counter()
        run()
        times.append(time.perf_counter() - t0)
        enough = 2 if times[0] > 3.0 else min_rounds
        if len(times) >= enough and sum(times) >= min_time:
            break
    times.sort()
    return {"best_s": times[0], "median_s": times[len(times) // 2], "rounds": len(times), "warmup_s": warmup}


def _status_kib(key: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise OSError(f"{key} not in /proc/self/status")


def peak_memory(run: Callable[[], None], device: str) -> tuple[int, str]:
    """(bytes, method): the memory one call adds at its peak (CPU: the growth of the resident set
    from the kernel's high-water mark, ``/proc/self/clear_refs`` resetting it and ``VmHWM`` reading it;
    CUDA: ``torch.cuda.max_memory_allocated`` minus what was allocated before the call)."""
    if device == "cuda":
        import torch

        torch.cuda.synchronize()
        base = torch.cuda.memory_allocated()
        torch.cuda.reset_peak_memory_stats()
        run()
        return torch.cuda.max_memory_allocated() - base, "cuda max_memory_allocated"
    with open("/proc/self/clear_refs", "w") as clear:
        clear.write("5")  # resets VmHWM to the current resident set
    base = _status_kib("VmRSS")
    run()
    # The peak over the call includes its start, so the growth is >= 0. The reset and the read of
    # VmRSS are two moments (reading the file can touch a page), so a call that adds nothing and
    # ends a page lower (glibc trims) can read VmHWM one page under ``base``: that is 0, not -4 KiB.
    return max(_status_kib("VmHWM") - base, 0) * 1024, "VmHWM - VmRSS (Linux)"


def matmul_rate(framework: str, device: str = "cpu", n: int = MATMUL_N) -> float:
    """float32 operations per second of an n x n matmul in ``framework`` (best of several)."""
    import numpy as np

    a = np.random.default_rng(1).standard_normal((n, n)).astype(np.float32)
    if framework == "torch":
        import torch

        x = torch.from_numpy(a).to(device)
        sync = torch.cuda.synchronize if device == "cuda" else (lambda: None)

        def run():
            torch.matmul(x, x)
            sync()
    else:
        from ..impls.import_order import triton_before_tensorflow

        triton_before_tensorflow()
        import tensorflow as tf

        with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
            x = tf.constant(a)

        def run():
            with tf.device("/GPU:0" if device == "cuda" else "/CPU:0"):
                float(tf.matmul(x, x)[0, 0])
    timing = time_case(run, min_time=0.5, min_rounds=5)
    return 2.0 * n ** 3 / timing["best_s"]


def floor_seconds(batch: int, pass_: str, rate: float) -> float:
    """The arithmetic floor: 55 B^2 operations (x3 with the backward) at the matmul rate."""
    factor = FLOOR_OPS_BACKWARD_FACTOR if pass_ == "forward+backward" else 1
    return factor * FLOOR_OPS_FORWARD * batch * batch / rate


def device_name(device: str) -> str:
    """The CPU model or the GPU's name."""
    if device == "cuda":
        import torch

        return torch.cuda.get_device_name(0)
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()
