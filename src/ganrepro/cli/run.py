"""``ganrepro run``: the options -> an ExperimentConfig, one training run, its table or JSON.

    config_from_args   the config the options name (a variant, the protocol's defaults, overrides)
    validate, execute  the command: everything checked first, then train, score, save, print
    format_table       the default output: one row per seed, the floor and median rows
    json_document      ``--json``'s document

Progress (``ganrepro.progress``, tqdm) goes to stderr, none with --quiet or --json. Loads no
framework until ``execute`` starts training.
"""
from __future__ import annotations

import argparse
import re
from pathlib import Path

from .. import impls, outdirs
from ..config import ConfigError, ExperimentConfig, inert_fields, make_config, parse_seeds
from ..errors import UsageError
from ..variants import get_variant
from .common import PROG

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
    default value. A value inherited from the variant that no longer applies (e.g. post 000's noise
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
    typed = (getattr(args, "typed", None) or {}).get(FIELD_DEST.get(field_name or "", ""))
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
                 variant: str | None = None) -> str:
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


def json_document(config, framework: str, records: list[dict], floor: dict, out: Path | None,
                  variant: str | None = None) -> dict:
    first = records[0]
    return {
        "config": config.to_dict(),
        "identity": config.identity,
        "slug": config.slug,
        "variant": variant,
        "framework": framework,
        "device": first["device"],
        "device_info": first.get("device_info"),
        "timings": first["timings"],
        "versions": first["versions"],
        "runs": [{"seed": r["seed"], "status": r["status"], "metrics": r["metrics"]} for r in records],
        "floor": {"source": "published", "metrics": floor},
        "out": str(out) if out is not None else None,
    }



# ---- the command ------------------------------------------------------------------------------
def validate(args: argparse.Namespace):
    """Everything ``run`` needs checked before any work: (config, out folder or None).

    An image experiment (``run_image.is_image_run``) gets an ``ImageConfig``, and its data set
    is loaded and checked here (a missing or corrupt file exits 2 before any training)."""
    from . import run_image

    if run_image.is_image_run(args):
        run_image.apply_data_dir(args)
        config = run_image.image_config_from_args(args)
        from ..image.data import load_dataset

        load_dataset(config.dataset)
    else:
        config = config_from_args(args)
    impls.check_framework(args.framework)
    device = getattr(args, "device", "cpu")
    impls.check_device(args.framework, device)  # DeviceUnavailable (exit 2) before any training
    out = outdirs.claim(args.out, "--out", "runs") if args.out is not None else None
    return config, out


def execute(args: argparse.Namespace, config, out: Path | None) -> int:
    if getattr(config, "track", "1d") == "image":
        from .run_image import execute_image

        return execute_image(args, config, out)
    from .. import records as rec
    from ..metrics import MU, PUBLISHED_FLOOR, SIGMA
    from ..progress import StepsBar
    from ..training import train

    show_progress = not (args.quiet or args.json)
    progress = None
    if show_progress:
        progress = StepsBar(f"{PROG} {config.identity} [{args.framework}]",
                            "pretraining D, then training" if config.pretrain_steps else "training")
    try:
        output = train(config, args.framework, progress=progress, device=getattr(args, "device", "cpu"))
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
