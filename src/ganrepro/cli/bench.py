"""``ganrepro bench``: check the parts, frameworks, devices, batch sizes and --out, then measure
(``ganrepro.bench``: fresh worker processes per part, framework and device) and write the tables.

Parts (``--parts``, default all): ``minibatch`` (the layer's table, per device), ``training`` (the
training table: the twins' step per stack size beside a plain baseline, per device), ``image``
(the image track's step, per device). On CUDA TensorFlow's rows are measured only where its build
sees a GPU (asked once, in a fresh process). One line on stderr per part, framework and device as it is
measured; the written files on stdout, README.md last. Functions of ``ganrepro.bench`` are looked
up on the package when called (tests replace ``bench.measure``, ``bench.measure_training``,
``bench.measure_image``). Loads no framework (the workers do).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import bench, impls, outdirs
from ..errors import UsageError


def _names(text: str, flag: str, allowed, what: str) -> list[str]:
    """The comma-separated names of ``text``, each one of ``allowed``, none twice."""
    names = [f.strip() for f in text.split(",") if f.strip()]
    if not names:
        raise UsageError(f"{flag} {text!r} names no {what}; allowed: {', '.join(allowed)}")
    for name in names:
        if name not in allowed:
            raise UsageError(f"{flag}: unknown {what} {name!r}; allowed: {', '.join(allowed)}")
    if len(set(names)) != len(names):
        raise UsageError(f"{flag} {text!r} names a {what} twice")
    return names


def validate(args: argparse.Namespace):
    """(frameworks, devices, batch sizes, out folder, parts), checked before any measurement."""
    out = outdirs.claim(args.out, "--out", "benchmarks")  # first: cheap, and before any framework is loaded
    parts = _names(args.parts, "--parts", bench.PARTS, "part")
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
    return frameworks, devices, batches, out, parts


def execute(args: argparse.Namespace, frameworks, devices, batches, out: Path, parts=bench.PARTS) -> int:
    """Measure (fresh worker processes per part, framework and device), then write the tables."""
    rows, training_rows, image_rows = [], [], []
    stacks = list(bench.TRAINING_QUICK_STACKS if args.quick else bench.TRAINING_STACKS)
    tf_gpu: list[bool] = []  # TensorFlow's answer, once asked

    def measured(framework: str, device: str) -> bool:
        """Whether ``framework`` is measured on ``device``: not TensorFlow on CUDA where it sees no GPU."""
        if device != "cuda" or framework != "tf":
            return True
        if not tf_gpu:
            tf_gpu.append(bench.tf_sees_gpu())
            if not tf_gpu[0]:
                print("bench: tf sees no GPU; cuda rows for torch only", file=sys.stderr)
        return tf_gpu[0]

    for device in devices:
        for framework in frameworks:
            if not {"minibatch", "training"} & set(parts) or not measured(framework, device):
                continue
            if "minibatch" in parts:
                print(f"bench: {framework} on {device}, batch sizes {batches} ...", file=sys.stderr)
                rows.extend(bench.measure(framework, device, batches, args.quick, args.torch_capability))
            if "training" in parts:
                print(f"bench: {framework} training step on {device}, stack sizes {stacks} (where memory allows) ...",
                      file=sys.stderr)
                training_rows.extend(bench.measure_training(framework, device, args.quick, args.torch_capability))
    if "image" in parts:
        for device in devices:
            for framework in frameworks:
                if measured(framework, device):
                    print(f"bench: {framework} image-track training step on {device} ...", file=sys.stderr)
                    image_rows.extend(bench.measure_image(framework, device, args.quick, args.torch_capability))
    written = []  # the part tables first: README.md (written last) includes them
    if image_rows:
        written += bench.write_image_tables(image_rows, out)
    if training_rows:
        written += bench.write_training_tables(training_rows, out)
    if rows:
        written += bench.write_tables(rows, out)  # its README.md included
    else:
        outdirs.write_manifest(out, "benchmarks")
        written.append(bench.write_readme(out))
    for path in written:
        print(f"wrote {path}")
    return 0
