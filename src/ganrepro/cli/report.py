"""``ganrepro report``: two commands behind one name, each a small dataclass built by :func:`validate`.

    BuildReport   ``report [--grid G] [--runs DIR] [--out DIR] [--no-html]``: the grid's stored runs
                  -> reports/<grid>/ (``ganrepro.report.build``)
    Animate       ``report --animate VARIANT [--framework F] [--seed K] [--frames N] [--out DIR]``:
                  train one run and write its GIF (``ganrepro.animate`` trains, ``ganrepro.report``
                  only draws)

Options of the other mode are refused (exit 2). Progress lines ``ganrepro report: ...`` go to
stderr (none with --quiet); the written path to stdout. Loads no framework until an animation
starts training.
"""
from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .. import impls, outdirs
from ..config import ExperimentConfig
from ..errors import EXIT_USAGE, UsageError
from ..grids import Grid, get_grid
from ..variants import get_variant
from .common import PROG, one_line

REPORT_ONLY = {"grid": "--grid", "runs": "--runs", "html": "--no-html"}
ANIMATE_ONLY = {"framework": "--framework", "seed": "--seed", "frames": "--frames"}
DEFAULT_FRAMEWORK, DEFAULT_SEED, DEFAULT_FRAMES = "torch", 0, 60


@dataclass(frozen=True)
class BuildReport:
    """The report of ``grid`` from the runs under ``runs``, into ``out``."""

    grid: Grid
    runs: Path
    out: Path
    html: bool

    def run(self, say: Callable[[str], None]) -> int:
        from ..report.build import IncompleteRunsError, build_report

        try:
            path = build_report(self.grid, self.runs, self.out, html=self.html, say=say)
        except IncompleteRunsError as exc:
            print(f"{PROG}: error: {one_line(exc)}", file=sys.stderr)
            return EXIT_USAGE
        print(f"wrote the report of grid {self.grid.name} to {path}")
        return 0


@dataclass(frozen=True)
class Animate:
    """The training animation of ``variant`` (``config``: its one seed) in ``framework``, into ``out``."""

    variant: str
    config: ExperimentConfig
    framework: str
    seed: int
    frames: int
    out: Path

    @property
    def file_name(self) -> str:
        return f"{self.variant.replace('/', '-')}-{self.framework}-seed{self.seed}.gif"

    def run(self, say: Callable[[str], None]) -> int:
        from ..animate import animate_run

        name = self.file_name
        say(f"training {self.variant} [{self.framework}] seed {self.seed} for about {self.frames} frames")

        def mark() -> None:  # once the GIF is rendered: the folder becomes ours, then the GIF lands
            outdirs.write_manifest(self.out, "animations")
            outdirs.remove_stale_temporaries(self.out, name)

        path = animate_run(self.config, self.framework, self.out / name, frames=self.frames, title=self.variant,
                           before_write=mark)
        print(f"wrote {path}")
        return 0


def _given_flags(args: argparse.Namespace, options: dict) -> list[str]:
    return [flag for dest, flag in options.items() if getattr(args, dest, None) is not None]


def validate(args: argparse.Namespace):
    """(BuildReport,) or (Animate,), everything checked; options of the other mode refused (exit 2)."""
    if args.animate is not None:
        return (_validate_animate(args),)
    return (_validate_report(args),)


def _validate_animate(args: argparse.Namespace) -> Animate:
    stray = _given_flags(args, REPORT_ONLY)
    if stray:
        raise UsageError(f"{' and '.join(stray)} {'does' if len(stray) == 1 else 'do'} not apply with --animate "
                         "(it trains its own run); leave "
                         f"{'it' if len(stray) == 1 else 'them'} out")
    framework = args.framework or DEFAULT_FRAMEWORK
    seed = DEFAULT_SEED if args.seed is None else args.seed
    frames = DEFAULT_FRAMES if args.frames is None else args.frames
    variant = get_variant(args.animate)
    if getattr(variant, "track", "1d") == "image":
        raise UsageError(f"--animate draws the 1D track's training animation; {variant.name} is an image variant "
                         "(its report has latent grids at checkpoints: ganrepro report --grid image)")
    config = variant.config(seeds=(seed,))
    impls.check_framework(framework)
    out = outdirs.claim(args.out if args.out is not None else str(Path("reports") / "animations"), "--out",
                        "animations")
    return Animate(args.animate, config, framework, seed, frames, out)


def _validate_report(args: argparse.Namespace) -> BuildReport:
    stray = _given_flags(args, ANIMATE_ONLY)
    if stray:
        raise UsageError(f"{' and '.join(stray)} appl{'ies' if len(stray) == 1 else 'y'} only with --animate "
                         "VARIANT; add --animate or leave "
                         f"{'it' if len(stray) == 1 else 'them'} out")
    grid = get_grid(args.grid if args.grid is not None else "default")
    if getattr(args, "data_dir", None) is not None:
        if grid.track != "image":
            raise UsageError(f"--data-dir applies to the image grids only; grid {grid.name!r} is a 1D grid")
        import os

        os.environ["GANREPRO_DATA_DIR"] = str(args.data_dir)  # the floor row reads the real images
    runs_text = args.runs if args.runs is not None else "runs"
    if not runs_text.strip():
        raise UsageError("--runs is empty; give the folder the sweep stored its runs in")
    runs = Path(runs_text)
    if not runs.is_dir():
        raise UsageError(f"--runs {runs_text!r} is not a folder; run 'ganrepro sweep --grid {grid.name} "
                         f"--runs {runs_text}' first")
    out = outdirs.claim(args.out if args.out is not None else str(Path("reports") / grid.name), "--out", "report",
                        avoid=[("--runs", runs_text)], swapped=True)
    return BuildReport(grid, runs, out, html=args.html is not False)


def execute(args: argparse.Namespace, job) -> int:
    """Run the validated :class:`BuildReport` or :class:`Animate`."""
    say = (lambda text: None) if args.quiet else (lambda text: print(f"{PROG} report: {text}", file=sys.stderr))
    return job.run(say)
