"""``ganrepro sweep``: check the grid, the frameworks, the executor and --runs, then run the sweep
(``ganrepro.sweep``) with a progress bar on stderr (none with --quiet) and print one summary line.

Loads no framework (the workers do).
"""
from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

from .. import impls
from ..errors import EnvironmentFault, UsageError
from ..grids import get_grid
from .common import PROG, check_out_flag, one_line

CUDA_JOBS = 4
"""Default worker processes on ``cuda``: each trains its stacks on the one GPU and scores them on its
CPU core, so a few processes keep the GPU busy while others score (spawned: CUDA is safe in each)."""


def validate(args: argparse.Namespace):
    """(grid, runs folder, executor, jobs): everything checked before any training."""
    from .. import sweep as sw

    grid = get_grid(args.grid)
    if getattr(args, "data_dir", None) is not None:
        import os

        os.environ["GANREPRO_DATA_DIR"] = str(args.data_dir)  # read by the loader, here and in the workers
    if grid.track == "image":
        from ..image.data import load_dataset

        for dataset in sorted({getattr(grid.config(v), "dataset", "") for v in grid.variants}):
            load_dataset(dataset)  # a missing or corrupt file exits 2 before any training
    frameworks = _frameworks(args, grid)
    if frameworks != grid.frameworks:
        grid = dataclasses.replace(grid, frameworks=frameworks)
    device = getattr(args, "device", "cpu")
    for framework in grid.frameworks:
        impls.check_framework(framework)
        impls.check_device(framework, device)  # DeviceUnavailable (exit 2) before any training
    sw.check_executor(args.executor)
    if args.ray_address is not None and args.executor != "ray":
        raise UsageError("--ray-address needs --executor ray")
    runs = check_out_flag(args.runs, "--runs")
    jobs = args.jobs or (min(CUDA_JOBS, sw.default_jobs()) if device == "cuda" else sw.default_jobs())
    return grid, runs, sw.make_executor(args.executor, jobs, args.ray_address), jobs


def _frameworks(args: argparse.Namespace, grid) -> tuple[str, ...]:
    """--frameworks: a comma-separated subset of the grid's frameworks (default: all of them)."""
    text = getattr(args, "frameworks", None)
    if text is None:
        return grid.frameworks
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    bad = [n for n in names if n not in grid.frameworks]
    if not names or bad:
        raise UsageError(f"--frameworks {text!r}: allowed: a comma-separated subset of the grid's "
                         f"{', '.join(grid.frameworks)}")
    return tuple(n for n in grid.frameworks if n in names)


def execute(args: argparse.Namespace, grid, runs: Path, executor, jobs: int) -> int:
    from .. import sweep as sw

    if not args.quiet:
        print(f"{PROG} sweep: {grid.describe()}; runs under {runs}; {args.executor} executor, {jobs} worker(s) "
              f"on {getattr(args, 'device', 'cpu')}",
              file=sys.stderr)
    try:
        summary = sw.sweep(grid, runs, executor=executor, max_stack=args.max_stack, progress=not args.quiet,
                           device=getattr(args, "device", "cpu"))
    except (UsageError, EnvironmentFault) as exc:  # locked, unusable --runs, full disk, read-only folder
        print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    print(summary_line(summary, runs))
    return 0


def summary_line(summary, runs: Path) -> str:
    """The sweep's last line, on stdout: what was trained, what was already stored, where."""
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) or "none"
    moved = f", {len(summary.quarantined)} moved to quarantine" if summary.quarantined else ""
    return (f"{PROG} sweep {summary.grid}: {summary.runs_done} run(s) trained ({statuses}), {summary.runs_skipped} "
            f"already stored{moved}, {summary.runs_total} in the grid ({summary.cells} cells); "
            f"{summary.seconds:.0f} s; runs under {runs}")
