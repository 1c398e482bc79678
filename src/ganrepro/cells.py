"""A grid's stored cells: which (config, framework) folders of the store hold a grid's runs.

A grid (``grids.py``) is variants x frameworks x seeds. Variants with equal configs (the same
experiment named from two posts, ``variant_groups``) share one *cell*, (slug, framework), so
they are trained once and read once. :func:`plan` maps a grid onto its cells; :func:`manifest`
is the JSON a sweep stores beside the runs (variant -> slug).

This is the layer below both ``sweep`` (which fills the cells) and ``report`` (which reads
them): neither imports the other. Framework-free.
"""
from __future__ import annotations

from dataclasses import dataclass

from .grids import Grid
from .tracks import AnyConfig


@dataclass(frozen=True)
class Cell:
    """One stored cell: a config (with the grid's seeds) in one framework, and the variants naming it."""

    config: AnyConfig
    framework: str
    variants: tuple[str, ...]

    @property
    def slug(self) -> str:
        return self.config.slug


def plan(grid: Grid) -> list[Cell]:
    """The grid's cells, one per distinct (config, framework), in the grid's variant order."""
    cells: dict[tuple[str, str], Cell] = {}
    for variant in grid.variants:
        config = grid.config(variant)
        for framework in grid.frameworks:
            key = (config.slug, framework)
            if key in cells:
                old = cells[key]
                if old.config != config:
                    raise AssertionError(f"two configs share the slug {config.slug!r}: {old.variants[0]}, {variant}")
                cells[key] = Cell(old.config, framework, (*old.variants, variant))
            else:
                cells[key] = Cell(config, framework, (variant,))
    return list(cells.values())


def manifest(grid: Grid, cells: list[Cell]) -> dict:
    """What the report needs to map variants onto stored cells."""
    slugs = {}
    for cell in cells:
        for variant in cell.variants:
            slugs[variant] = cell.slug
    return {"grid": grid.name, "description": grid.description, "frameworks": list(grid.frameworks),
            "seeds": list(grid.seeds), "variants": {v: slugs[v] for v in grid.variants}}
