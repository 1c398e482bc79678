"""``ganrepro variants``: the named variants, each with its full config, as text or JSON.

"Same experiment as" comes from ``ganrepro.variant_groups`` (the report uses the same rule).
Loads no framework.
"""
from __future__ import annotations

import argparse

from ..config import format_seeds, make_config
from ..variant_groups import same_experiment
from ..variants import IMAGE_VARIANTS, VARIANTS, ImageVariant, Variant, get_variant

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


def format_image_config(config, indent: str = "    ") -> list[str]:
    """Every field of an ``ImageConfig``, ``*`` on those that differ from the image track's defaults."""
    from ..image.config import ImageConfig

    defaults = ImageConfig().to_dict()
    values = config.to_dict()
    values.pop("track")
    cells = [f"{f}={_value_text(f, v)}{'*' if v != defaults.get(f) else ''}" for f, v in values.items()]
    derived = (f"{config.image_size}x{config.image_size} images, "
               + (f"hidden width {config.hidden_size}" if config.model == "linear"
                  else f"base width {config.base_width}") + ", Adam 2e-4 beta1 0.5")
    return [f"{indent}image: {' '.join(cells)}  ({derived})"]


def format_config(config, indent: str = "    ") -> list[str]:
    """Every field of ``config``, grouped, ``*`` on those that differ from the protocol's defaults."""
    if getattr(config, "track", "1d") == "image":
        return format_image_config(config, indent)
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


def variant_entry(variant: Variant | ImageVariant) -> dict:
    config = variant.config()
    return {"name": variant.name, "description": variant.description, "source": variant.source,
            "identity": config.identity, "slug": config.slug, "same_as": same_experiment(variant.name),
            "config": config.to_dict()}


def format_variant(variant: Variant | ImageVariant) -> str:
    config = variant.config()
    lines = [variant.name, f"    {variant.description}", f"    source:   {variant.source}",
             f"    identity: {config.identity}"]
    same = same_experiment(variant.name)
    if same:
        lines.append(f"    same experiment as: {', '.join(same)}")
    lines.extend(format_config(config))
    return "\n".join(lines)


def validate(args: argparse.Namespace):
    """The variants to show: all, or the one named (ConfigError for an unknown name)."""
    registry: dict = IMAGE_VARIANTS if getattr(args, "track", "1d") == "image" else VARIANTS
    chosen = [get_variant(args.name)] if args.name is not None else list(registry.values())
    for v in chosen:  # every config is built (and so validated) before anything is printed
        v.config()
    return (chosen,)


def execute(args: argparse.Namespace, chosen: list) -> int:
    if args.json:
        from .. import records as rec

        print(rec.dumps([variant_entry(v) for v in chosen]))
        return 0
    blocks = [format_variant(v) for v in chosen]
    if args.name is None:
        other = ("the image track's: 'ganrepro variants --track image'" if getattr(args, "track", "1d") != "image"
                 else "the 1D track's: 'ganrepro variants'")
        blocks.insert(0, f"{len(chosen)} variants ('ganrepro run --variant NAME' runs one; explicit options "
                         f"override it; {other}). Fields marked * differ from the defaults.")
    print("\n\n".join(blocks))
    return 0


