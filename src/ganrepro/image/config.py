"""The image experiment's config: one immutable value that names an image experiment exactly.

The image track's counterpart of ``ganrepro.config.ExperimentConfig`` (docs/images.md), with the
same interface where the machinery meets it (``slug``, ``identity``, ``seeds``, ``to_dict``,
``from_dict``, ``with_seeds``, ``replace``, ``iterations``), so that records, the store, the sweep
and the report handle both tracks. ``to_dict`` carries ``"track": "image"``; a dict without it is a
1D config (``ganrepro.tracks.config_from_dict`` dispatches).

Fixed by the spec, not free fields: Adam (lr 2e-4, beta1 0.5, beta2 0.999, eps 1e-8), LeakyReLU
slope 0.2, batch norm eps 1e-5 and momentum 0.1, the widths of each model per image size.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from ..config import DTYPES, MAX_RUN_SEEDS, MAX_SEED, MEMORY_LIMIT_BYTES, ConfigError, format_seeds
from .data import DATASETS, IMAGE_SIZE

TRACK = "image"

MODELS = ("linear", "dcgan")
IMAGE_G_LOSSES = ("non_saturating", "saturating")
"""L^_G = mean(-log sigmoid(l)) (post 004's, the default) or L_G = mean(log(1 - sigmoid(l))) (minimax)."""

ADAM_LR = 2e-4
ADAM_BETA1 = 0.5
ADAM_BETA2 = 0.999
ADAM_EPS = 1e-8
LEAKY_SLOPE = 0.2
BN_EPS = 1e-5
BN_MOMENTUM = 0.1
INIT_STD = 0.02

LINEAR_HIDDEN = {8: 128, 28: 256}
"""Hidden width h of the linear GAN per image size."""
DCGAN_WIDTH = {8: 16, 28: 32}
"""Base width f of the DCGAN per image size (G: 2f -> f -> 1 channels; D: 1 -> f -> 2f)."""

MAX_Z_DIM = 128
MAX_IMAGE_BATCH = 1024
MAX_IMAGE_STEPS = 200_000
MAX_IMAGE_SEEDS = 1024

DEFAULTS = dict(model="dcgan", z_dim=2, g_loss="non_saturating", freeze_g=False, batch_size=64, num_steps=1000,
                curve_interval=10, checkpoint_interval=100, dtype="float32")


@dataclass(frozen=True)
class ImageConfig:
    """One image experiment (docs/images.md): data set, model, latent size, G loss, sizes, dtype, seeds.

    ``freeze_g``: D trains alone against G's initial weights (post 004's frozen-G experiment);
    G's gradient is still computed for the diagnostics. ``checkpoint_interval``: G is evaluated
    on the latent grid every that many steps and after the last one.
    """

    dataset: str = "digits8"
    model: str = "dcgan"
    z_dim: int = 2
    g_loss: str = "non_saturating"
    freeze_g: bool = False
    batch_size: int = 64
    num_steps: int = 1000
    curve_interval: int = 10
    checkpoint_interval: int = 100
    dtype: str = "float32"
    seeds: tuple[int, ...] = field(default=(0,))

    track = TRACK  # a class attribute, not a field

    def __post_init__(self) -> None:
        object.__setattr__(self, "seeds", tuple(int(s) for s in self.seeds))
        _validate(self)

    # ---- derived ------------------------------------------------------------------------------
    @property
    def image_size(self) -> int:
        return IMAGE_SIZE[self.dataset]

    @property
    def pixels(self) -> int:
        return self.image_size * self.image_size

    @property
    def iterations(self) -> int:
        """Training steps run (each one D update, then one G update)."""
        return self.num_steps

    @property
    def hidden_size(self) -> int:
        """The linear GAN's hidden width h."""
        return LINEAR_HIDDEN[self.image_size]

    @property
    def base_width(self) -> int:
        """The DCGAN's base width f."""
        return DCGAN_WIDTH[self.image_size]

    @property
    def first_map(self) -> int:
        """s0 = H / 4: the side of G's first feature map and of D's last one (DCGAN)."""
        return self.image_size // 4

    # ---- identity -----------------------------------------------------------------------------
    @property
    def slug(self) -> str:
        """Readable, stable identity without seeds, e.g. ``img-digits8-dcgan-z2-B64-T1000-float32``."""
        parts = [f"img-{self.dataset}-{self.model}-z{self.z_dim}-B{self.batch_size}-T{self.num_steps}"]
        if self.g_loss == "saturating":
            parts.append("sat")
        if self.freeze_g:
            parts.append("frozenG")
        if self.curve_interval != DEFAULTS["curve_interval"]:
            parts.append(f"ci{self.curve_interval}")
        if self.checkpoint_interval != DEFAULTS["checkpoint_interval"]:
            parts.append(f"ck{self.checkpoint_interval}")
        parts.append(self.dtype)
        return "-".join(parts)

    @property
    def identity(self) -> str:
        return f"{self.slug}@{format_seeds(self.seeds)}"

    def to_dict(self) -> dict:
        d = dataclasses.asdict(self)
        d["seeds"] = list(self.seeds)
        d["track"] = TRACK
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ImageConfig:
        d = dict(d)
        track = d.pop("track", TRACK)
        if track != TRACK:
            raise ConfigError(f"not an image config: track {track!r}")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(d) - names)
        if unknown:
            raise ConfigError(f"unknown image config field(s) {unknown}; allowed: {sorted(names)}")
        return cls(**d)

    def replace(self, **changes) -> ImageConfig:
        return dataclasses.replace(self, **changes)

    def with_seeds(self, seeds) -> ImageConfig:
        return dataclasses.replace(self, seeds=tuple(seeds))


def make_image_config(**overrides) -> ImageConfig:
    """The defaults of docs/images.md with ``overrides`` applied (``None`` keeps a default)."""
    return ImageConfig(**{k: v for k, v in overrides.items() if v is not None})


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


INT_LIMITS = {
    "z_dim": (1, MAX_Z_DIM), "batch_size": (2, MAX_IMAGE_BATCH), "num_steps": (1, MAX_IMAGE_STEPS),
    "curve_interval": (1, MAX_IMAGE_STEPS + 1), "checkpoint_interval": (1, MAX_IMAGE_STEPS + 1),
}


def estimated_bytes(c: ImageConfig) -> int:
    """A generous estimate of a run's peak memory (all its seeds as one stack), in bytes.

    8-byte words: the weights with gradients and Adam moments (8 S P, P the larger player's
    parameter count), the activations of a step (24 S B A, A the feature-map values of one image
    through G and D: 2 (h + n) for the linear GAN, n (2 + f) for the DCGAN), a chunk's indices and
    noise (3 L S B (Z + 1), L <= checkpoint interval), the curves and the checkpoint grids as bytes
    (6 S T / curve interval + S (T / checkpoint interval + 2) 225 n / 8), and the evaluation of
    at most 16 seeds at a time (min(S, 16) 10,000 n).
    """
    s, b, n = len(c.seeds), c.batch_size, c.pixels
    if c.model == "linear":
        params = max(c.z_dim * c.hidden_size + c.hidden_size * n, n * c.hidden_size) + n + c.hidden_size
        acts = 2 * (c.hidden_size + n)
    else:
        f, s0 = c.base_width, c.first_map
        params = max(c.z_dim * s0 * s0 * 2 * f + 16 * 2 * f * f + 16 * f, 16 * f + 16 * 2 * f * f + s0 * s0 * 2 * f)
        acts = n * (2 + f)
    chunk = min(c.checkpoint_interval, c.iterations)
    words = (8 * s * params + 24 * s * b * acts + 3 * chunk * s * b * (c.z_dim + 1)
             + s * (c.iterations // c.curve_interval + 2) * 6
             + s * (c.iterations // c.checkpoint_interval + 2) * 225 * n // 8 + min(s, 16) * 10_000 * n)
    return 8 * words


def _validate(c: ImageConfig) -> None:
    def need(ok: bool, msg: str, field_name: str | None = None) -> None:
        if not ok:
            raise ConfigError(msg, field_name)

    need(c.dataset in DATASETS, f"unknown dataset {c.dataset!r}; allowed: {', '.join(DATASETS)}", "dataset")
    need(c.model in MODELS, f"unknown image model {c.model!r}; allowed: {', '.join(MODELS)}", "model")
    need(c.g_loss in IMAGE_G_LOSSES,
         f"unknown generator loss {c.g_loss!r} for the image track; allowed: {', '.join(IMAGE_G_LOSSES)}", "g_loss")
    need(isinstance(c.freeze_g, bool), f"freeze_g must be true or false, got {c.freeze_g!r}", "freeze_g")
    need(c.dtype in DTYPES, f"unknown dtype {c.dtype!r}; allowed: {', '.join(DTYPES)}", "dtype")
    for name, (low, high) in INT_LIMITS.items():
        v = getattr(c, name)
        need(_is_int(v) and v >= low, f"{name} must be an integer >= {low}, got {v!r}", name)
        need(v <= high, f"{name} must be at most {high}, got {v!r}", name)
    need(len(c.seeds) >= 1, "at least one seed is required", "seeds")
    need(len(c.seeds) <= min(MAX_RUN_SEEDS, MAX_IMAGE_SEEDS),
         f"an image run stacks at most {MAX_IMAGE_SEEDS} seeds, got {len(c.seeds)}", "seeds")
    need(all(0 <= s <= MAX_SEED for s in c.seeds), f"seeds must lie in 0..{MAX_SEED}, got {list(c.seeds)}", "seeds")
    need(len(set(c.seeds)) == len(c.seeds), f"seeds must be distinct, got {list(c.seeds)}", "seeds")
    size = estimated_bytes(c)
    need(size <= MEMORY_LIMIT_BYTES,
         f"an image run of {len(c.seeds)} seed(s) x batch size {c.batch_size} ({c.model}, {c.dataset}) x "
         f"{c.iterations} steps needs about {size / 2**30:,.1f} GiB by the suite's estimate, over the limit of "
         f"{MEMORY_LIMIT_BYTES // 2**30} GiB per run; run fewer seeds at once or smaller sizes", "seeds")
