"""``ganrepro bench``'s worker processes: one framework on one device, measured in a fresh process.

Each (framework, device) runs in two fresh processes (:func:`run_worker`), pinned to one core:
one for the timings (default allocator), one for the peak memory (glibc's malloc made to return
freed blocks to the system, ``MALLOC_MMAP_THRESHOLD_``, so that reuse cannot hide an
allocation). PyTorch runs with ``ATEN_CPU_CAPABILITY=default``, as the training twin does
(``--torch-capability native``: the CPU's own SIMD kernels); the value is recorded per row. A
worker is started as ``python -c WORKER_CODE REQUEST`` (:func:`serve`): an internal entry, not a
command; ``ganrepro bench`` is the one command. The cases themselves: ``ganrepro.bench.cases``.
The image track's step (part "image", ``image_steps``) and the training table (part "training",
``training_steps``: the twin and its plain baseline in the same process) get one more fresh,
pinned process each.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys

from .cases import (
    FORMULATIONS,
    PASSES,
    compiled_with,
    device_name,
    fits,
    floor_seconds,
    make_case,
    matmul_rate,
    peak_memory,
    time_case,
)

WORKER_CODE = "import sys; from ganrepro.bench.workers import serve; sys.exit(serve(sys.argv[1]))"
"""What a worker process runs (``sys.argv[1]``: the JSON request of :func:`run_worker`)."""


def pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def worker(framework: str, device: str, batches: list[int], quick: bool, part: str = "time") -> list[dict]:
    """Measure every case of one framework on one device; rows as dicts. ``part``: "time" (timings
    and the arithmetic floor), "memory" (each case's peak, after a warm-up call), "image" (the image
    track's training step, ``image_steps``) or "training" (the training table, ``training_steps``)."""
    import warnings

    warnings.simplefilter("ignore", RuntimeWarning)  # the twin's warning under --torch-capability native
    pin_to_one_core()
    if part == "image":
        from .image_steps import image_step_rows

        return image_step_rows(framework, device, quick)
    if part == "training":
        from .training_steps import training_rows

        return training_rows(framework, device, quick)
    rate = matmul_rate(framework, device) if part == "time" else None
    rows = []
    for formulation in FORMULATIONS:
        for batch in batches:
            if not fits(formulation, batch, device):
                continue
            for pass_ in PASSES:
                case = make_case(framework, formulation, batch, pass_, device)
                if part == "memory":
                    case.run()  # compilation and first-call allocations are not the layer's peak
                    peak, method = peak_memory(case.run, device)
                    rows.append({**case.info, "peak_bytes": peak, "memory_method": method})
                    continue
                assert rate is not None  # measured above for part == "time"
                timing = time_case(case.run, min_time=0.05 if quick else 1.0, min_rounds=1 if quick else 3)
                rows.append({**case.info, **compiled_with(case), **timing, "floor_s": floor_seconds(batch, pass_, rate),
                             "matmul_gflops": rate / 1e9, "device_name": device_name(device), "threads": 1})
    return rows


def run_worker(framework: str, device: str, batches: list[int], quick: bool, capability: str,
               part: str = "time") -> list[dict]:
    """Run ``worker`` in a fresh process (its own imports, core and, for "memory", allocator
    settings: glibc returns freed blocks to the system, so reuse cannot hide an allocation; the
    timings run with the default allocator)."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", ATEN_CPU_CAPABILITY="default" if capability == "default" else "")
    if part == "memory":
        env.update(MALLOC_MMAP_THRESHOLD_="65536", MALLOC_TRIM_THRESHOLD_="0")
    request = json.dumps({"framework": framework, "device": device, "batches": batches, "quick": quick, "part": part})
    done = subprocess.run([sys.executable, "-c", WORKER_CODE, request], env=env, capture_output=True, text=True,
                          check=False)
    if done.returncode != 0:
        from ..errors import EnvironmentFault

        last = (done.stderr.strip().splitlines() or [f"exit status {done.returncode}"])[-1]
        raise EnvironmentFault(f"benchmark worker ({part}) for {framework} on {device} failed "
                               f"(exit status {done.returncode}): {last}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def measure(framework: str, device: str, batches: list[int], quick: bool, capability: str) -> list[dict]:
    """Timing rows of one framework and device, each with the peak memory of its case."""
    key = ("formulation", "batch", "passes")
    peaks = {tuple(r[k] for k in key): r for r in run_worker(framework, device, batches, quick, capability, "memory")}
    rows = run_worker(framework, device, batches, quick, capability, "time")
    for row in rows:
        peak = peaks[tuple(row[k] for k in key)]
        row.update(peak_bytes=peak["peak_bytes"], memory_method=peak["memory_method"])
    return rows


def measure_image(framework: str, device: str, quick: bool, capability: str) -> list[dict]:
    """The image track's training-step rows of one framework and device (``image_steps``), in a fresh worker."""
    return run_worker(framework, device, [], quick, capability, "image")


def measure_training(framework: str, device: str, quick: bool, capability: str) -> list[dict]:
    """The training table's rows of one framework and device (``training_steps``: the twin's step and
    the plain baseline's, both in one fresh worker pinned to one core)."""
    return run_worker(framework, device, [], quick, capability, "training")


def serve(request: str) -> int:
    """A worker process's body: measure what the JSON ``request`` asks, print the rows as one JSON line."""
    asked = json.loads(request)
    print(json.dumps(worker(asked["framework"], asked["device"], asked["batches"], asked["quick"], asked["part"])))
    return 0


def tf_sees_gpu() -> bool:
    """Whether TensorFlow sees a GPU (asked in a fresh process, so that this one loads no framework)."""
    code = "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False,
                          env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return done.returncode == 0 and done.stdout.strip().splitlines()[-1:] != ["0"]
