"""The ``ganrepro`` command line (also ``python -m ganrepro``).

    ganrepro run [--protocol 2016|2017] [--minibatch] [--mbd-self-term exp-1|exp0|none]
                 [--framework torch|tf] [--seeds 0-7] [--steps N] [--batch-size N]
                 [--hidden-size N] [--pretrain-steps N] [--dtype float32|float64]
                 [--curve-interval N] [--json] [--out DIR] [--quiet]

Everything is validated (config built, framework checked, --out checked) before any training
or writing; a bad value exits with status 2 and one line ``ganrepro: error: ...`` on stderr.
Importing this module loads no framework: torch or tensorflow is imported only when ``run``
starts training.
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

from . import impls
from .config import DTYPES, PROTOCOLS, RULES, SELF_TERMS, ConfigError, make_config, parse_seeds

PROG = "ganrepro"
EXIT_USAGE = 2


class UsageError(ValueError):
    """A bad command-line value found after parsing (e.g. an --out path that is a file)."""


class _Parser(argparse.ArgumentParser):
    """argparse, but every error is one line on stderr and exit status 2."""

    def error(self, message: str):  # noqa: D401 - argparse's signature
        hint = f" (see '{self.prog} --help')"
        self.exit(EXIT_USAGE, f"{PROG}: error: {message}{hint}\n")


def _int_at_least(low: int):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer >= {low}, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be an integer >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"
    return parse


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog=PROG, description="Reproducibility suite for GAN training techniques on the 1D toy "
                                             "problem (G learns N(4, 0.5)), in twin PyTorch and TensorFlow "
                                             "implementations.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    defaults = ", ".join(f"{p}: B={r.default_batch_size}, T={r.default_num_steps}, "
                         f"pretrain={r.default_pretrain_steps}, self term={r.default_self_term}"
                         for p, r in RULES.items())
    run = sub.add_parser(
        "run", help="train a stack of seeds of one config and score it",
        description="Train the seeds of one config as one stack in one framework, score each seed "
                    "(metrics of G on 10,000 fresh z ~ U(-8, 8)) and print a table, or JSON. "
                    f"Protocol defaults: {defaults}.")
    run.add_argument("--protocol", choices=PROTOCOLS, default="2017", help="reference protocol (default 2017)")
    run.add_argument("--minibatch", action="store_true", help="minibatch discrimination in D")
    run.add_argument("--mbd-self-term", choices=SELF_TERMS, default=None,
                     help="minibatch discrimination's self term (default: the protocol's)")
    run.add_argument("--framework", choices=tuple(impls.FRAMEWORKS), default="torch",
                     help="twin implementation to train with (default torch)")
    run.add_argument("--seeds", default="0", metavar="RANGE",
                     help="seeds to run as one stack, e.g. 0-7, 3 or 0-3,10 (default 0)")
    run.add_argument("--steps", type=_int_at_least(1), default=None, metavar="N",
                     help="training steps (default: the protocol's)")
    run.add_argument("--batch-size", type=_int_at_least(1), default=None, metavar="N",
                     help="batch size, >= 2 with --minibatch (default: the protocol's)")
    run.add_argument("--hidden-size", type=_int_at_least(1), default=None, metavar="N",
                     help="G's hidden width h; D's is 2h (default 4)")
    run.add_argument("--pretrain-steps", type=_int_at_least(0), default=None, metavar="N",
                     help="D pretraining steps (default: the protocol's)")
    run.add_argument("--dtype", choices=DTYPES, default=None, help="float type (default float32)")
    run.add_argument("--curve-interval", type=_int_at_least(1), default=None, metavar="N",
                     help="record the training curves every N steps (default 10)")
    run.add_argument("--json", action="store_true",
                     help="print one JSON document (config, per-seed metrics, timings, versions, floor)")
    run.add_argument("--out", default=None, metavar="DIR",
                     help="save each run under DIR/<slug>/<framework>/seed-<k>/")
    run.add_argument("--quiet", action="store_true", help="no progress lines on stderr")
    return parser


# ---- validation -----------------------------------------------------------------------------
def _check_out(path_text: str) -> Path:
    """--out must be (or become) a writable folder: not a file, its first existing ancestor a folder."""
    path = Path(path_text)
    if path.exists() and not path.is_dir():
        raise UsageError(f"--out {path_text!r} exists and is not a folder; give a folder path")
    probe = path
    while not probe.exists():
        if probe.parent == probe:
            break
        probe = probe.parent
    if probe.exists() and not probe.is_dir():
        raise UsageError(f"--out {path_text!r} cannot be created: {str(probe)!r} is a file, not a folder")
    if probe.exists() and not os.access(probe, os.W_OK | os.X_OK):
        raise UsageError(f"--out {path_text!r} is not writable (no write permission on {str(probe)!r})")
    return path


def config_from_args(args: argparse.Namespace):
    """The ExperimentConfig the options name (ConfigError on a bad value)."""
    return make_config(
        args.protocol, minibatch=args.minibatch, seeds=parse_seeds(args.seeds), num_steps=args.steps,
        batch_size=args.batch_size, hidden_size=args.hidden_size, pretrain_steps=args.pretrain_steps,
        dtype=args.dtype, curve_interval=args.curve_interval, mbd_self_term=args.mbd_self_term)


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


def format_table(config, framework: str, records: list[dict], timings: dict, floor: dict) -> str:
    """The default report: a header line, one row per seed, then the floor and median rows."""
    total = sum(float(timings.get(k, 0.0)) for k in ("pretrain_s", "train_s", "evaluate_s"))
    header = (f"{config.identity}  framework={framework}  training {total:.2f} s "
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


def json_document(config, framework: str, records: list[dict], floor: dict, out: Optional[Path]) -> dict:
    first = records[0]
    return {
        "config": config.to_dict(),
        "identity": config.identity,
        "slug": config.slug,
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
    out = _check_out(args.out) if args.out is not None else None
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
        saved = rec.save_runs(output, records, out) if out is not None else []
    except OSError as exc:
        print(f"{PROG}: error: could not save the runs under {str(out)!r}: {exc}", file=sys.stderr)
        return 1

    floor = dict(PUBLISHED_FLOOR)
    if args.json:
        print(rec.dumps(json_document(config, args.framework, records, floor, out)))
    else:
        # The table's floor row shows the target's mean and std: a perfect generator's.
        print(format_table(config, args.framework, records, output.timings, {"mean": MU, "std": SIGMA, **floor}))
        if saved:
            print(f"saved {len(saved)} run(s) under {out / config.slug / args.framework}")
    return 0


COMMANDS = {"run": (validate_run, cmd_run)}


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Entry point of the ``ganrepro`` console script; returns the exit status.

    Usage errors (bad option values, a missing framework, an --out that is a file) return 2
    with one line on stderr and nothing written; errors inside training are not caught.
    """
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # argparse: --help (0) or a usage error (2, message already printed)
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else EXIT_USAGE)
    validate, execute = COMMANDS[args.command]
    try:
        checked = validate(args)
    except (ConfigError, UsageError, impls.BackendUnavailable, ValueError) as exc:
        print(f"{PROG}: error: {_one_line(exc)}", file=sys.stderr)
        return EXIT_USAGE
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


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
