"""Sweep grids (named variants x frameworks x seeds) and the comparisons a report makes.

    default   every named variant, both frameworks, seeds 0-31 (the committed report)
    large     every named variant, both frameworks, seeds 0-1023 (the committed report of
              reports/large/: it also says what 1,024 seeds resolve that the first 32 did not)
    smoke     the blog's four runs (protocols 2016 and 2017, with and without minibatch
              discrimination), both frameworks, seeds 0-3 (CI regenerates its report)

The image track's grids (docs/images.md#experiments):

    image          every image variant on digits8, both frameworks, seeds 0-15 (committed report)
    image-smoke    three image variants on digits8, 200 steps, seeds 0-1 (CI regenerates its report)
    fashion-mnist  the DCGAN with z-dim 2 and 7 on Fashion-MNIST, both frameworks, seeds 0-3

A grid's cells are (variant, framework) pairs; variants whose configs are equal (the same
experiment named from two posts, e.g. ``blog2017/vanilla`` and ``post000/vanilla``) share one
stored cell, so they are trained once. Framework-free.
"""
from __future__ import annotations

from dataclasses import dataclass

from .config import ConfigError, format_seeds
from .impls import FRAMEWORKS
from .tracks import AnyConfig
from .variants import VARIANTS, get_variant, image_variant_names, variant_names


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
    max_stack: int = 32
    """Seeds trained together as one stack, at most (``ganrepro sweep --max-stack`` overrides it)."""

    def __post_init__(self) -> None:
        for variant in self.variants:
            get_variant(variant)
        for framework in self.frameworks:
            if framework not in FRAMEWORKS:
                raise ConfigError(f"unknown framework {framework!r}; allowed: {', '.join(FRAMEWORKS)}")
        if not self.seeds or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"a grid needs distinct seeds, got {self.seeds!r}")
        tracks = {getattr(get_variant(v), "track", "1d") for v in self.variants}
        if len(tracks) > 1:
            raise ConfigError(f"grid {self.name!r} mixes the 1D and the image track; a grid holds one track")

    @property
    def track(self) -> str:
        """"1d" or "image": the track of the grid's variants."""
        return getattr(get_variant(self.variants[0]), "track", "1d")

    def config(self, variant: str) -> AnyConfig:
        """The variant's config with the grid's overrides and seeds."""
        return get_variant(variant).config(**dict(self.overrides), seeds=self.seeds)

    def describe(self) -> str:
        return (f"{self.name}: {len(self.variants)} variants x {len(self.frameworks)} frameworks "
                f"({', '.join(self.frameworks)}) x seeds {format_seeds(self.seeds)} -- {self.description}")


LARGE_SEEDS = 1024
LARGE_STACK = 512
"""The large grid trains its cells in stacks of 512 seeds: per seed-step cost is near its floor
there (docs/performance.md#stacks), and a sweep killed mid-stack loses at most 512 unstored runs per worker."""

GRIDS: dict[str, Grid] = {
    "default": Grid("default", "every named variant, 32 seeds per cell in both frameworks",
                    tuple(variant_names()), tuple(FRAMEWORKS), tuple(range(32))),
    "large": Grid("large", "every named variant, 1,024 seeds per cell in both frameworks (small effects resolve)",
                  tuple(variant_names()), tuple(FRAMEWORKS), tuple(range(LARGE_SEEDS)), max_stack=LARGE_STACK),
    "smoke": Grid("smoke", "the blog's four runs, 4 seeds per cell in both frameworks (CI)",
                  ("blog2016/vanilla", "blog2016/minibatch", "blog2017/vanilla", "blog2017/minibatch"),
                  tuple(FRAMEWORKS), tuple(range(4))),
    "image": Grid("image", "every image variant (post 004) on digits8, 16 seeds per cell in both frameworks",
                  tuple(image_variant_names()), tuple(FRAMEWORKS), tuple(range(16))),
    "image-smoke": Grid("image-smoke", "three image variants on digits8, 200 steps, 2 seeds per cell (CI)",
                        ("post004/dcgan-z2", "post004/dcgan-z7", "post004/linear-z2"), tuple(FRAMEWORKS),
                        tuple(range(2)), (("num_steps", 200), ("checkpoint_interval", 50))),
    "fashion-mnist": Grid("fashion-mnist", "the DCGAN with z-dim 2 and 7 on Fashion-MNIST (28x28), 4 seeds per "
                          "cell in both frameworks", ("post004/dcgan-z2", "post004/dcgan-z7"), tuple(FRAMEWORKS),
                          tuple(range(4)), (("dataset", "fashion-mnist"), ("num_steps", 1000))),
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


IMAGE_COMPARISONS: tuple[tuple[str, str, str], ...] = (
    *((f"post004/{m}-z7{s}", f"post004/{m}-z2{s}", "z-dim 7 vs 2") for m in ("dcgan", "linear")
      for s in ("", "-saturating")),
    *((f"post004/{m}-z{z}-saturating", f"post004/{m}-z{z}", "saturating vs non-saturating G loss")
      for m in ("dcgan", "linear") for z in (2, 7)),
    *((f"post004/dcgan-z{z}{s}", f"post004/linear-z{z}{s}", "DCGAN vs linear") for z in (2, 7)
      for s in ("", "-saturating")),
)
"""The image track's comparisons (docs/images.md#experiments): (variant, baseline, question). The
frozen-G variant is reported on its own (where norms/G vanishes), not compared."""


def image_comparisons(variants) -> list[tuple[str, str, str]]:
    """The IMAGE_COMPARISONS whose both variants are in ``variants``, in order."""
    present = set(variants)
    return [c for c in IMAGE_COMPARISONS if c[0] in present and c[1] in present]


def _check_image_comparisons() -> None:
    from .variants import IMAGE_VARIANTS

    for technique, baseline, _ in IMAGE_COMPARISONS:
        if technique not in IMAGE_VARIANTS or baseline not in IMAGE_VARIANTS:
            raise AssertionError(f"IMAGE_COMPARISONS names an unknown variant: {technique} -> {baseline}")


_check_image_comparisons()
