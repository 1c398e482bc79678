"""Probe: the minibatch layer's Triton kernels (``impls/torch_minibatch_triton.py``) with other block
sizes and warp counts than the module's, forward+backward, float32, K = 5, C = 3 (``ganrepro bench``'s
case), one seed.

For each batch size and each (BLOCK_I, BLOCK_J, forward warps, backward warps), one JSON line: the best
seconds of ``cases.time_case`` (rounds until 1 s, at least 3) of the forward and of forward+backward.
The module's choice ((64, 64), 4 and 8 warps) took 0.354 ms and 1.07 ms at B = 8,192 on an H100
(2026-11-27; target: 1 ms forward+backward). Block sizes must be powers of two. Not a test; a
choice it finds is made in the module and then measured by ``ganrepro bench --device cuda``.

    python benchmarks/probe_triton_tiles.py [--batches 128 1024 8192]
"""
from __future__ import annotations

import argparse
import json

CHOICES = [(64, 64, 4, 8), (64, 64, 4, 4), (64, 32, 4, 4), (128, 64, 8, 8), (32, 64, 4, 4), (128, 32, 4, 8),
           (64, 128, 4, 8)]
"""(BLOCK_I, BLOCK_J, forward warps, backward warps): the module's first."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batches", type=int, nargs="+", default=[128, 1024, 8192])
    parser.add_argument("--device", default="cuda")
    args = parser.parse_args()

    import torch

    from ganrepro.bench.cases import inputs
    from ganrepro.impls import get_backend
    from ganrepro.impls import torch_minibatch_triton as kernels

    get_backend("torch")
    module_choice = (kernels.block_sizes, kernels.FORWARD_WARPS, kernels.BACKWARD_WARPS)
    for batch in args.batches:
        m_np, g_np = inputs(batch)
        m = torch.from_numpy(m_np).to(args.device).requires_grad_(True)
        g = torch.from_numpy(g_np).to(args.device)
        sync = torch.cuda.synchronize if args.device == "cuda" else (lambda: None)
        for block_i, block_j, forward_warps, backward_warps in CHOICES:
            kernels.block_sizes = lambda b, bi=block_i, bj=block_j: (bi, bj)
            kernels.FORWARD_WARPS, kernels.BACKWARD_WARPS = forward_warps, backward_warps

            row = {"batch": batch, "block_i": block_i, "block_j": block_j, "forward_warps": forward_warps,
                   "backward_warps": backward_warps}
            try:
                row.update(_timings(kernels, m, g, sync))
            except Exception as exc:  # a probe reports every choice's failure and goes on
                row["error"] = f"{type(exc).__name__}: {exc}"[:1000]
            print(json.dumps(row), flush=True)
    kernels.block_sizes, kernels.FORWARD_WARPS, kernels.BACKWARD_WARPS = module_choice


def _timings(kernels, m, g, sync) -> dict:
    """Best milliseconds of the forward and of forward+backward, with the module's current choice."""
    import torch

    from ganrepro.bench.cases import time_case

    def forward():
        kernels.triton_sums(m, "exp0")
        sync()

    def both():
        torch.autograd.grad(kernels.triton_sums(m, "exp0"), m, g)
        sync()

    return {"forward_ms": round(time_case(forward)["best_s"] * 1e3, 4),
            "forward_backward_ms": round(time_case(both)["best_s"] * 1e3, 4)}


if __name__ == "__main__":
    main()
