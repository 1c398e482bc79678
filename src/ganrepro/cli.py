"""The ``ganrepro`` command line (also ``python -m ganrepro``).

    ganrepro run [--variant NAME] [--protocol 2016|2017] [--[no-]minibatch]
                 [--mbd-self-term exp-1|exp0|none] [--mbd-kernels K] [--mbd-dims C]
                 [--g-loss non_saturating|saturating|none]
                 [--feature-matching none|paired_l2|paired_sq|mean_sq] [--fm-weight W]
                 [--instance-noise S] [--noise-target d_inputs|z]
                 [--noise-schedule constant|linear|exponential] [--noise-anneal-steps T]
                 [--label-smoothing ALPHA] [--historical-averaging LAMBDA]
                 [--framework torch|tf] [--seeds 0-7] [--steps N] [--batch-size N]
                 [--hidden-size N] [--pretrain-steps N] [--dtype float32|float64]
                 [--curve-interval N] [--json] [--out DIR] [--quiet]
    ganrepro variants [NAME] [--json]
    ganrepro sweep [--grid default|smoke] [--runs DIR] [--jobs N] [--executor local|ray]
                   [--ray-address ADDR] [--max-stack N] [--quiet]
    ganrepro report [--grid default|smoke] [--runs DIR] [--out DIR] [--no-html] [--quiet]
    ganrepro report --animate VARIANT [--framework torch|tf] [--seed K] [--frames N] [--out DIR]
    ganrepro bench [--device cpu|cuda|all] [--batch-sizes B,B,...] [--frameworks torch,tf]
                   [--torch-capability default|native] [--quick] [--out DIR]

``run --variant NAME`` starts from a named variant's config (``ganrepro variants`` lists them);
every option given explicitly overrides it, options not given leave it alone. Without a variant
the config starts from the protocol's defaults (PROTOCOLS.md section 7).

Everything is validated (config built, framework checked, --out checked) before any training
or writing; a bad value exits with status 2 and one line ``ganrepro: error: ...`` on stderr.
The range checks of the numbers and the rules between the technique switches are
ExperimentConfig's (``ConfigError``).
Importing this module loads no framework: torch or tensorflow is imported only when ``run``
starts training (``bench`` measures in worker processes of its own, see ``ganrepro.bench``).
"""
from __future__ import annotations

import argparse
import math
import os
import re
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from . import bench, impls, outdirs
from .config import (DTYPES, FEATURE_MATCHING, G_LOSSES, MAX_BATCH_SIZE, MAX_CURVE_INTERVAL, MAX_HIDDEN_SIZE,
                     MAX_MBD_DIMS, MAX_MBD_KERNELS, MAX_PRETRAIN_STEPS, MAX_RUN_SEEDS, MAX_SEED, MAX_STEPS,
                     MEMORY_LIMIT_BYTES,
                     NOISE_SCHEDULES, NOISE_TARGETS, PROTOCOLS, RULES, SELF_TERMS, ConfigError, ExperimentConfig,
                     format_seeds, inert_fields, make_config, parse_seeds)
from .errors import EXIT_ENVIRONMENT, EXIT_USAGE, EnvironmentFault, UsageError
from .grids import GRIDS, get_grid
from .variants import VARIANTS, Variant, get_variant, variant_names

PROG = "ganrepro"
PINNED_FRAMEWORKS = ("torch", "tensorflow-cpu")
MAX_FRAMES = 1000
"""--animate's frames: every frame is kept in memory as an image until the GIF is written."""


class _Parser(argparse.ArgumentParser):
    """argparse, but every error is one line on stderr and exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        hint = f" (see '{self.prog} --help')"
        self.exit(EXIT_USAGE, f"{PROG}: error: {message}{hint}\n")


def _parse_number(text: str, kind=int, low=None, high=None):
    """``text`` as an int or a finite float within [low, high]; ArgumentTypeError echoing ``text`` as typed."""
    if kind is int:
        what = ("an integer" + (f" in {low}..{high}" if low is not None and high is not None
                                else f" >= {low}" if low is not None else ""))
        try:
            value = int(text)
        except ValueError:  # also a number of over 4300 digits
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}") from None
        if (low is not None and value < low) or (high is not None and value > high):
            raise argparse.ArgumentTypeError(f"must be {what}, got {text!r}")
        return value
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value):  # 1e400 overflows to inf: refused as typed, never echoed as "inf"
        raise argparse.ArgumentTypeError(f"expected a finite number, got {text!r}")
    return value


def _int_at_least(low: int, high: Optional[int] = None):
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

    from . import __version__

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
    from . import isa

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
        "techniques", "PROTOCOLS.md section 8; all off by default (or as the variant sets them). "
                      "L_G = adversarial term + W * feature matching on D's last hidden layer.")
    tech.add_argument("--g-loss", choices=G_LOSSES, default=None,
                      help="G's adversarial term: mean(-log D(G(z))), mean(log(1 - D(G(z)))), or none "
                           "(needs --feature-matching) (default non_saturating)")
    tech.add_argument("--feature-matching", choices=FEATURE_MATCHING, default=None,
                      help="feature-matching term of G's loss: paired L2 (seeds 000/001), paired squared L2, "
                           "or Salimans' squared distance of the batch means (default none)")
    tech.add_argument("--fm-weight", action=_Number, kind=float, default=None, metavar="W",
                      help="weight W of the feature-matching term, > 0 (default 1; only with --feature-matching)")
    tech.add_argument("--instance-noise", action=_Number, kind=float, default=None, metavar="S",
                      help="std S >= 0 of the Gaussian noise N(0, S^2), drawn fresh every step (default 0: off)")
    tech.add_argument("--noise-target", choices=NOISE_TARGETS, default=None,
                      help="d_inputs: D's inputs x and G(z), in both updates (instance noise proper); "
                           "z: x and G's input z, in D's update only (seed 000's code) (default d_inputs; only "
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
    run.add_argument("--json", action="store_true",
                     help="print one JSON document (config, per-seed metrics, timings, versions, floor)")
    run.add_argument("--out", default=None, metavar="DIR",
                     help="save each run under DIR/<slug>/<framework>/seed-<k>/; DIR must be new, empty, or "
                          "written by 'ganrepro run --out' before (it holds .ganrepro-output.json)")
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")

    variants = sub.add_parser(
        "variants", help="list the named variants (the seed posts' experiments) and their configs",
        description="The named variants: the experiments of the seed posts by stable names, each with "
                    "its full config (fields marked * differ from the protocol's defaults). "
                    "'ganrepro run --variant NAME' runs one; explicit options override it.")
    variants.add_argument("name", nargs="?", default=None, metavar="NAME", help="show only this variant")
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
                       help="parallel workers (default: every core this process may use)")
    sweep.add_argument("--executor", default="local", metavar="NAME",
                       help="local (worker processes on this machine, the default) or ray (a Ray cluster; "
                            "pip install 'ganrepro[ray]')")
    sweep.add_argument("--ray-address", default=None, metavar="ADDR",
                       help="the Ray cluster to join (default: start a local Ray instance of --jobs CPUs)")
    sweep.add_argument("--max-stack", type=_int_at_least(1), default=32, metavar="N",
                       help="seeds trained together as one stack, at most (default 32)")
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
    report.add_argument("--quiet", action="store_true", help="no progress lines")

    bench.add_parser(sub)
    return parser


# ---- validation -----------------------------------------------------------------------------
def _check_out(path_text: str) -> Path:
    return _check_out_flag(path_text, "--out")


def _check_out_flag(path_text: str, flag: str) -> Path:
    """``flag`` must be (or become) a writable folder: not a file, its first existing ancestor a folder.

    An empty value is refused (it would silently mean the current folder)."""
    if not str(path_text).strip():
        raise UsageError(f"{flag} is empty; give a folder path")
    path = Path(path_text)
    if path.exists() and not path.is_dir():
        raise UsageError(f"{flag} {path_text!r} exists and is not a folder; give a folder path")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UsageError(f"{flag} {path_text!r} cannot be created: {str(probe)!r} is a file, not a folder")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"{flag} {path_text!r} is not writable (no write permission on {str(probe)!r})")
    return path


OPTION_FIELDS = {
    # run's option dest -> the ExperimentConfig field it sets
    "protocol": "protocol", "minibatch": "minibatch", "mbd_self_term": "mbd_self_term",
    "mbd_kernels": "mbd_kernels", "mbd_dims": "mbd_dims", "steps": "num_steps", "batch_size": "batch_size",
    "hidden_size": "hidden_size", "pretrain_steps": "pretrain_steps", "dtype": "dtype",
    "curve_interval": "curve_interval", "g_loss": "g_loss", "feature_matching": "feature_matching",
    "fm_weight": "fm_weight", "instance_noise": "instance_noise", "noise_target": "noise_target",
    "noise_schedule": "noise_schedule", "noise_anneal_steps": "noise_anneal_steps",
    "label_smoothing": "label_smoothing", "historical_averaging": "historical_averaging",
}
FIELD_FLAGS = {fld: "--" + dest.replace("_", "-") for dest, fld in OPTION_FIELDS.items()}
FIELD_FLAGS["seeds"] = "--seeds"
FIELD_DEST = {fld: dest for dest, fld in OPTION_FIELDS.items()}
SWITCH_FLAGS = {
    # what an option that does not apply needs (config.inert_fields' switches)
    "minibatch": "--minibatch",
    "feature_matching": "--feature-matching paired_l2, paired_sq or mean_sq",
    "instance_noise": "--instance-noise > 0",
    "noise_schedule": "--noise-schedule linear or exponential (not 'constant')",
}
_GOT = re.compile(r"^(?P<rule>.*), got (?P<value>[^,;]*)$")
_FIELD_WORD = re.compile(r"\b(" + "|".join(sorted((f for f in FIELD_FLAGS if "_" in f), key=len, reverse=True))
                         + r")\b")


def given_options(args: argparse.Namespace) -> dict:
    """The config fields the user set explicitly on the command line (options left at None are not);
    ``ConfigError`` for a malformed --seeds."""
    given = {fld: getattr(args, dest) for dest, fld in OPTION_FIELDS.items() if getattr(args, dest, None) is not None}
    if getattr(args, "seeds", None) is not None:
        given["seeds"] = parse_seeds(args.seeds)
    return given


def config_from_args(args: argparse.Namespace) -> ExperimentConfig:
    """The ExperimentConfig the options name (ConfigError on a bad value, naming the option).

    With --variant: the variant's config with the explicitly given options applied on top (a
    given --protocol starts from that protocol's defaults, the variant's switches kept). Without:
    the protocol's defaults (2017 unless given) with the given options.

    Options that do not apply to the resulting config (``config.inert_fields``: --mbd-kernels,
    --mbd-dims, --mbd-self-term without --minibatch; --fm-weight without feature matching;
    --noise-target, --noise-schedule without instance noise; --noise-anneal-steps with a constant
    schedule) are refused with a ``UsageError`` naming the option and what it needs, even at their
    default value. A value inherited from the variant that no longer applies (e.g. seed 000's noise
    target z after ``--instance-noise 0``) is reset to its default: a config never stores an inert value.
    """
    variant = get_variant(args.variant) if getattr(args, "variant", None) is not None else None
    note = f" (starting from --variant {variant.name})" if variant is not None else ""
    given = {}
    try:
        given = given_options(args)
        values = {**(variant.overrides if variant is not None else {}), **given}
        for name, switch in inert_fields(values).items():
            if name in given:
                raise UsageError(f"{FIELD_FLAGS[name]} applies only with {SWITCH_FLAGS[switch]}{note}")
            values.pop(name, None)  # inherited from the variant: back to the default
        return make_config(values.pop("protocol", "2017"), **values)
    except ConfigError as exc:
        raise ConfigError(_option_message(exc, args, given) + note, exc.field) from None


def _option_message(exc: ConfigError, args: argparse.Namespace, given: dict) -> str:
    """``exc``'s message naming the command-line option rather than the field (--mbd-kernels, not
    mbd_kernels), and echoing a value the user typed as typed (``--fm-weight: ... got '1e-3'``)."""
    message = str(exc)
    field_name = getattr(exc, "field", None)
    typed = (getattr(args, "typed", None) or {}).get(FIELD_DEST.get(field_name, ""))
    if field_name == "seeds" and getattr(args, "seeds", None) is not None:
        given, typed = {**given, "seeds": None}, args.seeds
    if field_name in given and field_name in FIELD_FLAGS:
        flag = FIELD_FLAGS[field_name]
        m = _GOT.match(message)
        if typed is not None and m:
            return f"{flag}: {_FIELD_WORD.sub(lambda w: FIELD_FLAGS[w.group(1)], m.group('rule'))}, got {typed!r}"
        message = _FIELD_WORD.sub(lambda w: FIELD_FLAGS[w.group(1)], message)
        return message if flag in message else f"{flag}: {message}"
    return _FIELD_WORD.sub(lambda w: FIELD_FLAGS[w.group(1)], message)


# ---- output -----------------------------------------------------------------------------------
class _Progress:
    """``done/total`` steps on stderr: rewritten in place on a terminal, one line per chunk otherwise."""

    def __init__(self, label: str, stream=None):
        self.label, self.stream = label, stream or sys.stderr
        self.tty = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.t0 = time.perf_counter()
        self.open = False

    def start(self, text: str) -> None:
        self._emit(f"{self.label}: {text}")

    def __call__(self, done: int, total: int) -> None:
        pct = 100.0 * done / total if total else 100.0
        self._emit(f"{self.label}: {done}/{total} steps ({pct:.0f}%), {time.perf_counter() - self.t0:.1f} s")

    def _emit(self, line: str) -> None:
        if self.tty:
            self.stream.write("\r\x1b[K" + line)
            self.open = True
        else:
            self.stream.write(line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.open:
            self.stream.write("\n")
            self.stream.flush()
            self.open = False


def _fmt(value, width: int, digits: int = 4) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-".rjust(width)
    if v != v:  # nan
        return "nan".rjust(width)
    return f"{v:{width}.{digits}f}"


def _kde_cell(ll, stderr) -> str:
    cell = _fmt(ll, 9)
    if stderr is not None:
        try:
            s = float(stderr)
        except (TypeError, ValueError):
            s = float("nan")
        if s == s:
            return f"{cell} ± {s:.4f}"
    return f"{cell}         "


def _median(records: list[dict], key: str) -> float:
    import numpy as np

    values = np.array([float(r["metrics"].get(key, float("nan"))) for r in records], dtype=float)
    values = values[np.isfinite(values)]
    return float(np.median(values)) if values.size else float("nan")


def format_table(config, framework: str, records: list[dict], timings: dict, floor: dict,
                 variant: Optional[str] = None) -> str:
    """The default report: a header line, one row per seed, then the floor and median rows.

    The header's identity names every technique switch that differs from the defaults.
    """
    total = sum(float(timings.get(k, 0.0)) for k in ("pretrain_s", "train_s", "evaluate_s"))
    named = f"  variant={variant}" if variant else ""
    header = (f"{config.identity}{named}  framework={framework}  training {total:.2f} s "
              f"(pretrain {float(timings.get('pretrain_s', 0.0)):.2f} s, "
              f"train {float(timings.get('train_s', 0.0)):.2f} s, "
              f"evaluate {float(timings.get('evaluate_s', 0.0)):.2f} s; {len(records)} seed(s) stacked)")
    cols = f"{'seed':>10}  {'status':<9} {'KS':>8} {'W1':>8} {'KDE LL (± stderr)':>19} {'mean':>8} {'std':>8}"

    def row(label, status, m):
        return (f"{label:>10}  {status:<9} {_fmt(m.get('ks'), 8)} {_fmt(m.get('w1'), 8)} "
                f"{_kde_cell(m.get('kde_ll'), m.get('kde_ll_stderr'))} {_fmt(m.get('mean'), 8)} "
                f"{_fmt(m.get('std'), 8)}")

    lines = [header, cols, "-" * len(cols)]
    for r in records:
        lines.append(row(str(r["seed"]), r["status"], r["metrics"]))
    lines.append("-" * len(cols))
    lines.append(row("floor", "perfect", floor))
    n_ok = sum(r["status"] == "ok" for r in records)
    med = {k: _median(records, k) for k in ("ks", "w1", "kde_ll", "mean", "std")}
    lines.append(row("median", f"{n_ok}/{len(records)} ok", med))
    return "\n".join(lines)


def json_document(config, framework: str, records: list[dict], floor: dict, out: Optional[Path],
                  variant: Optional[str] = None) -> dict:
    first = records[0]
    return {
        "config": config.to_dict(),
        "identity": config.identity,
        "slug": config.slug,
        "variant": variant,
        "framework": framework,
        "device": first["device"],
        "timings": first["timings"],
        "versions": first["versions"],
        "runs": [{"seed": r["seed"], "status": r["status"], "metrics": r["metrics"]} for r in records],
        "floor": {"source": "published", "metrics": floor},
        "out": str(out) if out is not None else None,
    }


# ---- commands ---------------------------------------------------------------------------------
def validate_run(args: argparse.Namespace):
    """Everything ``run`` needs checked before any work: (config, out folder or None)."""
    config = config_from_args(args)
    impls.check_framework(args.framework)
    out = outdirs.claim(args.out, "--out", "runs") if args.out is not None else None
    return config, out


def cmd_run(args: argparse.Namespace, config, out: Optional[Path]) -> int:
    from . import records as rec
    from .metrics import MU, PUBLISHED_FLOOR, SIGMA
    from .training import train

    show_progress = not (args.quiet or args.json)
    progress = _Progress(f"{PROG} {config.identity} [{args.framework}]") if show_progress else None
    try:
        if progress:
            progress.start("pretraining D, then training" if config.pretrain_steps else "training")
        output = train(config, args.framework, progress=progress)
    finally:
        if progress:
            progress.close()
    records = rec.score(output)
    try:
        if out is not None:
            outdirs.write_manifest(out, "runs")
        saved = rec.save_runs(output, records, out) if out is not None else []
    except OSError as exc:
        raise outdirs.fault(exc, f"could not save the runs under {str(out)!r}") from None

    floor = dict(PUBLISHED_FLOOR)
    if args.json:
        print(rec.dumps(json_document(config, args.framework, records, floor, out, variant=args.variant)))
    else:
        # The table's floor row shows the target's mean and std: a perfect generator's.
        print(format_table(config, args.framework, records, output.timings, {"mean": MU, "std": SIGMA, **floor},
                           variant=args.variant))
        if saved:
            print(f"saved {len(saved)} run(s) under {out / config.slug / args.framework}")
    return 0


CONFIG_GROUPS = (
    ("run", ("protocol", "batch_size", "num_steps", "pretrain_steps", "hidden_size", "dtype", "curve_interval",
             "seeds")),
    ("minibatch", ("minibatch", "mbd_kernels", "mbd_dims", "mbd_self_term")),
    ("G loss", ("g_loss", "feature_matching", "fm_weight")),
    ("noise", ("instance_noise", "noise_target", "noise_schedule", "noise_anneal_steps")),
    ("D, both", ("label_smoothing", "historical_averaging")),
)


def _value_text(name: str, value) -> str:
    if name == "seeds":
        return format_seeds(value)
    return str(value)


def same_experiment(name: str) -> list[str]:
    """The other variants whose config equals ``name``'s (the same experiment, named from another post)."""
    config = VARIANTS[name].config()
    return [n for n in variant_names() if n != name and VARIANTS[n].config() == config]


def format_config(config: ExperimentConfig, indent: str = "    ") -> list[str]:
    """Every field of ``config``, grouped, ``*`` on those that differ from the protocol's defaults."""
    defaults = make_config(config.protocol).to_dict()
    values = config.to_dict()
    groups = [(label, [f for f in fields if f in values]) for label, fields in CONFIG_GROUPS]
    listed = {f for _, fields in groups for f in fields}
    rest = [f for f in values if f not in listed]  # a field added to the config later still shows
    if rest:
        groups.append(("other", rest))
    rules = config.rules
    derived = (f"{config.activation} D, {config.optimizer}, {'clipped' if rules.clip_log else 'plain'} log, "
               f"{config.iterations} iterations")
    width = max(len(label) for label, _ in groups) + 1
    lines = []
    for label, fields in groups:
        cells = [f"{f}={_value_text(f, values[f])}{'*' if values[f] != defaults.get(f) else ''}" for f in fields]
        extra = f"  ({derived})" if label == "run" else ""
        lines.append(f"{indent}{label + ':':<{width}} {' '.join(cells)}{extra}")
    return lines


def variant_entry(variant: Variant) -> dict:
    config = variant.config()
    return {"name": variant.name, "description": variant.description, "source": variant.source,
            "identity": config.identity, "slug": config.slug, "same_as": same_experiment(variant.name),
            "config": config.to_dict()}


def format_variant(variant: Variant) -> str:
    config = variant.config()
    lines = [variant.name, f"    {variant.description}", f"    source:   ../shared/{variant.source}",
             f"    identity: {config.identity}"]
    same = same_experiment(variant.name)
    if same:
        lines.append(f"    same experiment as: {', '.join(same)}")
    lines.extend(format_config(config))
    return "\n".join(lines)


def validate_variants(args: argparse.Namespace):
    """The variants to show: all, or the one named (ConfigError for an unknown name)."""
    chosen = [get_variant(args.name)] if args.name is not None else list(VARIANTS.values())
    for v in chosen:  # every config is built (and so validated) before anything is printed
        v.config()
    return (chosen,)


def cmd_variants(args: argparse.Namespace, chosen: list[Variant]) -> int:
    if args.json:
        from . import records as rec

        print(rec.dumps([variant_entry(v) for v in chosen]))
        return 0
    blocks = [format_variant(v) for v in chosen]
    if args.name is None:
        blocks.insert(0, f"{len(chosen)} variants ('ganrepro run --variant NAME' runs one; explicit options "
                         "override it). Fields marked * differ from the protocol's defaults.")
    print("\n\n".join(blocks))
    return 0


def _check_frameworks(frameworks) -> None:
    for framework in frameworks:
        impls.check_framework(framework)


def validate_sweep(args: argparse.Namespace):
    """(grid, runs folder, executor): everything checked before any training."""
    from . import sweep as sw

    grid = get_grid(args.grid)
    _check_frameworks(grid.frameworks)
    sw.check_executor(args.executor)
    if args.ray_address is not None and args.executor != "ray":
        raise UsageError("--ray-address needs --executor ray")
    runs = _check_out_flag(args.runs, "--runs")
    jobs = args.jobs or sw.default_jobs()
    return grid, runs, sw.make_executor(args.executor, jobs, args.ray_address), jobs


def cmd_sweep(args: argparse.Namespace, grid, runs: Path, executor, jobs: int) -> int:
    from . import sweep as sw

    if not args.quiet:
        print(f"{PROG} sweep: {grid.describe()}; runs under {runs}; {args.executor} executor, {jobs} worker(s)",
              file=sys.stderr)
    from .errors import EnvironmentFault
    from .errors import UsageError as StoreError

    try:
        summary = sw.sweep(grid, runs, executor=executor, max_stack=args.max_stack,
                           progress=None if args.quiet else sw.SweepProgress)
    except (StoreError, EnvironmentFault) as exc:  # locked, unusable --runs, full disk, read-only folder
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return exc.exit_code
    statuses = ", ".join(f"{n} {s}" for s, n in sorted(summary.statuses.items())) or "none"
    moved = f", {len(summary.quarantined)} moved to quarantine" if summary.quarantined else ""
    print(f"{PROG} sweep {grid.name}: {summary.runs_done} run(s) trained ({statuses}), {summary.runs_skipped} "
          f"already stored{moved}, {summary.runs_total} in the grid ({summary.cells} cells); "
          f"{summary.seconds:.0f} s; runs under {runs}")
    return 0


REPORT_ONLY = {"grid": "--grid", "runs": "--runs", "html": "--no-html"}
ANIMATE_ONLY = {"framework": "--framework", "seed": "--seed", "frames": "--frames"}


def _given_flags(args: argparse.Namespace, options: dict) -> list[str]:
    return [flag for dest, flag in options.items() if getattr(args, dest, None) is not None]


def validate_report(args: argparse.Namespace):
    """(mode, ...): the grid, runs and out folder of a report, or the config and out folder of an
    animation; options of the other mode are refused (exit 2)."""
    if args.animate is not None:
        stray = _given_flags(args, REPORT_ONLY)
        if stray:
            raise UsageError(f"{' and '.join(stray)} {'does' if len(stray) == 1 else 'do'} not apply with --animate "
                             "(it trains its own run); leave "
                             f"{'it' if len(stray) == 1 else 'them'} out")
        args.framework = args.framework or "torch"
        args.seed = 0 if args.seed is None else args.seed
        args.frames = 60 if args.frames is None else args.frames
        config = get_variant(args.animate).config(seeds=(args.seed,))
        impls.check_framework(args.framework)
        out = outdirs.claim(args.out if args.out is not None else str(Path("reports") / "animations"), "--out",
                            "animations")
        return ("animate", config, out)
    stray = _given_flags(args, ANIMATE_ONLY)
    if stray:
        raise UsageError(f"{' and '.join(stray)} appl{'ies' if len(stray) == 1 else 'y'} only with --animate "
                         "VARIANT; add --animate or leave "
                         f"{'it' if len(stray) == 1 else 'them'} out")
    grid = get_grid(args.grid if args.grid is not None else "default")
    runs_text = args.runs if args.runs is not None else "runs"
    if not runs_text.strip():
        raise UsageError("--runs is empty; give the folder the sweep stored its runs in")
    runs = Path(runs_text)
    if not runs.is_dir():
        raise UsageError(f"--runs {runs_text!r} is not a folder; run 'ganrepro sweep --grid {grid.name} "
                         f"--runs {runs_text}' first")
    out = outdirs.claim(args.out if args.out is not None else str(Path("reports") / grid.name), "--out", "report",
                        avoid=[("--runs", runs_text)], swapped=True)
    return ("report", grid, runs, out)


def cmd_report(args: argparse.Namespace, mode: str, *rest) -> int:
    say = (lambda text: None) if args.quiet else (lambda text: print(f"{PROG} report: {text}", file=sys.stderr))
    if mode == "animate":
        from .report.animation import animate_run

        config, out = rest
        name = f"{args.animate.replace('/', '-')}-{args.framework}-seed{args.seed}.gif"
        say(f"training {args.animate} [{args.framework}] seed {args.seed} for about {args.frames} frames")

        def mark() -> None:  # once the GIF is rendered: the folder becomes ours, then the GIF lands
            outdirs.write_manifest(out, "animations")
            outdirs.remove_stale_temporaries(out, name)

        path = animate_run(config, args.framework, out / name, frames=args.frames, title=args.animate,
                           before_write=mark)
        print(f"wrote {path}")
        return 0
    from .report.build import IncompleteRunsError, build_report

    grid, runs, out = rest
    try:
        path = build_report(grid, runs, out, html=args.html is not False, say=say)
    except IncompleteRunsError as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
    print(f"wrote the report of grid {grid.name} to {path}")
    return 0


COMMANDS = {"run": (validate_run, cmd_run), "variants": (validate_variants, cmd_variants),
            "sweep": (validate_sweep, cmd_sweep), "report": (validate_report, cmd_report),
            "bench": (bench.validate, bench.execute)}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def _error(message: str, code: int) -> int:
    print(f"{PROG}: error: {_one_line(message)}", file=sys.stderr)
    return code


def _os_error_text(exc: OSError) -> str:
    """One line naming the file: ``could not write 'path': No space left on device``."""
    paths = " -> ".join(repr(str(p)) for p in (exc.filename, exc.filename2) if p is not None)
    reason = exc.strerror or str(exc)
    return f"{paths}: {reason}" if paths else reason


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``ganrepro`` console script; returns the exit status.

    No traceback reaches the user: every failure is one line ``ganrepro: error: ...`` on stderr.
    Bad input (an option's value, a path that cannot be used: ``errors.UsageError``, ConfigError
    included, a missing framework) exits 2 and writes nothing, whether found while validating or
    while executing; a fault of the environment (``errors.EnvironmentFault``, an ``OSError`` such
    as a full disk or a read-only folder while writing, out of memory) exits 1; Ctrl-C exits 130.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2, message already printed)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    validate, execute = COMMANDS[args.command]
    try:
        checked = validate(args)
    except (UsageError, EnvironmentFault) as exc:
        return _error(str(exc), exc.exit_code)
    except (impls.BackendUnavailable, ValueError) as exc:
        return _error(str(exc), EXIT_USAGE)
    except OSError as exc:
        return _error(_os_error_text(exc), EXIT_ENVIRONMENT)
    try:
        return execute(args, *checked)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `ganrepro run --json | head`: stop quietly
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, sys.stdout.fileno())
        except (OSError, ValueError, AttributeError):
            pass
        return 1
    except (UsageError, EnvironmentFault) as exc:
        return _error(str(exc), exc.exit_code)
    except impls.BackendUnavailable as exc:
        return _error(str(exc), EXIT_USAGE)
    except OSError as exc:
        return _error(_os_error_text(exc), EXIT_ENVIRONMENT)
    except MemoryError:
        return _error("out of memory: the run needs more memory than this machine has free; run fewer seeds "
                      "at once or smaller sizes", EXIT_ENVIRONMENT)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
