"""Probe: what each form of the PyTorch twin's training step on CUDA costs: the fused step (one Triton
kernel per step, ``impls/torch_fused_step.py``, CUDA's default for protocol 2017 without technique
terms) with its launch shapes, the compiled step (``torch_twin._compiled_train_step``, the default for
other configs) with ``linear``'s two forms, and the eager step's kernels replayed as one CUDA graph.

Inside a compiled step ``linear`` is a broadcast product and sum that TorchInductor fuses; the other
form keeps ``torch.matmul`` (a batched cuBLAS call per layer and direction). For protocol 2017,
float32, with and without minibatch discrimination, at each stack size S (the matmul form: the largest
only, unless --all-stacks; the fused step: each ``--fused-shapes`` "BLOCK_S,warps", "default" for
``torch_fused_step.launch_shape``'s), each case prints one JSON line: the first call's seconds
(compilation included), the best call's seconds per step and ns per seed-step (10 steps a call,
``ganrepro.bench.training_steps``'s rule on CUDA). Not a test; it informs docs/performance.md#gpu.
Measured on an H100 (2026-11-27, S = 65,536, without / with minibatch discrimination): eager graph
118 / 234 ns, compiled broadcast 146 / 247 ns, compiled matmul 99 / 142 ns. The fused step has not
been timed yet.

    python benchmarks/probe_compiled_step.py [--device cuda] [--stacks 1 65536] [--forms ...] [--all-stacks]
                                             [--fused-shapes default 4,4 8,4 ...]
"""
from __future__ import annotations

import argparse
import json
import os
import time

FORMS = ("fused", "eager-graph", "compiled-broadcast", "compiled-matmul")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--stacks", type=int, nargs="+", default=[1, 65536])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--forms", nargs="+", choices=FORMS, default=list(FORMS))
    parser.add_argument("--all-stacks", action="store_true",
                        help="the matmul form at every stack too (default: the largest only)")
    parser.add_argument("--fused-shapes", nargs="+", default=["default"],
                        help='the fused step\'s launch shapes, "BLOCK_S,warps" or "default"')
    args = parser.parse_args()

    import torch
    import torch._dynamo

    from ganrepro.impls import get_backend

    twin = get_backend("torch")
    twin.use_device(args.device)
    broadcast_linear = twin.linear

    def matmul_linear(x, w, b):
        return torch.matmul(x, w) + b.unsqueeze(-2)

    from ganrepro.impls import torch_fused_step

    default_shape = torch_fused_step.launch_shape
    cases = [(form, shape, minibatch, stack) for form in args.forms
             for shape in (args.fused_shapes if form == "fused" else [None]) for minibatch in (False, True)
             for stack in args.stacks
             if args.all_stacks or not (form == "compiled-matmul" and stack < max(args.stacks))]
    for form, shape, minibatch, stack in cases:
        os.environ[twin.CUDA_COMPILE_ENV] = "0" if form == "eager-graph" else "1"
        os.environ[twin.CUDA_FUSED_ENV] = "1" if form == "fused" else "0"
        twin.linear = matmul_linear if form == "compiled-matmul" else broadcast_linear
        torch_fused_step.launch_shape = default_shape if shape in (None, "default") else _fixed(shape)
        torch._dynamo.reset()
        started = time.perf_counter()
        row: dict = {"form": form, "minibatch": minibatch, "stack": stack}
        row["ran"] = twin._step_form(_config(minibatch), args.device)  # the form train_chunk runs
        if form == "fused":
            row["shape"] = shape if shape != "default" else ",".join(map(str, default_shape(
                _config(minibatch), torch.float32)))
        try:
            timing = _time_steps(twin, minibatch, stack, args.steps)
        except Exception as exc:  # a probe reports every case's failure and goes on
            row["error"] = f"{type(exc).__name__}: {exc}"[:2000]
        else:
            step = timing["best_s"] / args.steps
            row.update(warmup_s=round(timing["warmup_s"], 2), step_us=round(step * 1e6, 2),
                       seed_step_ns=round(step / stack * 1e9, 3), run_5001_s=round(step * 5001, 3),
                       rounds=timing["rounds"], case_s=round(time.perf_counter() - started, 1))
        print(json.dumps(row), flush=True)
        twin._STATIC.clear()
        if args.device == "cuda":
            torch.cuda.empty_cache()
    twin.linear = broadcast_linear
    torch_fused_step.launch_shape = default_shape


def _fixed(shape: str):
    """A ``launch_shape`` that returns ``shape`` ("BLOCK_S,warps") for every config."""
    block_seeds, warps = (int(part) for part in shape.split(","))
    return lambda config, dtype: (block_seeds, warps)


def _config(minibatch: bool):
    from ganrepro.config import make_config

    return make_config("2017", minibatch=minibatch)


def _time_steps(twin, minibatch: bool, stack: int, steps: int) -> dict:
    """``time_case`` of the twin's ``train_chunk`` on a chunk of ``steps`` steps, protocol 2017."""
    from ganrepro.bench.cases import time_case
    from ganrepro.bench.training_steps import stacked_inputs

    config, weights, chunk = stacked_inputs("2017", minibatch, stack, steps)
    state = twin.init_state(config, weights["G"], weights["D"])
    return time_case(lambda: twin.train_chunk(config, state, chunk), min_time=1.0, min_rounds=3)


if __name__ == "__main__":
    main()
