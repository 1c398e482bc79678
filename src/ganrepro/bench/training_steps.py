"""``ganrepro bench``'s training table: the twins' training step per framework, device, protocol,
minibatch discrimination and stack size S, each beside the plain baseline's same steps.

A step is D's update, then G's (docs/updates.md), float32, for S seeds stacked: the twin's
``train_chunk`` (PyTorch eager on the CPU; on CUDA replayed as a CUDA graph, protocol 2017's step as one
fused Triton kernel, protocol 2016's compiled by TorchInductor: ``torch_twin._step_form``; TensorFlow
its XLA-compiled loop; compilation in the warm-up call) on
a chunk of ``steps_per_call`` steps, every call from the same initial state (``train_chunk``
returns a new state and leaves its input alone, so a call costs no set-up). The baseline
(``plain_torch``, ``plain_tf``: eager, per-parameter tensors, batched matmuls, the published
broadcast for minibatch discrimination) runs the same chunk from the same weights in the same
worker, right after the twin: ``vs_baseline`` = twin time / baseline time, both best of their
rounds, as the minibatch table keeps its reference formulation.

Inputs: the weights of ``ganrepro.weights.initial_weights`` and a chunk of
``ganrepro.streams.training_chunks`` for the first ``BLOCK`` seeds, tiled to S (a config of 65,536
seeds is over the suite's memory limit for a whole run, and the cost does not depend on the values);
protocol 2016 starts from D's initial weights (its pretraining changes values, not the cost).

Step counts and rounds (``steps_per_call``, ``timing_rule``): on the CPU 10 steps per call up to
S = 128, rounds until 1 s and at least 3; S = 4,096: 2 steps, rounds until 1 s and at least 2;
S = 65,536 (seconds a step: about 1.3 s in PyTorch, 5.6 s with minibatch discrimination, more in
protocol 2016 and in the baseline): 1 step, one round after the warm-up call.
On CUDA 10 steps per call and at least 3 rounds everywhere. ``--quick``: S = 1 and 128, 2 steps,
one round. A case runs only if its estimated peak (``estimated_bytes``) is under half the memory
free when the worker starts.

A run's cost (``run_s``) counts ``run_steps`` steps: 5,001 for protocol 2017 (num_steps + 1);
2,200 for protocol 2016, its 1,200 training steps plus its 1,000 pretraining steps each counted as
a training step (an upper bound: a pretraining step is one D update on one batch).

Written as ``training_<device>.csv/.md/.png`` beside the minibatch tables (``write_training_tables``).
Importing this module loads no framework.
"""
from __future__ import annotations

import math
import subprocess
from pathlib import Path

from ..config import RULES

PROTOCOLS = ("2016", "2017")
STACKS = (1, 128, 4096, 65536)
QUICK_STACKS = (1, 128)
QUICK_STEPS = 2
BLOCK = 128
"""Seeds drawn for a case; larger stacks repeat them."""
MEMORY_FRACTION = 0.5
TARGET_STACK = 65536
TARGET_SEED_STEP_NS = {False: 20.0, True: 40.0}
"""GPU targets (protocol 2017, float32): ns per seed-step at S >= 65,536, without and with minibatch discrimination."""
TARGET_SINGLE_RUN_S = 2.0
"""GPU target: one seed of protocol 2017, 5,001 steps, in seconds."""

COLUMNS = ["framework", "device", "device_name", "protocol", "minibatch", "stack", "steps_per_call", "step_s",
           "seed_step_ns", "run_steps", "run_s", "run_seed_s", "baseline_step_s", "baseline_seed_step_ns",
           "vs_baseline", "vs_cpu", "rounds", "baseline_rounds", "warmup_s", "baseline_warmup_s", "framework_version"]


def run_steps(protocol: str) -> int:
    """Steps counted per run of the protocol's defaults: 2017 num_steps + 1 = 5,001; 2016 its 1,200
    training steps plus its 1,000 pretraining steps (counted as training steps: an upper bound)."""
    rules = RULES[protocol]
    return rules.default_num_steps + (1 if rules.extra_final_step else 0) + rules.default_pretrain_steps


def steps_per_call(stack: int, device: str, quick: bool) -> int:
    """Steps per timed call: few where a step is slow (large S on the CPU); see the module docstring."""
    if quick:
        return QUICK_STEPS
    if device == "cuda" or stack <= 128:
        return 10
    return 2 if stack <= 4096 else 1


def timing_rule(stack: int, device: str, quick: bool) -> dict:
    """``cases.time_case``'s keyword arguments for a case (a call over 3 s always gets 2 rounds)."""
    if quick:
        return {"min_time": 0.05, "min_rounds": 1}
    if device == "cuda" or stack <= 128:
        return {"min_time": 1.0, "min_rounds": 3}
    if stack <= 4096:
        return {"min_time": 1.0, "min_rounds": 2, "max_rounds": 10}
    return {"min_time": 0.0, "min_rounds": 1, "max_rounds": 1}


def estimated_bytes(protocol: str, minibatch: bool, stack: int, steps: int) -> int:
    """An estimate of a case's peak (twin and baseline, one after the other) with some room, float32
    words per seed: the chunk (6 L B), the weights with slots, gradients and copies (2,000), a step's
    activations and saved tensors (400 B), and minibatch discrimination's (B, K, C, B) tensors of the
    baseline's broadcast (10 B^2 K C: differences, their absolute values, gradients); plus 256 MiB.
    Measured at S = 4,096 on the CPU (growth of the resident set over a call): 10-15 kB per seed
    without minibatch discrimination, at most 46 kB (2017) and 93 kB (2016, TF's baseline) with it;
    the estimate: 27, 59 and 113 kB."""
    b = RULES[protocol].default_batch_size
    words = 6 * steps * b + 2000 + 400 * b + (10 * b * b * 5 * 3 if minibatch else 0)
    return 4 * words * stack + (256 << 20)


def free_bytes(framework: str, device: str) -> int:
    """Memory free on ``device`` (asked when the worker starts, before any case allocates): the CPU's
    available memory, PyTorch's free CUDA memory, or for TensorFlow on a GPU nvidia-smi's."""
    from .cases import free_bytes as free

    if device == "cpu" or framework == "torch":
        return free(device)
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=memory.free", "--format=csv,noheader,nounits", "-i", "0"],
                              capture_output=True, text=True, check=True)
        return int(done.stdout.split()[0]) << 20
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError):
        return free(device)  # through PyTorch, where it is installed


def stacked_inputs(protocol: str, minibatch: bool, stack: int, steps: int):
    """(config, initial weights, chunk of ``steps`` steps) for a stack of S = ``stack`` seeds: drawn
    for the first min(S, BLOCK) seeds (``config.seeds``), repeated along the seed axis to S."""
    import dataclasses

    import numpy as np

    from ..config import make_config
    from ..streams import training_chunks
    from ..weights import initial_weights

    block = min(stack, BLOCK)
    config = make_config(protocol, minibatch=minibatch, seeds=range(block), num_steps=100, pretrain_steps=0)
    init = initial_weights(config)
    chunk = next(training_chunks(config, max_chunk=steps))
    assert chunk.n_valid == steps, (chunk.n_valid, steps)
    reps = -(-stack // block)

    def tile(a, axis):
        return np.ascontiguousarray(np.concatenate([a] * reps, axis=axis)[(slice(None),) * axis + (slice(stack),)])

    weights = {p: {k: tile(v, 0) for k, v in init[p].items()} for p in ("G", "D")}
    arrays = {name: tile(getattr(chunk, name), 1)
              for name in ("x", "z_d", "z_g", "noise_real", "noise_fake_d", "noise_fake_g")}
    return config, weights, dataclasses.replace(chunk, **arrays)


def _configure_tf_gpu() -> None:
    """TensorFlow on a GPU: allocate as needed (its default takes nearly all the memory at the first op)."""
    from ..impls.import_order import triton_before_tensorflow

    triton_before_tensorflow()
    import tensorflow as tf

    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            tf.config.experimental.set_memory_growth(gpu, True)
        except RuntimeError:  # the runtime is already initialised
            pass


def training_rows(framework: str, device: str, quick: bool) -> list[dict]:
    """Time the twin's and the baseline's steps for every case of one framework on one device."""
    import gc
    import importlib

    from ..impls import get_backend

    backend = get_backend(framework)
    if framework == "tf" and device == "cuda":
        _configure_tf_gpu()
    free = free_bytes(framework, device)
    info = backend.use_device(device)
    plain = importlib.import_module(f"ganrepro.bench.plain_{framework}")
    plain.use_device(device)
    version = backend.versions().get("torch" if framework == "torch" else "tensorflow")
    rows = []
    for protocol in PROTOCOLS:
        for minibatch in (False, True):
            for stack in (QUICK_STACKS if quick else STACKS):
                steps = steps_per_call(stack, device, quick)
                if estimated_bytes(protocol, minibatch, stack, steps) > MEMORY_FRACTION * free:
                    continue
                config, weights, chunk = stacked_inputs(protocol, minibatch, stack, steps)
                rule = timing_rule(stack, device, quick)
                twin = _time(backend, config, weights, chunk, rule)
                base = _time(plain, config, weights, chunk, rule)
                del weights, chunk
                _release(framework, device)
                step, base_step = twin["best_s"] / steps, base["best_s"] / steps
                rows.append({
                    "framework": framework, "device": device, "device_name": info.get("name"), "protocol": protocol,
                    "minibatch": minibatch, "stack": stack, "steps_per_call": steps, "step_s": step,
                    "seed_step_ns": step / stack * 1e9, "run_steps": run_steps(protocol),
                    "run_s": step * run_steps(protocol), "run_seed_s": step * run_steps(protocol) / stack,
                    "baseline_step_s": base_step, "baseline_seed_step_ns": base_step / stack * 1e9,
                    "vs_baseline": step / base_step, "vs_cpu": None, "rounds": twin["rounds"],
                    "baseline_rounds": base["rounds"], "warmup_s": twin["warmup_s"],
                    "baseline_warmup_s": base["warmup_s"], "framework_version": version})
                gc.collect()
    return rows


def _time(impl, config, weights: dict, chunk, rule: dict) -> dict:
    """``time_case`` of ``impl.train_chunk`` (the twin or its baseline), every call from the same state."""
    from .cases import time_case

    state = impl.init_state(config, weights["G"], weights["D"])
    return time_case(lambda: impl.train_chunk(config, state, chunk), **rule)


def _release(framework: str, device: str) -> None:
    """Hand PyTorch's cached CUDA blocks back between cases (TensorFlow keeps its pool and reuses it)."""
    if framework == "torch" and device == "cuda":
        import torch

        torch.cuda.empty_cache()


# ---- the table, its Markdown and plot, the files --------------------------------------------------
KEY = ["framework", "protocol", "minibatch", "stack"]


def table(rows: list[dict], cpu_rows: list[dict] | None = None):
    """The rows as a DataFrame in ``COLUMNS`` order, sorted; ``vs_cpu`` of a non-CPU row = its
    step time / the step time of the same case in ``cpu_rows`` (empty where that case is missing)."""
    import pandas as pd

    frame = pd.DataFrame(rows)
    frame["protocol"] = frame["protocol"].astype(str)
    frame["vs_cpu"] = math.nan
    if cpu_rows:
        cpu = pd.DataFrame(cpu_rows).astype({"protocol": str}).set_index(KEY)["step_s"]
        frame["vs_cpu"] = [math.nan if row.device == "cpu" else row.step_s / cpu.get(tuple(row[k] for k in KEY),
                                                                                      math.nan)
                           for _, row in frame.iterrows()]
    return frame[COLUMNS].sort_values(KEY).reset_index(drop=True)


def _per_seed_step(ns: float) -> str:
    if ns < 1e3:
        return f"{ns:.3g} ns"
    return f"{ns / 1e3:.3g} us" if ns < 1e6 else f"{ns / 1e6:.3g} ms"


def _ratio(value: float) -> str:
    return "" if value is None or math.isnan(value) else f"{value:.3g}"


def targets_line(frame) -> str:
    """What the GPU targets ask and what the rows measured (protocol 2017)."""
    parts = []
    for framework, rows in frame[frame["protocol"] == "2017"].groupby("framework"):
        large = rows[rows["stack"] >= TARGET_STACK]
        for minibatch in (False, True):
            hit = large[large["minibatch"] == minibatch]
            if len(hit):
                ns, target = hit["seed_step_ns"].min(), TARGET_SEED_STEP_NS[minibatch]
                parts.append(f"{framework} {'MBD' if minibatch else 'vanilla'} S = {TARGET_STACK:,} {ns:.3g} ns "
                             f"(target {target:g}: {'met' if ns <= target else 'not met'})")
        single = rows[rows["stack"] == 1]
        for minibatch, run_s in zip(single["minibatch"], single["run_s"], strict=True):
            parts.append(f"{framework} {'MBD' if minibatch else 'vanilla'} one seed, 5,001 steps {run_s:.3g} s "
                         f"(target {TARGET_SINGLE_RUN_S:g}: {'met' if run_s <= TARGET_SINGLE_RUN_S else 'not met'})")
    return "; ".join(parts)


def markdown(frame, device: str) -> str:
    """The table as Markdown, the device and the library versions named."""
    names = ", ".join(sorted(set(frame["device_name"].astype(str))))
    pairs = zip(frame["framework"], frame["framework_version"], strict=True)
    versions = ", ".join(f"{f} {v}" for f, v in sorted(set(pairs)))
    run = ", ".join(f"{p}: {run_steps(p):,}" for p in PROTOCOLS)
    where = "one thread" if device == "cpu" else "on the GPU, driven by one CPU thread"
    lines = [f"# Training step, {device}: {names}", "",
             (f"One training step (D's update, then G's) of S stacked seeds, float32, {where}; the twin's "
              "`train_chunk` (TF: XLA-compiled; PyTorch on CUDA: protocol 2017's step as one fused Triton kernel, "
              "2016's compiled by TorchInductor, either replayed as one CUDA graph; compilation in the warm-up "
              "call), time = best of the rounds "
              f"of `steps/call` steps, per step and per seed-step. run = step x the steps of a run ({run}; 2016 "
              "counts its 1,000 pretraining steps as training steps); per seed = run / S. baseline = the plain "
              "eager stacked implementation of the same step (`ganrepro.bench.plain_torch` / `plain_tf`), "
              "measured in the same worker; vs baseline = twin / baseline; vs cpu = time / the same case's CPU "
              f"time. Versions: {versions}."), ""]
    if device != "cpu":
        lines += [f"GPU targets (protocol 2017): {targets_line(frame) or 'no row of theirs measured'}.", ""]
    lines += ["| framework | protocol | MBD | S | steps/call | step (ms) | per seed-step | run (s) | run per seed (s) "
              "| baseline per seed-step | vs baseline | vs cpu |",
              "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for _, r in frame.iterrows():
        lines.append(f"| {r.framework} | {r.protocol} | {'yes' if r.minibatch else 'no'} | {r.stack} | "
                     f"{r.steps_per_call} | {r.step_s * 1e3:.4g} | {_per_seed_step(r.seed_step_ns)} | {r.run_s:.4g} | "
                     f"{r.run_seed_s:.3g} | {_per_seed_step(r.baseline_seed_step_ns)} | {r.vs_baseline:.3g} | "
                     f"{_ratio(r.vs_cpu)} |")
    return "\n".join(lines) + "\n"


def plot_bytes(frame, device: str) -> bytes:
    """Log-log cost per seed-step (ns) against S as a PNG: one line per framework x protocol x
    minibatch, solid for the twin, dashed in the same colour for its baseline."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    groups = frame.groupby(["framework", "protocol", "minibatch"])
    for index, ((framework, protocol, minibatch), part) in enumerate(groups):
        colour = colours[index % len(colours)]
        label = f"{framework} {protocol} {'MBD' if minibatch else 'vanilla'}"
        ax.loglog(part["stack"], part["seed_step_ns"], marker="o", color=colour, label=label)
        ax.loglog(part["stack"], part["baseline_seed_step_ns"], marker=".", linestyle="--", color=colour,
                  label=f"{label} baseline")
    ax.set_xscale("log", base=2)
    ax.set_xlabel("stack size S (seeds)")
    ax.set_ylabel("ns per seed-step")
    ax.set_title(f"training step, {device}: {', '.join(sorted(set(frame['device_name'].astype(str))))}", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=6, ncol=2)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, dpi=120, format="png")
    plt.close(fig)
    return buf.getvalue()


def _read(path: Path) -> list[dict]:
    import pandas as pd

    return pd.read_csv(path, dtype={"protocol": str}).to_dict("records") if path.exists() else []


def write_training_tables(rows: list[dict], out: Path) -> list[Path]:
    """training_<device>.csv/.md/.png for every device in ``rows`` (other devices' files stay, and so
    do the rows of frameworks not in ``rows``). ``vs_cpu`` of a CUDA row: against this run's CPU
    rows, else the folder's ``training_cpu.csv``."""
    from .. import outdirs
    from ..files import write_bytes_atomic, write_text_atomic

    out.mkdir(parents=True, exist_ok=True)
    outdirs.write_manifest(out, "benchmarks")
    written = []
    by_device: dict[str, list[dict]] = {}
    for device in sorted({r["device"] for r in rows}):
        part = [r for r in rows if r["device"] == device]
        measured = {r["framework"] for r in part}
        part += [r for r in _read(out / f"training_{device}.csv") if r["framework"] not in measured]
        by_device[device] = part
    for device, part in by_device.items():
        cpu_rows = by_device.get("cpu") or _read(out / "training_cpu.csv")
        frame = table(part, cpu_rows if device != "cpu" else None)
        paths = [out / f"training_{device}.{ext}" for ext in ("csv", "md", "png")]
        for path in paths:
            outdirs.remove_stale_temporaries(out, path.name)
        write_text_atomic(paths[0], frame.to_csv(index=False))
        write_text_atomic(paths[1], markdown(frame, device))
        write_bytes_atomic(paths[2], plot_bytes(frame, device))
        written.extend(paths)
    return written
