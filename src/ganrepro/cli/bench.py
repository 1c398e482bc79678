"""``ganrepro bench``: check the frameworks, devices, batch sizes and --out, then measure
(``ganrepro.bench``: one pair of worker processes per framework and device) and write the tables.

One line on stderr per framework and device as it is measured; the written files on stdout.
Functions of ``ganrepro.bench`` are looked up on the package when called (tests replace
``bench.measure``). Loads no framework (the workers do).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import bench, impls, outdirs
from ..errors import UsageError


def validate(args: argparse.Namespace):
    """(frameworks, devices, batch sizes, out folder), checked before any measurement."""
    out = outdirs.claim(args.out, "--out", "benchmarks")  # first: cheap, and before any framework is loaded
    frameworks = [f.strip() for f in args.frameworks.split(",") if f.strip()]
    if not frameworks:
        raise UsageError(f"--frameworks {args.frameworks!r} names no framework; allowed: {', '.join(bench.FRAMEWORKS)}")
    for name in frameworks:
        if name not in bench.FRAMEWORKS:
            raise UsageError(f"--frameworks: unknown framework {name!r}; allowed: {', '.join(bench.FRAMEWORKS)}")
        impls.check_framework(name)
    has_cuda = impls.available("torch") and bench.cuda_available()
    if args.device in (None, "all"):
        devices = ["cpu", "cuda"] if has_cuda else ["cpu"]
    else:
        devices = [args.device]
    if "cuda" in devices and not has_cuda:
        raise UsageError("--device cuda: PyTorch sees no CUDA device here; allowed: cpu")
    if args.quick:
        batches = list(args.batch_sizes or bench.QUICK_BATCH_SIZES)
    else:
        batches = list(args.batch_sizes or (*bench.DEFAULT_BATCH_SIZES, bench.LARGE_BATCH))
    if len(set(frameworks)) != len(frameworks):
        raise UsageError(f"--frameworks {args.frameworks!r} names a framework twice")
    return frameworks, devices, batches, out


def execute(args: argparse.Namespace, frameworks, devices, batches, out: Path) -> int:
    """Measure (one worker process per framework and device), then write the tables."""
    rows = []
    for device in devices:
        for framework in frameworks:
            if device == "cuda" and framework == "tf" and not bench.tf_sees_gpu():
                print("bench: tf sees no GPU; cuda rows for torch only", file=sys.stderr)
                continue
            print(f"bench: {framework} on {device}, batch sizes {batches} ...", file=sys.stderr)
            rows.extend(bench.measure(framework, device, batches, args.quick, args.torch_capability))
    image_rows = []
    for framework in frameworks:
        if "cpu" in devices:  # the image twins train on the CPU (docs/images.md)
            print(f"bench: {framework} image-track training step on cpu ...", file=sys.stderr)
            image_rows.extend(bench.measure_image(framework, "cpu", args.quick, args.torch_capability))
    for path in [*bench.write_image_tables(image_rows, out), *bench.write_tables(rows, out)]:
        print(f"wrote {path}")  # the image tables first: write_tables' README.md includes them
    return 0
