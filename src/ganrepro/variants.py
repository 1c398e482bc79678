"""Named variants: the experiments of the source posts, by stable names (``ganrepro variants``).

Each name maps to a full :class:`~ganrepro.config.ExperimentConfig`, built with
:func:`~ganrepro.config.make_config` from the variant's protocol and overrides (seeds (0,) unless
overridden). Names are stable API: reports, sweeps and ``ganrepro run --variant NAME`` refer to
them, and ``tests/test_variants.py`` pins the list. The sources are five public blog posts and
notes, numbered "post 000" to "post 004" (:data:`POSTS`; ``docs/sources.md`` gives each one's
title and public address); every technique is defined by formula in ``docs/techniques.md``
section 8. "Post" always means a source post here, "seed" always a random seed. Framework-free:
nothing here imports torch or tensorflow.
"""
from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from typing import Any

from .config import ConfigError, ExperimentConfig, make_config

POSTS = {
    "000": "Generative Adversarial Networks – An Experiment with Training Improvement Techniques "  # noqa: RUF001 (the post's own dash)
           "(in Tensorflow)",
    "001": "Improved Techniques for Training GANs",  # The Neural Perspective (post 002 is a mirror of it)
    "003": "An introduction to Generative Adversarial Networks (with code in TensorFlow)",  # AYLIEN
    "004": "Generative Adversarial Networks (GANs)",  # notes on losses, diagnostics, DCGAN on MNIST
}
"""The source posts the variants come from: number -> the post's own title (see docs/sources.md)."""


def post_source(number: str) -> str:
    """A variant's ``source`` text: the post's number and title, e.g. ``post 003: 'An introduction ...'``."""
    return f"post {number}: '{POSTS[number]}'"


POST000_NOISE = dict(instance_noise=0.001, noise_target="z")
"""Post 000's noise, as its code does it: std 0.001 on x and on z, the generator's input (not G(z))."""

POST000_FM = dict(g_loss="none", feature_matching="paired_l2")
"""Post 000's feature matching: paired L2 on D's last hidden layer REPLACES G's adversarial loss."""


@dataclass(frozen=True)
class Variant:
    """A named experiment: ``overrides`` (``protocol`` included) applied to the protocol's defaults."""

    name: str
    description: str
    source: str  # the source post: its number and title, see post_source()
    overrides: dict = field(default_factory=dict)

    @property
    def protocol(self) -> str:
        return str(self.overrides.get("protocol", "2017"))

    def config(self, **changes) -> ExperimentConfig:
        """The variant's config; ``changes`` (``None`` values ignored) replace its fields.

        A changed ``protocol`` starts from that protocol's defaults, the variant's other
        overrides still applied on top.
        """
        fields = {f.name for f in dataclasses.fields(ExperimentConfig)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise ConfigError(f"unknown config field(s) {unknown}; allowed: {sorted(fields)}")
        values = {**self.overrides, **{k: v for k, v in changes.items() if v is not None}}
        protocol = values.pop("protocol", "2017")
        return make_config(protocol, **values)


def _v(name: str, post: str, description: str, protocol: str = "2017", **overrides) -> Variant:
    return Variant(name, f"{description} (post {post})", post_source(post), dict(protocol=protocol, **overrides))


def _post000_grid() -> list[Variant]:
    """Post 000's 2x2x2 design: minibatch x noise x feature matching, protocol 2017."""
    cells = []
    for mbd in (False, True):
        for noise in (False, True):
            for fm in (False, True):
                parts = [p for p, on in (("mbd", mbd), ("noise", noise), ("fm", fm)) if on]
                name = "post000/" + ("+".join(parts) if parts else "vanilla")
                what = ["minibatch discrimination" if mbd else "no minibatch discrimination"]
                if noise:
                    what.append("noise std 0.001 on x and on G's input z in D's update, as the post's code "
                                "does (not on G(z), so not instance noise proper)")
                if fm:
                    what.append("paired-L2 feature matching replacing G's loss")
                overrides: dict[str, Any] = dict(minibatch=mbd, **(POST000_NOISE if noise else {}),
                                                 **(POST000_FM if fm else {}))
                cells.append(_v(name, "000", "post 000's 2x2x2 grid, protocol 2017: " + "; ".join(what),
                                **overrides))
    return cells


_ALL = [
    # The blog's runs (post 003), both reference protocols.
    _v("blog2016/vanilla", "003", "the blog's vanilla run, protocol 2016 (blog, first commit): tanh D, "
       "gradient descent, 1000 steps of D pretraining", "2016"),
    _v("blog2016/minibatch", "003", "the blog's minibatch-discrimination run, protocol 2016 (self term exp(-1))",
       "2016", minibatch=True),
    _v("blog2017/vanilla", "003", "the blog's vanilla run, protocol 2017 (repository head): relu D, "
       "TF1 Adam, clipped log, no pretraining", "2017"),
    _v("blog2017/minibatch", "003", "the blog's minibatch-discrimination run, protocol 2017 (self term exp(0))",
       "2017", minibatch=True),
    *_post000_grid(),
    # The three published feature-matching forms, side by side (G's loss replaced, no minibatch).
    _v("fm/paired_l2", "001", "feature matching alone, paired L2 as in posts 000/001: "
       "sqrt(sum_i,k (f(x_i)_k - f(G(z_i))_k)^2); G's adversarial loss off",
       g_loss="none", feature_matching="paired_l2"),
    _v("fm/paired_sq", "001", "feature matching alone, the readers' correction: paired squared L2 "
       "(no sqrt); G's adversarial loss off", g_loss="none", feature_matching="paired_sq"),
    _v("fm/mean_sq", "001", "feature matching alone, Salimans et al.'s form: "
       "||mean_i f(x_i) - mean_i f(G(z_i))||^2; G's adversarial loss off",
       g_loss="none", feature_matching="mean_sq"),
    # Saturating vs non-saturating G loss (post 004), protocol 2017, vanilla.
    _v("gloss/non_saturating", "004", "non-saturating G loss mean(-log D(G(z))), protocol 2017, vanilla",
       g_loss="non_saturating"),
    _v("gloss/saturating", "004", "saturating (original minimax) G loss mean(log(1 - D(G(z)))), "
       "protocol 2017, vanilla", g_loss="saturating"),
    # Instance noise proper: on D's inputs x and G(z), in both updates.
    _v("noise/d_inputs-0.001", "000", "instance noise proper: std 0.001 on D's inputs x and G(z) in both "
       "updates (post 000's std; its code perturbs z instead), protocol 2017, vanilla",
       instance_noise=0.001, noise_target="d_inputs"),
    _v("noise/d_inputs-0.1-linear", "000", "instance noise proper, std 0.1 on D's inputs x and G(z), "
       "linearly annealed to zero over 2500 steps, protocol 2017, vanilla",
       instance_noise=0.1, noise_target="d_inputs", noise_schedule="linear", noise_anneal_steps=2500),
    # Salimans et al.'s other techniques (the paper post 001 explains), protocol 2017, vanilla.
    _v("smoothing/alpha0.9", "001", "one-sided label smoothing (Salimans et al.): D's real target 0.9, "
       "fake target 0, protocol 2017, vanilla", label_smoothing=0.9),
    _v("hist/lambda0.001", "001", "historical averaging (Salimans et al.): lambda 0.001 * "
       "||theta - mean of past theta||^2 on each player's loss, protocol 2017, vanilla",
       historical_averaging=0.001),
]

VARIANTS: dict[str, Variant] = {v.name: v for v in _ALL}
assert len(VARIANTS) == len(_ALL), "duplicate variant name"


def variant_names() -> list[str]:
    """Every variant name, in registry order."""
    return list(VARIANTS)


RENAMED = {"seed000/": "post000/"}
"""Old name prefix -> new one: post 000's grid was once named ``seed000/...`` (a name that read
like a random seed); an old name is refused with the new name as the hint."""


@dataclass(frozen=True)
class ImageVariant:
    """A named experiment of the image track (docs/images.md#experiments): ``overrides`` applied to
    ``ImageConfig``'s defaults. Same interface as :class:`Variant` where the grids and the command
    line meet it."""

    name: str
    description: str
    source: str
    overrides: dict = field(default_factory=dict)
    track = "image"

    def config(self, **changes):
        """The variant's ``ImageConfig``; ``changes`` (``None`` values ignored) replace its fields."""
        from .image.config import ImageConfig, make_image_config

        fields = {f.name for f in dataclasses.fields(ImageConfig)}
        unknown = sorted(set(changes) - fields)
        if unknown:
            raise ConfigError(f"unknown image config field(s) {unknown}; allowed: {sorted(fields)}")
        return make_image_config(**{**self.overrides, **{k: v for k, v in changes.items() if v is not None}})


def _image_variants() -> list[ImageVariant]:
    """Post 004's experiments: each model x z-dim 2, 7 x each G loss, and D against a frozen G."""
    out = []
    for model, what in (("dcgan", "the DCGAN (post 004's 'conv' version)"),
                        ("linear", "the two-layer fully connected GAN (post 004's 'linear' version)")):
        for z in (2, 7):
            for loss in ("non_saturating", "saturating"):
                name = f"post004/{model}-z{z}" + ("-saturating" if loss == "saturating" else "")
                form = ("non-saturating G loss mean(-log sigmoid(D(G(z))))" if loss == "non_saturating"
                        else "saturating (minimax) G loss mean(log(1 - sigmoid(D(G(z)))))")
                out.append(ImageVariant(name, f"{what}, z-dim {z}, {form} (post 004)", post_source("004"),
                                        dict(model=model, z_dim=z, g_loss=loss)))
    out.append(ImageVariant("post004/dcgan-z2-frozen-g", "D trained alone against a frozen G (its initial "
                            "weights), the DCGAN with z-dim 2: where does the gradient reaching G vanish? (post 004)",
                            post_source("004"), dict(model="dcgan", z_dim=2, freeze_g=True)))
    return out


IMAGE_VARIANTS: dict[str, ImageVariant] = {v.name: v for v in _image_variants()}
"""The image track's named variants (kept apart from VARIANTS, the 1D track's, so that the 1D
grids and their committed reports are unchanged); ``get_variant`` finds both."""


def image_variant_names() -> list[str]:
    """Every image variant name, in registry order."""
    return list(IMAGE_VARIANTS)


def get_variant(name: str) -> Variant | ImageVariant:
    """The variant called ``name`` (of either track); ``ConfigError`` naming close matches otherwise."""
    if isinstance(name, str) and name in IMAGE_VARIANTS:
        return IMAGE_VARIANTS[name]
    try:
        return VARIANTS[name]
    except (KeyError, TypeError):
        text = str(name)
        renamed = next((new + text[len(old):] for old, new in RENAMED.items() if text.startswith(old)), None)
        if renamed in VARIANTS:
            raise ConfigError(f"unknown variant {name!r}; it is now called {renamed} "
                              "(see 'ganrepro variants')") from None
        close = difflib.get_close_matches(renamed or text, [*VARIANTS, *IMAGE_VARIANTS], n=3, cutoff=0.6)
        hint = (f"did you mean {', '.join(close)}?" if close
                else f"known variants: {', '.join(VARIANTS)}")
        raise ConfigError(f"unknown variant {name!r}; {hint} (see 'ganrepro variants')") from None


def variant_config(name: str, **overrides) -> ExperimentConfig:
    """The config of variant ``name``, with ``overrides`` (e.g. seeds, dtype, num_steps) applied.

    ``None`` overrides are ignored; a bad name or value raises ``ConfigError``.
    """
    return get_variant(name).config(**overrides)
