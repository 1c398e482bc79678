"""Which named variants are the same experiment: equal configs, named from different posts.

One rule, used twice: ``ganrepro variants`` lists each variant's "same experiment as" (over every
named variant, at its own seeds), and the report's "Same experiment as ... (one stored cell)"
(over a grid's variants, at the grid's overrides and seeds; such variants share one stored cell,
``ganrepro.cells``). Kept beside ``variants.py`` rather than in it. Framework-free.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable

from .variants import IMAGE_VARIANTS, VARIANTS, image_variant_names, variant_names


def same_as(names: Iterable[str], config_of: Callable[[str], object]) -> dict[str, list[str]]:
    """For each name in ``names``: the other names whose ``config_of`` is equal, in ``names``' order."""
    names = list(names)
    configs = {name: config_of(name) for name in names}
    return {name: [other for other in names if other != name and configs[other] == configs[name]]
            for name in names}


def same_experiment(name: str) -> list[str]:
    """The other named variants whose config equals ``name``'s, in registry order."""
    registry, names = ((IMAGE_VARIANTS, image_variant_names()) if name in IMAGE_VARIANTS
                       else (VARIANTS, variant_names()))
    config = registry[name].config()
    return [n for n in names if n != name and registry[n].config() == config]
