"""Sweep grids (named variants x frameworks x seeds) and the comparisons a report makes.

    default   every named variant, both frameworks, seeds 0-31 (the committed report)
    smoke     the blog's four runs (protocols 2016 and 2017, with and without minibatch
              discrimination), both frameworks, seeds 0-3 (CI regenerates its report)

A grid's cells are (variant, framework) pairs; variants whose configs are equal (the same
experiment named from two posts, e.g. ``blog2017/vanilla`` and ``post000/vanilla``) share one
stored cell, so they are trained once. Framework-free.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import ConfigError, ExperimentConfig, format_seeds
from .impls import FRAMEWORKS
from .variants import VARIANTS, get_variant, variant_names


@dataclass(frozen=True)
class Grid:
    """A sweep: every variant in ``variants`` x every framework x every seed in ``seeds``.

    ``overrides`` (field, value) pairs change every variant's config alike (e.g. a shorter
    ``num_steps`` for a quick look); the named grids have none.
    """

    name: str
    description: str
    variants: tuple[str, ...]
    frameworks: tuple[str, ...]
    seeds: tuple[int, ...]
    overrides: tuple[tuple[str, object], ...] = ()

    def __post_init__(self) -> None:
        for variant in self.variants:
            get_variant(variant)
        for framework in self.frameworks:
            if framework not in FRAMEWORKS:
                raise ConfigError(f"unknown framework {framework!r}; allowed: {', '.join(FRAMEWORKS)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"a grid needs distinct seeds, got {self.seeds!r}")

    def config(self, variant: str) -> ExperimentConfig:
        """The variant's config with the grid's overrides and seeds."""
        return get_variant(variant).config(**dict(self.overrides), seeds=self.seeds)

    def describe(self) -> str:
        return (f"{self.name}: {len(self.variants)} variants x {len(self.frameworks)} frameworks "
                f"({', '.join(self.frameworks)}) x seeds {format_seeds(self.seeds)} -- {self.description}")


GRIDS: dict[str, Grid] = {
    "default": Grid("default", "every named variant, 32 seeds per cell in both frameworks",
                    tuple(variant_names()), tuple(FRAMEWORKS), tuple(range(32))),
    "smoke": Grid("smoke", "the blog's four runs, 4 seeds per cell in both frameworks (CI)",
                  ("blog2016/vanilla", "blog2016/minibatch", "blog2017/vanilla", "blog2017/minibatch"),
                  tuple(FRAMEWORKS), tuple(range(4))),
}


def get_grid(name: str) -> Grid:
    """The grid called ``name``; ``ConfigError`` naming the known grids otherwise."""
    try:
        return GRIDS[name]
    except (KeyError, TypeError):
        raise ConfigError(f"unknown grid {name!r}; known grids: {', '.join(GRIDS)}") from None


# ---- comparisons ------------------------------------------------------------------------------
BASELINES: dict[str, str] = {
    "blog2016/minibatch": "blog2016/vanilla",
    "blog2017/minibatch": "blog2017/vanilla",
    **{name: "post000/vanilla" for name in variant_names()
       if name.startswith("post000/") and name != "post000/vanilla"},
    **{name: "blog2017/vanilla" for name in variant_names()
       if name.split("/")[0] in ("fm", "noise", "smoothing", "hist")},
    "gloss/saturating": "gloss/non_saturating",
}
"""Technique variant -> the variant it is compared against: the same protocol and config with
the technique off (for post 000's grid, its all-off cell; for the saturating G loss, the
non-saturating one, which is the protocol's default)."""


def comparisons(variants) -> list[tuple[str, str]]:
    """(technique, baseline) pairs whose both variants are in ``variants``, in registry order."""
    present = set(variants)
    return [(t, b) for t, b in BASELINES.items() if t in present and b in present]


def _check_baselines() -> None:
    for technique, baseline in BASELINES.items():
        if technique not in VARIANTS or baseline not in VARIANTS:
            raise AssertionError(f"BASELINES names an unknown variant: {technique} -> {baseline}")


_check_baselines()
