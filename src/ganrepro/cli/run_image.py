"""``ganrepro run`` on the image track (docs/images.md): the options -> an ImageConfig, a run, its table.

The track is chosen by ``is_image_run``: an image variant (``post004/...``) or any image option
(``--dataset``, ``--model``, ``--z-dim``, ``--freeze-g``, ``--checkpoint-interval``,
``--data-dir``). The options shared with the 1D track (``--seeds``, ``--steps``, ``--batch-size``,
``--dtype``, ``--curve-interval``, ``--g-loss``, ``--framework``, ``--device``, ``--out``,
``--json``, ``--quiet``) mean the same; a 1D-only option is refused with exit 2, naming it.
"""
from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..config import ConfigError, parse_seeds
from ..errors import UsageError
from ..variants import get_variant
from .common import PROG

IMAGE_OPTIONS = {
    # run's option dest -> the ImageConfig field it sets (None: not a config field)
    "dataset": "dataset", "model": "model", "z_dim": "z_dim", "freeze_g": "freeze_g",
    "checkpoint_interval": "checkpoint_interval", "data_dir": None,
}
SHARED_OPTIONS = {"steps": "num_steps", "batch_size": "batch_size", "dtype": "dtype",
                  "curve_interval": "curve_interval", "g_loss": "g_loss"}
ONE_D_ONLY = ("protocol", "minibatch", "mbd_self_term", "mbd_kernels", "mbd_dims", "hidden_size", "pretrain_steps",
              "feature_matching", "fm_weight", "instance_noise", "noise_target", "noise_schedule",
              "noise_anneal_steps", "label_smoothing", "historical_averaging")
FLAG = {**{d: "--" + d.replace("_", "-") for d in (*IMAGE_OPTIONS, *SHARED_OPTIONS, *ONE_D_ONLY)},
        "steps": "--steps"}
FIELD_FLAG = {fld: FLAG[d] for d, fld in {**IMAGE_OPTIONS, **SHARED_OPTIONS}.items() if fld}
FIELD_FLAG["seeds"] = "--seeds"


def is_image_run(args: argparse.Namespace) -> bool:
    """Whether the options name an image experiment (an image variant, or an image option given)."""
    if getattr(args, "variant", None) is not None:
        if getattr(get_variant(args.variant), "track", "1d") == "image":
            return True
    return any(getattr(args, d, None) is not None for d in IMAGE_OPTIONS)


def image_config_from_args(args: argparse.Namespace):
    """The ImageConfig the options name: the variant's (if any) with the given options on top."""
    from ..image.config import make_image_config

    variant = get_variant(args.variant) if getattr(args, "variant", None) is not None else None
    if variant is not None and getattr(variant, "track", "1d") != "image":
        given = next(FLAG[d] for d in IMAGE_OPTIONS if getattr(args, d, None) is not None)
        raise UsageError(f"{given} is an image-track option; --variant {variant.name} is a 1D experiment "
                         "(image variants: 'ganrepro variants --track image')")
    wrong = [FLAG[d] for d in ONE_D_ONLY if getattr(args, d, None) is not None]
    if wrong:
        raise UsageError(f"{wrong[0]} applies only to the 1D track, not to an image model (docs/images.md); "
                         "leave it out or run a 1D experiment")
    values = dict(variant.overrides) if variant is not None else {}
    values.update({fld: getattr(args, d) for d, fld in {**IMAGE_OPTIONS, **SHARED_OPTIONS}.items()
                   if fld and getattr(args, d, None) is not None})
    try:
        if getattr(args, "seeds", None) is not None:
            values["seeds"] = parse_seeds(args.seeds)
        return make_image_config(**values)
    except ConfigError as exc:
        flag = FIELD_FLAG.get(exc.field or "")
        message = str(exc)
        raise ConfigError(f"{flag}: {message}" if flag and exc.field in values else message, exc.field) from None


def apply_data_dir(args: argparse.Namespace) -> None:
    """``--data-dir`` into ``GANREPRO_DATA_DIR`` (read by the loader here and in sweep workers)."""
    if getattr(args, "data_dir", None) is not None:
        os.environ["GANREPRO_DATA_DIR"] = str(args.data_dir)


def _fmt(value, width: int, digits: int = 3) -> str:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return "-".rjust(width)
    return "nan".rjust(width) if v != v else f"{v:{width}.{digits}f}"


def format_image_table(config, framework: str, records: list[dict], timings: dict, floor: dict,
                       variant: str | None = None) -> str:
    """One row per seed (status, Parzen LL, FID, IS, classes covered, mapping instability, vanish
    step), then the real images' row (the floor)."""
    named = f"  variant={variant}" if variant else ""
    header = (f"{config.identity}{named}  framework={framework}  train {float(timings.get('train_s', 0)):.2f} s, "
              f"generate {float(timings.get('generate_s', 0)):.2f} s; {len(records)} seed(s) stacked")
    cols = (f"{'seed':>8}  {'status':<9} {'Parzen LL':>10} {'± se':>6} {'FID':>8} {'IS':>6} {'classes':>7} "
            f"{'instab.':>7} {'vanish':>7}")

    def row(label, status, m):
        vanish = m.get("vanish_step")
        return (f"{label:>8}  {status:<9} {_fmt(m.get('parzen_ll'), 10, 2)} {_fmt(m.get('parzen_ll_stderr'), 6, 2)} "
                f"{_fmt(m.get('fid'), 8)} {_fmt(m.get('inception_score'), 6, 2)} "
                f"{m.get('classes_covered', '-')!s:>7} {_fmt(m.get('mapping_instability'), 7)} "
                f"{('-' if vanish is None else str(vanish)):>7}")

    lines = [header, cols, "-" * len(cols)]
    lines += [row(str(r["seed"]), r["status"], r["metrics"]) for r in records]
    lines += ["-" * len(cols), row("real", "floor", floor)]
    return "\n".join(lines)


def execute_image(args: argparse.Namespace, config, out: Path | None) -> int:
    """Train, score, save and print an image run (``run``'s ``execute`` for the image track)."""
    from .. import outdirs
    from .. import records as rec
    from ..image.scoring import prepare
    from ..image.training import train
    from ..metrics.images import image_floor
    from ..progress import StepsBar

    data, classifier = prepare(config.dataset)
    progress = None if (args.quiet or args.json) else StepsBar(f"{PROG} {config.identity} [{args.framework}]",
                                                               "training")
    try:
        output = train(config, args.framework, progress=progress, data=data, device=getattr(args, "device", "cpu"))
    finally:
        if progress:
            progress.close()
    from ..image.scoring import score

    records = score(output, prepared=(data, classifier))
    try:
        if out is not None:
            outdirs.write_manifest(out, "runs")
        saved = rec.save_runs(output, records, out) if out is not None else []
    except OSError as exc:
        raise outdirs.fault(exc, f"could not save the runs under {str(out)!r}") from None
    floor = dict(image_floor(data, classifier))
    if args.json:
        first = records[0]
        print(rec.dumps({"config": config.to_dict(), "identity": config.identity, "slug": config.slug,
                         "variant": args.variant, "framework": args.framework, "device": first["device"],
                         "device_info": first.get("device_info"), "timings": first["timings"],
                         "versions": first["versions"],
                         "classifier_test_accuracy": getattr(classifier, "test_accuracy", None),
                         "runs": [{"seed": r["seed"], "status": r["status"], "metrics": r["metrics"]}
                                  for r in records],
                         "floor": {"source": "real images", "metrics": floor},
                         "out": str(out) if out is not None else None}))
    else:
        print(format_image_table(config, args.framework, records, output.timings, floor, variant=args.variant))
        if saved:
            print(f"saved {len(saved)} run(s) under {out / config.slug / args.framework}")
    return 0
