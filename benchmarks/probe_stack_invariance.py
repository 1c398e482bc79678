"""Which of the PyTorch twin's operations give a seed different bits in stacks of different sizes?

A diagnostic for docs/agreement.md#cpu-vs-cuda (run by ``benchmarks/gpu_checks.sh probe``): each
operation the 1D twin's step uses is applied to S stacked seeds (the seed axis first, as in the
twin) and the first seeds' results are compared, bit for bit, with the same seeds computed in a
stack of 1 to 4,096 (random inputs, float32 and float64). On the CPU every row should read
"identical" (the suite's stacking guarantee); on CUDA a row that differs names an operation whose
kernel (or its order of summation) depends on the stack size. The rows marked "candidate" are
formulations that might replace such an operation on CUDA (not used by the twin).

    python benchmarks/probe_stack_invariance.py [--device cuda|cpu]
"""
from __future__ import annotations

import argparse

import torch

B, H, K, C = 8, 4, 5, 3  # batch, hidden width, minibatch kernels and their dimension (protocol 2017)
REFERENCE_STACK = 64
STACKS = (1, 2, 7, 8, 100, 512, 4096)


def operations() -> dict:
    """name -> (function of stacked tensors, shapes of its inputs without the seed axis)."""

    def bias_gradient(g):
        return g.sum(-2)

    def minibatch_sums(m):
        return torch.exp(-(m.unsqueeze(-1) - m.permute(0, 2, 3, 1).unsqueeze(-4)).abs().sum(-2)).sum(-1)

    def summed_product(x, w):  # a candidate for the linear layers on CUDA: no cuBLAS
        return (x.unsqueeze(-1) * w.unsqueeze(-3)).sum(-2)

    def summed_product_gradients(x, w):  # its backward (autograd): sums over the batch and the output
        x, w = x.clone().requires_grad_(True), w.clone().requires_grad_(True)
        out = summed_product(x, w)
        grad_x, grad_w = torch.autograd.grad(out, (x, w), torch.ones_like(out) + out.detach())
        return torch.cat([grad_x.flatten(1), grad_w.flatten(1)], dim=1)

    return {
        "matmul (B,1)x(1,H)": (torch.matmul, [(B, 1), (1, H)]),
        "matmul (B,H)x(H,H)": (torch.matmul, [(B, H), (H, H)]),
        "matmul (B,H)x(H,1)": (torch.matmul, [(B, H), (H, 1)]),
        "matmul (H,B)x(B,H) (weight gradient)": (torch.matmul, [(H, B), (B, H)]),
        "mean over the batch (B)": (lambda x: x.mean(-1), [(B,)]),
        "sum over the batch (B,H) (bias gradient)": (bias_gradient, [(B, H)]),
        "sum of squares (H*H) (a gradient norm)": (lambda x: (x * x).sum(-1), [(H * H,)]),
        "minibatch kernel sums (B,K,C)": (minibatch_sums, [(B, K, C)]),
        "summed product (B,H)x(H,H) (candidate)": (summed_product, [(B, H), (H, H)]),
        "summed product (B,H)x(H,H) gradients (candidate)": (summed_product_gradients, [(B, H), (H, H)]),
    }


def compare(fn, shapes, dtype, device: str, stack: int) -> str:
    """'identical', or the largest relative difference of the first seeds' results."""
    generator = torch.Generator().manual_seed(0)
    inputs = [torch.randn((max(stack, REFERENCE_STACK), *shape), generator=generator, dtype=dtype).to(device)
              for shape in shapes]
    reference = fn(*[x[:REFERENCE_STACK] for x in inputs])
    other = fn(*[x[:stack] for x in inputs])
    n = min(stack, REFERENCE_STACK)
    a, b = reference[:n], other[:n]
    if torch.equal(a, b):
        return "identical"
    return f"{((a - b).abs().max() / a.abs().max()).item():.1e}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu", choices=["cpu", "cuda"])
    device = parser.parse_args().device
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.use_deterministic_algorithms(True)
    name = torch.cuda.get_device_name() if device == "cuda" else "cpu"
    print(f"# stack invariance on {device} ({name}), torch {torch.__version__}: the first seeds of a stack of "
          f"{REFERENCE_STACK} vs the same seeds in a stack of S\n")
    print("| operation | dtype | " + " | ".join(f"S = {s}" for s in STACKS) + " |")
    print("|---|---|" + "---|" * len(STACKS))
    for label, (fn, shapes) in operations().items():
        for dtype in (torch.float32, torch.float64):
            cells = [compare(fn, shapes, dtype, device, s) for s in STACKS]
            print(f"| {label} | {str(dtype).removeprefix('torch.')} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
