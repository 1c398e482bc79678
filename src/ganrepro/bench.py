"""``ganrepro bench``: what the minibatch-discrimination layer costs, per framework, formulation,
batch size, pass and device; written as tables and a plot to ``reports/benchmarks/``.

The cases (``make_case``), their timing (``time_case``), peak memory (``peak_memory``) and the
arithmetic floor (``matmul_rate``) are the same code that ``benchmarks/test_bench_minibatch.py``
runs under pytest-benchmark. Here each (framework, device) runs in two fresh worker processes
(``python -m ganrepro.bench --worker``), pinned to one core, one for the timings (default
allocator) and one for the peak memory, and the parent writes, per device:

    minibatch_<device>.csv / .md   one row per case: seconds, ratio to the reference formulation,
                                   ratio to the arithmetic floor, peak memory, device, capability
    minibatch_<device>.png         log-log time against batch size per framework and formulation

A run replaces the rows of the frameworks and devices it measured only (a GPU run adds
``*_cuda.*`` and keeps the committed CPU tables; ``--frameworks tf`` keeps PyTorch's rows). Methods:
- time: the best of several rounds after a warm-up call (compilation excluded), inputs fixed;
  on CUDA the timed call ends with ``torch.cuda.synchronize()``; TF calls end by reading a value.
- arithmetic floor: forward 55 B^2 operations (per pair (i, j) and kernel k: 3 differences,
  3 absolute values, 2 additions, 1 exp, 1 accumulation, 1 diagonal test; x K = 5), forward +
  backward counted as 3x the forward (165 B^2), at the float32 matmul rate of the same framework
  on the same device measured in the same run (a 1024^3 product, 2 x 1024^3 operations).
- peak memory: CPU: the growth of the process's resident set during one call, from the
  kernel's high-water mark (``/proc/self/clear_refs`` resets it, ``VmHWM`` reads it), with
  glibc's malloc made to return freed blocks to the system (``MALLOC_MMAP_THRESHOLD_``), so that
  freed and reused memory cannot hide an allocation; CUDA: ``torch.cuda.max_memory_allocated``
  minus the memory allocated before the call.
- capability: PyTorch runs with ``ATEN_CPU_CAPABILITY=default`` as the training twin does
  (``--torch-capability native`` for the CPU's own SIMD kernels); the value is recorded.
Importing this module loads no framework.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

FRAMEWORKS = ("torch", "tf")
FORMULATIONS = ("reference", "production")
PASSES = ("forward", "forward+backward")
DEVICES = ("cpu", "cuda")
KERNELS, DIMS = 5, 3
SELF_TERM = "exp0"
DEFAULT_BATCH_SIZES = tuple(2 ** p for p in range(3, 13))  # 8 .. 4096
LARGE_BATCH = 8192  # added where memory allows
QUICK_BATCH_SIZES = (8, 96)
FLOOR_OPS_FORWARD = 55  # per B^2: see the module docstring
FLOOR_OPS_BACKWARD_FACTOR = 3
MATMUL_N = 1024
MEMORY_FRACTION = 0.5  # a case runs only if its estimated peak is under this share of free memory
DEFAULT_OUT = "reports/benchmarks"
MAX_BENCH_BATCH = 16384
"""The largest batch size measured: a case costs 55 B^2 operations forward (165 B^2 with the
backward) per call and several calls are timed, so 16384 (4x the default 8192) already takes
minutes per case on one core; the time grows as B^2."""


# ---- measurement (shared with benchmarks/test_bench_minibatch.py) ---------------------------------
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

        from .impls import get_backend
        from .impls import torch_minibatch as layer

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

        info = {"capability": torch.backends.cpu.get_cpu_capability() if device == "cpu" else "cuda",
                "framework_version": torch.__version__}
    elif framework == "tf":
        import tensorflow as tf

        from .impls import get_backend
        from .impls import tf_minibatch as layer

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
        from .impls import torch_minibatch

        if info["batch"] > torch_minibatch.TILE:
            return {"inductor_simd_bits": torch_minibatch.SIMD_BITS}
    return {"inductor_simd_bits": None}


def time_case(run: Callable[[], None], min_time: float = 1.0, min_rounds: int = 3, max_rounds: int = 50) -> dict:
    """Warm-up call (compilation), then rounds until ``min_time`` s and ``min_rounds`` (2 for a
    round over 3 s): {"best_s", "median_s", "rounds", "warmup_s"}."""
    t0 = time.perf_counter()
    run()
    warmup = time.perf_counter() - t0
    times = []
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
    """(bytes, method): the memory one call adds at its peak (see the module docstring)."""
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


# ---- the worker: one framework on one device, one process -----------------------------------------
def pin_to_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})


def worker(framework: str, device: str, batches: list[int], quick: bool, part: str = "time") -> list[dict]:
    """Measure every case of one framework on one device; rows as dicts. ``part``: "time" (timings
    and the arithmetic floor) or "memory" (each case's peak, after a warm-up call)."""
    import warnings

    warnings.simplefilter("ignore", RuntimeWarning)  # the twin's warning under --torch-capability native
    pin_to_one_core()
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
    done = subprocess.run([sys.executable, "-m", "ganrepro.bench", "--worker", request], env=env,
                          capture_output=True, text=True, check=False)
    if done.returncode != 0:
        from .errors import EnvironmentFault

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


# ---- tables and plot ------------------------------------------------------------------------------
COLUMNS = ["framework", "formulation", "passes", "batch", "best_s", "median_s", "rounds", "vs_reference",
           "vs_floor", "peak_MiB", "peak_bytes", "floor_s", "matmul_gflops", "device", "device_name", "framework_version", "capability",
           "inductor_simd_bits", "memory_method"]


def table(rows: list[dict]):
    """A pandas DataFrame with the ratios: time / reference's time (same framework, pass, batch)
    and time / arithmetic floor."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame["peak_MiB"] = frame["peak_bytes"] / 2 ** 20
    keys = ["framework", "passes", "batch"]
    reference = frame[frame["formulation"] == "reference"].set_index(keys)["best_s"]
    frame["vs_reference"] = [row.best_s / reference.get(tuple(row[k] for k in keys), math.nan)
                             for _, row in frame.iterrows()]
    frame["vs_floor"] = frame["best_s"] / frame["floor_s"]
    if "inductor_simd_bits" not in frame:
        frame["inductor_simd_bits"] = None
    return frame[COLUMNS].sort_values(["framework", "passes", "formulation", "batch"]).reset_index(drop=True)


def markdown(frame, device: str) -> str:
    """The table as Markdown, seconds in ms, with the device named."""
    names = ", ".join(sorted(set(frame["device_name"])))
    rates = ", ".join(f"{f} {r:.0f}" for f, r in frame.groupby("framework")["matmul_gflops"].first().items())
    versions = ", ".join(f"{f} {v}" for f, v in sorted(set(zip(frame["framework"], frame["framework_version"]))))
    lines = [f"# Minibatch-discrimination layer, {device}: {names}", "",
             (f"K = {KERNELS}, C = {DIMS}, self term {SELF_TERM}, float32, one thread. time = best of the rounds; "
              "vs ref = time / reference formulation's time; vs floor = time / arithmetic floor "
              f"(float32 matmul rate here: {rates} GFLOP/s); capability = ATen's CPU kernels (PyTorch) or how the "
              "formulation runs (TF). "
              f"Versions: {versions}."), "",
             "| framework | formulation | pass | B | time (ms) | vs ref | vs floor | peak MiB | capability |",
             "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for _, r in frame.iterrows():
        ratio = "" if math.isnan(r.vs_reference) else f"{r.vs_reference:.3g}"
        lines.append(f"| {r.framework} | {r.formulation} | {r.passes} | {r.batch} | {r.best_s * 1e3:.4g} | {ratio} | "
                     f"{r.vs_floor:.3g} | {r.peak_MiB:.1f} | {r.capability} |")
    return "\n".join(lines) + "\n"


def plot_bytes(frame, device: str) -> bytes:
    """:func:`plot`'s PNG, as bytes."""
    import io

    buf = io.BytesIO()
    plot(frame, buf, device)
    return buf.getvalue()


def plot(frame, path, device: str) -> None:
    """Log-log time against batch size, one line per framework x formulation x pass (``path``: a
    file name or a binary file object)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for (framework, formulation, pass_), part in frame.groupby(["framework", "formulation", "passes"]):
        ax.loglog(part["batch"], part["best_s"], marker="o", linestyle="-" if pass_ == "forward+backward" else ":",
                  label=f"{framework} {formulation} {pass_}")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("batch size B")
    ax.set_ylabel("seconds per call")
    ax.set_title(f"minibatch layer, {device}: {', '.join(sorted(set(frame['device_name'])))}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120, format="png")
    plt.close(fig)


METHOD = """\
# Benchmarks: the minibatch-discrimination layer

Written by `ganrepro bench` (`tox -e bench-tables`); do not edit. The layer maps M (B, K, C) to
o[i, k] = sum_j exp(-(d_k(i, j) + s [i == j])), d_k(i, j) = sum_c |M[i,k,c] - M[j,k,c]|
(`impls/torch_minibatch.py`, `impls/tf_minibatch.py`). Formulations: `reference`, the published
(B, K, C, B) broadcast with autograd's backward; `production`, what training uses (PyTorch: a
pair-major broadcast up to 16 rows, then the per-C loop; TF: a compiled per-C loop; above 64
rows, kernels that never hold a B x B tensor, with a hand-written backward).

Method: each framework and device runs in two fresh worker processes pinned to one core, one
for the timings (default allocator) and one for the memory; time = the best of several calls
after a warm-up call (compilation excluded; CUDA calls end with `torch.cuda.synchronize()`);
peak memory = what one call adds after a warm-up call (CPU: resident-set high-water mark with
glibc made to return freed memory; CUDA: `torch.cuda.max_memory_allocated`); arithmetic
floor = 55 B^2 operations forward (165 B^2 with the backward) at the float32 matmul rate measured
in the same run. `pytest benchmarks` (`tox -e bench`) times the same cases under
pytest-benchmark, together with training steps and whole runs.
"""


def write_tables(rows: list[dict], out: Path) -> list[Path]:
    """minibatch_<device>.csv/.md/.png for every device in ``rows`` (other devices' files stay, and
    so do the rows of frameworks not in ``rows``), then README.md: the method and every device's
    table found in ``out``."""
    import pandas as pd

    from . import outdirs
    from .files import write_bytes_atomic, write_text_atomic

    out.mkdir(parents=True, exist_ok=True)
    outdirs.write_manifest(out, "benchmarks")
    rows = list(rows)
    for device in sorted({r["device"] for r in rows}):
        previous = out / f"minibatch_{device}.csv"
        if previous.exists():  # keep the rows of frameworks not measured this time
            measured = {r["framework"] for r in rows if r["device"] == device}
            old = pd.read_csv(previous)
            rows.extend(old[~old["framework"].isin(measured)].to_dict("records"))
    frame = table(rows)
    written = []
    for device, part in frame.groupby("device"):
        part = part.reset_index(drop=True)
        paths = [out / f"minibatch_{device}.{ext}" for ext in ("csv", "md", "png")]
        for path in paths:  # what a killed earlier run left (files.write_bytes_atomic's temporaries)
            outdirs.remove_stale_temporaries(out, path.name)
        write_text_atomic(paths[0], part.to_csv(index=False))
        write_text_atomic(paths[1], markdown(part, device))
        write_bytes_atomic(paths[2], plot_bytes(part, device))
        written.extend(paths)
    sections = [METHOD]
    for device in DEVICES:
        table_md = out / f"minibatch_{device}.md"
        if table_md.exists():
            sections.append("#" + table_md.read_text() + f"\n![time against batch size](minibatch_{device}.png)\n")
    outdirs.remove_stale_temporaries(out, "README.md")
    write_text_atomic(out / "README.md", "\n".join(sections))
    written.append(out / "README.md")
    return written


# ---- the command ---------------------------------------------------------------------------------
def _batch_list(text: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 2, got {text!r}") from None
    if not values or min(values) < 2:
        raise argparse.ArgumentTypeError(f"batch sizes must be integers >= 2, got {text!r}")
    if max(values) > MAX_BENCH_BATCH:
        raise argparse.ArgumentTypeError(f"batch sizes must be at most {MAX_BENCH_BATCH} (the time of a case grows "
                                         f"as B^2), got {text!r}")
    repeated = sorted({v for v in values if values.count(v) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(f"batch sizes must be distinct, got {text!r} "
                                         f"(repeats {', '.join(map(str, repeated))})")
    return values


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to an argparse subparsers object."""
    bench = subparsers.add_parser(
        "bench", help="benchmark the minibatch-discrimination layer and write tables to reports/benchmarks",
        description="Time the minibatch-discrimination layer (reference and production formulations, "
                    "forward and forward+backward) per framework, batch size and device, one core, and write "
                    "CSV and Markdown tables and a log-log plot per device.")
    bench.add_argument("--device", choices=("cpu", "cuda", "all"), default=None,
                       help="cpu, cuda, or all (default: cpu, plus cuda when PyTorch sees one)")
    bench.add_argument("--batch-sizes", type=_batch_list, default=None, metavar="B,B,...",
                       help="distinct batch sizes, each in 2..%d (default 8,16,...,4096, plus 8192 where "
                            "memory allows)" % MAX_BENCH_BATCH)
    bench.add_argument("--frameworks", default=",".join(FRAMEWORKS), metavar="NAME,...",
                       help="frameworks to measure (default torch,tf)")
    bench.add_argument("--torch-capability", choices=("default", "native"), default="default",
                       help="ATen's CPU kernels: default (scalar, as training runs) or native SIMD")
    bench.add_argument("--quick", action="store_true",
                       help=f"a short run (batch sizes {QUICK_BATCH_SIZES}, few rounds) for CI and tests")
    bench.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                       help=f"output folder (default {DEFAULT_OUT}): new, empty, or one that 'ganrepro bench' "
                            "wrote (it holds .ganrepro-output.json); any other folder is refused")
    return bench


def validate(args: argparse.Namespace):
    """(frameworks, devices, batch sizes, out folder), checked before any measurement."""
    from . import impls, outdirs
    from .errors import UsageError

    out = outdirs.claim(args.out, "--out", "benchmarks")  # first: cheap, and before any framework is loaded
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    if not frameworks:
        raise UsageError(f"--frameworks {args.frameworks!r} names no framework; allowed: {', '.join(FRAMEWORKS)}")
    for name in frameworks:
        if name not in FRAMEWORKS:
            raise UsageError(f"--frameworks: unknown framework {name!r}; allowed: {', '.join(FRAMEWORKS)}")
        impls.check_framework(name)
    has_cuda = impls.available("torch") and cuda_available()
    if args.device in (None, "all"):
        devices = ["cpu", "cuda"] if has_cuda else ["cpu"]
    else:
        devices = [args.device]
    if "cuda" in devices and not has_cuda:
        raise UsageError("--device cuda: PyTorch sees no CUDA device here; allowed: cpu")
    if args.quick:
        batches = list(args.batch_sizes or QUICK_BATCH_SIZES)
    else:
        batches = list(args.batch_sizes or (*DEFAULT_BATCH_SIZES, LARGE_BATCH))
    if len(set(frameworks)) != len(frameworks):
        raise UsageError(f"--frameworks {args.frameworks!r} names a framework twice")
    return frameworks, devices, batches, out


def execute(args: argparse.Namespace, frameworks, devices, batches, out: Path) -> int:
    """Measure (one worker process per framework and device), then write the tables."""
    rows = []
    for device in devices:
        for framework in frameworks:
            if device == "cuda" and framework == "tf" and not _tf_sees_gpu():
                print("bench: tf sees no GPU; cuda rows for torch only", file=sys.stderr)
                continue
            print(f"bench: {framework} on {device}, batch sizes {batches} ...", file=sys.stderr)
            rows.extend(measure(framework, device, batches, args.quick, args.torch_capability))
    for path in write_tables(rows, out):
        print(f"wrote {path}")
    return 0


def _tf_sees_gpu() -> bool:
    done = subprocess.run([sys.executable, "-c", "import tensorflow as tf; print(len(tf.config.list_physical_devices('GPU')))"],
                          capture_output=True, text=True, check=False, env=dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3"))
    return done.returncode == 0 and done.stdout.strip().splitlines()[-1:] != ["0"]


def main(argv=None) -> int:
    """``python -m ganrepro.bench --worker REQUEST``: one worker process (see ``run_worker``); any other
    arguments are those of ``ganrepro bench``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["--worker"]:
        request = json.loads(argv[1])
        print(json.dumps(worker(request["framework"], request["device"], request["batches"], request["quick"],
                                request["part"])))
        return 0
    from .cli import main as cli_main

    return cli_main(["bench", *argv])


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
