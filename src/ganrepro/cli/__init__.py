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
                 [--curve-interval N] [--device cpu|cuda] [--json] [--out DIR] [--quiet]
    ganrepro variants [NAME] [--json]
    ganrepro sweep [--grid NAME] [--runs DIR] [--jobs N] [--executor local|ray]
                   [--ray-address ADDR] [--max-stack N] [--device cpu|cuda]
                   [--frameworks torch,tf] [--data-dir DIR] [--quiet]
    ganrepro report [--grid NAME] [--runs DIR] [--out DIR] [--no-html] [--quiet]
    ganrepro report --animate VARIANT [--framework torch|tf] [--seed K] [--frames N] [--out DIR]
    ganrepro bench [--device cpu|cuda|all] [--parts minibatch,training,image]
                   [--batch-sizes B,B,...] [--frameworks torch,tf]
                   [--torch-capability default|native] [--quick] [--out DIR]

``run --variant NAME`` starts from a named variant's config (``ganrepro variants`` lists them);
every option given explicitly overrides it, options not given leave it alone. Without a variant
the config starts from the protocol's defaults (docs/protocols.md#defaults-and-sizes).

Everything is validated (config built, framework checked, --out checked) before any training
or writing; a bad value exits with status 2 and one line ``ganrepro: error: ...`` on stderr.
The range checks of the numbers and the rules between the technique switches are
ExperimentConfig's (``ConfigError``).

The package, one module per command (each: ``validate(args)`` -> a tuple of checked values, then
``execute(args, *checked)`` -> exit status, and that command's output formatting):

    __init__.py   main(): parse, validate, execute; the mapping of errors to exit statuses
    parser.py     build_parser(): every command's options, one-line parse errors, --version
    common.py     PROG, one-line errors, the --runs folder check
    run.py        ganrepro run (config_from_args, the table, the JSON document)
    variants.py   ganrepro variants
    sweep.py      ganrepro sweep (the summary line)
    report.py     ganrepro report: BuildReport, or Animate with --animate
    bench.py      ganrepro bench

Importing this package loads no framework: torch or tensorflow is imported only when ``run``
starts training (``bench`` measures in worker processes of its own, see ``ganrepro.bench``).
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .. import impls
from ..errors import EXIT_ENVIRONMENT, EXIT_USAGE, EnvironmentFault, UsageError
from . import bench, data, report, run, sweep, variants
from .common import PROG, error, one_line, os_error_text
from .parser import build_parser, version_text
from .run import config_from_args, format_table, given_options, json_document
from .variants import format_config, format_variant, variant_entry

__all__ = ["COMMANDS", "PROG", "build_parser", "config_from_args", "format_config", "format_table",
           "format_variant", "given_options", "json_document", "main", "one_line", "variant_entry", "version_text"]

COMMANDS = {"run": run, "variants": variants, "sweep": sweep, "report": report, "bench": bench, "data": data}
"""Command name -> its module (``validate``, ``execute``)."""


def main(argv: Sequence[str] | None = None) -> int:
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
    command = COMMANDS[args.command]
    try:
        checked = command.validate(args)
    except (UsageError, EnvironmentFault) as exc:
        return error(str(exc), exc.exit_code)
    except (impls.BackendUnavailable, ValueError) as exc:
        return error(str(exc), EXIT_USAGE)
    except OSError as exc:
        return error(os_error_text(exc), EXIT_ENVIRONMENT)
    try:
        return command.execute(args, *checked)
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
        return error(str(exc), exc.exit_code)
    except impls.BackendUnavailable as exc:
        return error(str(exc), EXIT_USAGE)
    except OSError as exc:
        return error(os_error_text(exc), EXIT_ENVIRONMENT)
    except MemoryError:
        return error("out of memory: the run needs more memory than this machine has free; run fewer seeds "
                     "at once or smaller sizes", EXIT_ENVIRONMENT)
