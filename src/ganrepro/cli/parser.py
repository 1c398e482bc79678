"""The ``ganrepro`` argument parser: every command's options, their types and ranges.

argparse, but every parse error is one line ``ganrepro: error: ...`` on stderr and exit status 2
(:class:`_Parser`); numbers are range-checked as they are parsed and kept as typed
(:class:`_Number`), so that a value refused later is echoed as the user wrote it. What each
command does with its options: ``ganrepro.cli.<command>``. Loads no framework.
"""
from __future__ import annotations

import argparse
import math
import re
from typing import Any

from .. import impls
from ..bench.cases import DEFAULT_OUT, MAX_BENCH_BATCH, QUICK_BATCH_SIZES
from ..bench.cases import FRAMEWORKS as BENCH_FRAMEWORKS
from ..config import (
    DTYPES,
    FEATURE_MATCHING,
    G_LOSSES,
    MAX_BATCH_SIZE,
    MAX_CURVE_INTERVAL,
    MAX_HIDDEN_SIZE,
    MAX_MBD_DIMS,
    MAX_MBD_KERNELS,
    MAX_PRETRAIN_STEPS,
    MAX_RUN_SEEDS,
    MAX_SEED,
    MAX_STEPS,
    MEMORY_LIMIT_BYTES,
    NOISE_SCHEDULES,
    NOISE_TARGETS,
    PROTOCOLS,
    RULES,
    SELF_TERMS,
)
from ..devices import DEFAULT_DEVICE, DEVICES
from ..errors import EXIT_USAGE
from ..grids import GRIDS
from ..image.config import DATASETS as IMAGE_DATASETS
from ..image.config import MAX_IMAGE_STEPS, MAX_Z_DIM
from ..image.config import MODELS as IMAGE_MODELS
from .common import PROG

PINNED_FRAMEWORKS = ("torch", "tensorflow-cpu")
MAX_FRAMES = 1000
"""--animate's frames: every frame is kept in memory as an image until the GIF is written."""


class _Parser(argparse.ArgumentParser):
    """argparse, but every error is one line on stderr and exit status 2."""

    def error(self, message: str):
        hint = f" (see '{self.prog} --help')"
        self.exit(EXIT_USAGE, f"{PROG}: error: {message}{hint}\n")


def _parse_number(text: str, kind: type = int, low=None, high=None) -> Any:
    """``text`` as an int or a finite float within [low, high]; ArgumentTypeError echoing ``text`` as typed."""
    if kind is int:
        what = ("an integer" + (f" in {low}..{high}" if low is not None and high is not None
                                else f" >= {low}" if low is not None else ""))
        try:
            integer = int(text)
        except ValueError:  # also a number of over 4300 digits
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if (low is not None and integer < low) or (high is not None and integer > high):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return integer
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):  # 1e400 overflows to inf: refused as typed, never echoed as "inf"
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _int_at_least(low: int, high: int | None = None):
    def parse(text: str) -> int:
        return _parse_number(text, int, low, high)

    parse.__name__ = f"integer >= {low}"
    return parse


class _Number(argparse.Action):
    """Store an int or float option parsed by :func:`_parse_number` and keep the text as typed in
    ``args.typed[dest]`` (so that a value refused later is echoed as the user wrote it)."""

    def __init__(self, option_strings, dest, kind=int, low=None, high=None, **kwargs):
        self.kind, self.low, self.high = kind, low, high
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        try:
            value = _parse_number(values, self.kind, self.low, self.high)
        except argparse.ArgumentTypeError as exc:
            raise argparse.ArgumentError(self, str(exc)) from None
        setattr(namespace, self.dest, value)
        typed = dict(getattr(namespace, "typed", None) or {})
        typed[self.dest] = values
        namespace.typed = typed


class _Version(argparse.Action):
    """``--version``: print :func:`version_text` on stdout and exit 0 (the metadata is read only then)."""

    def __call__(self, parser, namespace, values, option_string=None):
        print(version_text())
        parser.exit(0)


def version_text() -> str:
    """``ganrepro --version``: this package's version and the framework versions it pins (from the
    installed package's metadata; no framework is imported)."""
    from importlib import metadata

    from .. import __version__

    try:
        version = metadata.version("ganrepro")
        requires = metadata.requires("ganrepro") or []
    except metadata.PackageNotFoundError:
        version, requires = __version__, []
    pins = []
    for requirement in requires:
        spec = requirement.split(";")[0].strip()
        name = re.split(r"[\s\[=<>!~]", spec, maxsplit=1)[0]
        if name in PINNED_FRAMEWORKS and "==" in spec:
            try:
                installed = metadata.version(name)
            except metadata.PackageNotFoundError:
                installed = "not installed"
            pins.append(f"{spec.replace(' ', '')} (installed: {installed})")
    from .. import isa

    return (f"{PROG} {version}; pinned frameworks: {', '.join(pins) or 'none found in the package metadata'}\n"
            f"instruction set: {isa.describe()}")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Reproducibility suite for GAN training techniques on the 1D toy "
                                             "problem (G learns N(4, 0.5)), in twin PyTorch and TensorFlow "
                                             "implementations.")
    parser.add_argument("--version", action=_Version, nargs=0,
                        help="print ganrepro's version and the pinned framework versions, then exit")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    defaults = ", ".join(f"{p}: B={r.default_batch_size}, T={r.default_num_steps}, "
                         f"pretrain={r.default_pretrain_steps}, self term={r.default_self_term}"
                         for p, r in RULES.items())
    run = sub.add_parser(
        "run", help="train a stack of seeds of one config and score it",
        description="Train the seeds of one config as one stack in one framework, score each seed "
                    "(metrics of G on 10,000 fresh z ~ U(-8, 8)) and print a table, or JSON. "
                    f"Protocol defaults: {defaults}. Sizes are bounded before anything is allocated: besides "
                    f"each option's range, a run's estimated memory (seeds x batch x widths x steps) must stay "
                    f"under {MEMORY_LIMIT_BYTES // 2**30} GiB. An option that does not apply to the config "
                    "(e.g. --mbd-kernels without --minibatch) is refused; a value inherited from --variant that "
                    "no longer applies is reset to its default.")
    # Every option that sets a config field defaults to None: "not given", so that with --variant
    # only the options the user gave override the variant (see config_from_args).
    run.add_argument("--variant", default=None, metavar="NAME",
                     help="start from a named variant's config (see 'ganrepro variants'); the options "
                          "given explicitly override it")
    run.add_argument("--protocol", choices=PROTOCOLS, default=None,
                     help="reference protocol (default 2017, or the variant's)")
    run.add_argument("--minibatch", action=argparse.BooleanOptionalAction, default=None,
                     help="minibatch discrimination in D (default off, or the variant's)")
    run.add_argument("--mbd-self-term", choices=SELF_TERMS, default=None,
                     help="minibatch discrimination's self term (default: the protocol's)")
    run.add_argument("--mbd-kernels", action=_Number, kind=int, low=1, high=MAX_MBD_KERNELS, default=None,
                     metavar="K", help=f"minibatch discrimination kernels K, 1..{MAX_MBD_KERNELS} (default 5; "
                                       "only with --minibatch)")
    run.add_argument("--mbd-dims", action=_Number, kind=int, low=1, high=MAX_MBD_DIMS, default=None, metavar="C",
                     help=f"dimensions C of each minibatch kernel, 1..{MAX_MBD_DIMS} (default 3; only with "
                          "--minibatch)")
    run.add_argument("--framework", choices=tuple(impls.FRAMEWORKS), default="torch",
                     help="twin implementation to train with (default torch)")
    run.add_argument("--seeds", default=None, metavar="RANGE",
                     help=f"seeds to run as one stack, e.g. 0-7, 3 or 0-3,10, at most {MAX_RUN_SEEDS} seeds and "
                          f"{MEMORY_LIMIT_BYTES // 2**30} GiB by the suite's memory estimate (default 0)")
    run.add_argument("--steps", action=_Number, kind=int, low=1, high=MAX_STEPS, default=None, metavar="N",
                     help=f"training steps, 1..{MAX_STEPS} (default: the protocol's)")
    run.add_argument("--batch-size", action=_Number, kind=int, low=1, high=MAX_BATCH_SIZE, default=None, metavar="N",
                     help=f"batch size, 1..{MAX_BATCH_SIZE}, >= 2 with --minibatch (default: the protocol's)")
    run.add_argument("--hidden-size", action=_Number, kind=int, low=1, high=MAX_HIDDEN_SIZE, default=None,
                     metavar="N", help=f"G's hidden width h, 1..{MAX_HIDDEN_SIZE}; D's is 2h (default 4)")
    run.add_argument("--pretrain-steps", action=_Number, kind=int, low=0, high=MAX_PRETRAIN_STEPS, default=None,
                     metavar="N", help=f"D pretraining steps, 0..{MAX_PRETRAIN_STEPS} (default: the protocol's)")
    run.add_argument("--dtype", choices=DTYPES, default=None, help="float type (default float32)")
    run.add_argument("--curve-interval", action=_Number, kind=int, low=1, high=MAX_CURVE_INTERVAL, default=None,
                     metavar="N", help="record the training curves every N steps (default 10)")
    tech = run.add_argument_group(
        "techniques", "docs/techniques.md; all off by default (or as the variant sets them). "
                      "L_G = adversarial term + W * feature matching on D's last hidden layer.")
    tech.add_argument("--g-loss", choices=G_LOSSES, default=None,
                      help="G's adversarial term: mean(-log D(G(z))), mean(log(1 - D(G(z)))), or none "
                           "(needs --feature-matching) (default non_saturating)")
    tech.add_argument("--feature-matching", choices=FEATURE_MATCHING, default=None,
                      help="feature-matching term of G's loss: paired L2 (posts 000/001), paired squared L2, "
                           "or Salimans' squared distance of the batch means (default none)")
    tech.add_argument("--fm-weight", action=_Number, kind=float, default=None, metavar="W",
                      help="weight W of the feature-matching term, > 0 (default 1; only with --feature-matching)")
    tech.add_argument("--instance-noise", action=_Number, kind=float, default=None, metavar="S",
                      help="std S >= 0 of the Gaussian noise N(0, S^2), drawn fresh every step (default 0: off)")
    tech.add_argument("--noise-target", choices=NOISE_TARGETS, default=None,
                      help="d_inputs: D's inputs x and G(z), in both updates (instance noise proper); "
                           "z: x and G's input z, in D's update only (post 000's code) (default d_inputs; only "
                           "with --instance-noise > 0)")
    tech.add_argument("--noise-schedule", choices=NOISE_SCHEDULES, default=None,
                      help="constant S, or S annealed to zero linearly or exponentially (default constant; only "
                           "with --instance-noise > 0)")
    tech.add_argument("--noise-anneal-steps", action=_Number, kind=int, low=0, high=MAX_STEPS + 1, default=None,
                      metavar="T", help="steps over which the noise is annealed to zero, at most the run's "
                                        "(default 0: the whole run; only with --noise-schedule linear|exponential)")
    tech.add_argument("--label-smoothing", action=_Number, kind=float, default=None, metavar="ALPHA",
                      help="one-sided label smoothing: D's real target ALPHA in (0, 1] (default 1: off)")
    tech.add_argument("--historical-averaging", action=_Number, kind=float, default=None, metavar="LAMBDA",
                      help="historical averaging: each player's loss gains "
                           "LAMBDA * ||theta - mean of past theta||^2, LAMBDA >= 0 (default 0: off)")
    image = run.add_argument_group(
        "image track", "post 004's GANs on digit images (docs/images.md); any of these options, or an image "
                       "variant (post004/...), selects the image track, where the 1D-only options (--protocol, "
                       "--minibatch and the mbd options, --hidden-size, --pretrain-steps and the techniques "
                       "other than --g-loss) do not apply")
    image.add_argument("--dataset", choices=IMAGE_DATASETS, default=None,
                       help="digits8 (scikit-learn's 8x8 digits, offline; the default), mnist or fashion-mnist "
                            "(28x28 IDX files from --data-dir)")
    image.add_argument("--model", choices=IMAGE_MODELS, default=None,
                       help="linear (two fully connected layers) or dcgan (default dcgan)")
    image.add_argument("--z-dim", action=_Number, kind=int, low=1, high=MAX_Z_DIM, default=None, metavar="N",
                       help=f"latent size, 1..{MAX_Z_DIM} (default 2)")
    image.add_argument("--freeze-g", action=argparse.BooleanOptionalAction, default=None,
                       help="train D alone against G's initial weights (post 004's frozen-G experiment)")
    image.add_argument("--checkpoint-interval", action=_Number, kind=int, low=1, high=MAX_IMAGE_STEPS + 1,
                       default=None, metavar="N", help="evaluate G on the latent grid every N steps (default 100)")
    image.add_argument("--data-dir", default=None, metavar="DIR",
                       help="where the IDX files of mnist / fashion-mnist are (default: $GANREPRO_DATA_DIR); "
                            "'ganrepro data download NAME --data-dir DIR' fetches them")
    run.add_argument("--device", choices=DEVICES, default=DEFAULT_DEVICE,
                     help="where to train and score: cpu (default) or cuda (PyTorch on an NVIDIA GPU; TensorFlow "
                          "where its installed build sees one); the seeds' draws are the same on both")
    run.add_argument("--json", action="store_true",
                     help="print one JSON document (config, per-seed metrics, timings, versions, floor)")
    run.add_argument("--out", default=None, metavar="DIR",
                     help="save each run under DIR/<slug>/<framework>/seed-<k>/; DIR must be new, empty, or "
                          "written by 'ganrepro run --out' before (it holds .ganrepro-output.json)")
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")

    variants = sub.add_parser(
        "variants", help="list the named variants (the source posts' experiments) and their configs",
        description="The named variants: the experiments of the source posts (post 000 to post 004; "
                    "docs/sources.md lists their titles and addresses) by stable names, each with "
                    "its full config (fields marked * differ from the protocol's defaults). "
                    "'ganrepro run --variant NAME' runs one; explicit options override it.")
    variants.add_argument("name", nargs="?", default=None, metavar="NAME", help="show only this variant")
    variants.add_argument("--track", choices=("1d", "image"), default="1d",
                          help="list the 1D track's variants (default) or the image track's (post 004, docs/images.md)")
    variants.add_argument("--json", action="store_true",
                          help="print a JSON list of {name, description, source, identity, slug, same_as, config}")
    grid_names = ", ".join(f"{g.name} ({g.description})" for g in GRIDS.values())
    sweep = sub.add_parser(
        "sweep", help="train a grid of variants x frameworks x seeds, resumably",
        description="Train every run of a grid not yet stored under --runs and store one record per run "
                    "(DIR/<slug>/<framework>/seed-<k>/). Interrupted at any moment (even kill -9), it resumes "
                    f"where it stopped. Grids: {grid_names}.")
    sweep.add_argument("--grid", default="default", metavar="NAME", help=f"the grid to run: {', '.join(GRIDS)} "
                                                                          "(default: default)")
    sweep.add_argument("--runs", default="runs", metavar="DIR", help="where runs are stored (default: runs)")
    sweep.add_argument("--jobs", type=_int_at_least(1), default=None, metavar="N",
                       help="parallel workers (default: every core this process may use; at most 4 on cuda)")
    sweep.add_argument("--executor", default="local", metavar="NAME",
                       help="local (worker processes on this machine, the default) or ray (a Ray cluster; "
                            "pip install 'ganrepro[ray]')")
    sweep.add_argument("--ray-address", default=None, metavar="ADDR",
                       help="the Ray cluster to join (default: start a local Ray instance of --jobs CPUs)")
    sweep.add_argument("--max-stack", type=_int_at_least(1), default=None, metavar="N",
                       help="seeds trained together as one stack, at most (default: the grid's, 32 for "
                            "the small grids)")
    sweep.add_argument("--device", choices=DEVICES, default=DEFAULT_DEVICE,
                       help="where to train and score: cpu (default) or cuda; a runs folder holds one device's runs")
    sweep.add_argument("--frameworks", default=None, metavar="NAMES",
                       help="only these of the grid's frameworks, comma-separated (default: all of the grid's)")
    sweep.add_argument("--data-dir", default=None, metavar="DIR",
                       help="image grids on mnist / fashion-mnist: where their IDX files are "
                            "(default: $GANREPRO_DATA_DIR)")
    sweep.add_argument("--quiet", action="store_true", help="no progress bar")

    report = sub.add_parser(
        "report", help="turn a grid's stored runs into reports/<grid>/ (Markdown, CSV, PNG, HTML)",
        description="Build the comparison report of a grid from its stored runs: per variant and framework "
                    "the median, IQR and IQM with bootstrap interval of KS, W1 and KDE log-likelihood; divergence "
                    "and collapse rates; each technique against its baseline; TF vs PyTorch seed by seed; "
                    "figures. With --animate, write the training animation of one run instead.")
    report.add_argument("--grid", default=None, metavar="NAME",
                        help=f"the grid to report: {', '.join(GRIDS)} (default: default; not with --animate)")
    report.add_argument("--runs", default=None, metavar="DIR", help="where the sweep stored its runs "
                                                                     "(default: runs; not with --animate)")
    report.add_argument("--out", default=None, metavar="DIR",
                        help="the report folder (default: reports/<grid>; with --animate: reports/animations); "
                             "new, empty, or written by the same command before (it holds "
                             ".ganrepro-output.json); never the runs folder, inside it or around it")
    report.add_argument("--no-html", dest="html", action="store_false", default=None,
                        help="skip index.html (not with --animate)")
    report.add_argument("--animate", default=None, metavar="VARIANT",
                        help="train one run of VARIANT and write its training animation (GIF)")
    report.add_argument("--framework", choices=tuple(impls.FRAMEWORKS), default=None,
                        help="only with --animate: the framework (default torch)")
    report.add_argument("--seed", type=_int_at_least(0, MAX_SEED), default=None, metavar="K",
                        help=f"only with --animate: the seed, 0..{MAX_SEED} (default 0)")
    report.add_argument("--frames", type=_int_at_least(2, MAX_FRAMES), default=None, metavar="N",
                        help=f"only with --animate: about how many frames, 2..{MAX_FRAMES} (default 60)")
    report.add_argument("--data-dir", default=None, metavar="DIR",
                        help="image grids on mnist / fashion-mnist: where their IDX files are, for the real-images "
                             "floor (default: $GANREPRO_DATA_DIR)")
    report.add_argument("--quiet", action="store_true", help="no progress lines")

    add_bench_parser(sub)
    from .data import add_parser as add_data_parser

    add_data_parser(sub)
    return parser


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


def add_bench_parser(subparsers) -> argparse.ArgumentParser:
    """Add the ``bench`` subcommand to an argparse subparsers object."""
    from ..bench import PARTS as BENCH_PARTS
    from ..bench.training_steps import QUICK_STACKS as TRAINING_QUICK_STACKS
    from ..bench.training_steps import QUICK_STEPS as TRAINING_QUICK_STEPS
    from ..bench.training_steps import STACKS as TRAINING_STACKS

    bench = subparsers.add_parser(
        "bench", help="benchmark the minibatch-discrimination layer and the training step; write tables to "
                      "reports/benchmarks",
        description="Time the minibatch-discrimination layer (reference and production formulations, "
                    "forward and forward+backward) per framework, batch size and device, the twins' training "
                    f"step per protocol and stack size ({', '.join(f'{s:,}' for s in TRAINING_STACKS)} seeds, "
                    "beside a plain eager baseline of the same step), and the image track's training step, one "
                    "core, and write CSV and Markdown tables and log-log plots per device.")
    bench.add_argument("--parts", default=",".join(BENCH_PARTS), metavar="PART,...",
                       help=f"what to measure, comma-separated: {', '.join(BENCH_PARTS)} (default all)")
    bench.add_argument("--device", choices=("cpu", "cuda", "all"), default=None,
                       help="cpu, cuda, or all (default: cpu, plus cuda when PyTorch sees one)")
    bench.add_argument("--batch-sizes", type=_batch_list, default=None, metavar="B,B,...",
                       help=f"distinct batch sizes, each in 2..{MAX_BENCH_BATCH} (default 8,16,...,4096, plus 8192 "
                            "where memory allows)")
    bench.add_argument("--frameworks", default=",".join(BENCH_FRAMEWORKS), metavar="NAME,...",
                       help="frameworks to measure (default torch,tf)")
    bench.add_argument("--torch-capability", choices=("default", "native"), default="default",
                       help="ATen's CPU kernels: default (scalar, as training runs) or native SIMD")
    bench.add_argument("--quick", action="store_true",
                       help=f"a short run (batch sizes {QUICK_BATCH_SIZES}, stack sizes {TRAINING_QUICK_STACKS} with "
                            f"{TRAINING_QUICK_STEPS} steps, few rounds) for CI and tests")
    bench.add_argument("--out", default=DEFAULT_OUT, metavar="DIR",
                       help=f"output folder (default {DEFAULT_OUT}): new, empty, or one that 'ganrepro bench' "
                            "wrote (it holds .ganrepro-output.json); any other folder is refused")
    return bench
