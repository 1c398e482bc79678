"""The suite's two tracks and the one type that names an experiment of either.

    1d      the 1D Gaussian (docs/problem.md): ``config.ExperimentConfig``
    image   post 004's GANs on digit images (docs/images.md): ``image.config.ImageConfig``

Both configs share the interface the machinery uses (``slug``, ``identity``, ``seeds``,
``to_dict``, ``with_seeds``, ``iterations``); an image config's dict carries ``"track": "image"``.
Framework-free.
"""
from __future__ import annotations

from typing import Union

from .config import ExperimentConfig
from .image.config import TRACK as IMAGE_TRACK
from .image.config import ImageConfig

TRACKS = ("1d", IMAGE_TRACK)

AnyConfig = Union[ExperimentConfig, ImageConfig]  # noqa: UP007 (a runtime alias, read by dataclass annotations)


def track_of(config) -> str:
    """"image" for an ``ImageConfig``, "1d" otherwise."""
    return IMAGE_TRACK if isinstance(config, ImageConfig) else "1d"


def config_from_dict(d: dict) -> AnyConfig:
    """The config a dict (``to_dict``'s, seeds as a list) describes, of either track."""
    d = {**d, "seeds": tuple(d.get("seeds", (0,)))}
    if d.get("track") == IMAGE_TRACK:
        return ImageConfig.from_dict(d)
    return ExperimentConfig.from_dict(d)
