"""The registry of named variants: stable names, valid configs, post 000's 2x2x2 grid.

Framework-free and fast: no training happens here (``tests/test_cli.py`` runs a variant).
"""
from __future__ import annotations

import dataclasses
import itertools
import re
import subprocess
import sys
from collections import defaultdict
from pathlib import Path

import pytest

from ganrepro.config import ConfigError, ExperimentConfig, make_config
from ganrepro.variants import POSTS, VARIANTS, Variant, get_variant, post_source, variant_config, variant_names

# Names are stable API: changing this list is a breaking change (reports and sweeps refer to them).
PINNED = [
    "blog2016/vanilla", "blog2016/minibatch", "blog2017/vanilla", "blog2017/minibatch",
    "post000/vanilla", "post000/fm", "post000/noise", "post000/noise+fm",
    "post000/mbd", "post000/mbd+fm", "post000/mbd+noise", "post000/mbd+noise+fm",
    "fm/paired_l2", "fm/paired_sq", "fm/mean_sq",
    "gloss/non_saturating", "gloss/saturating",
    "noise/d_inputs-0.001", "noise/d_inputs-0.1-linear",
    "smoothing/alpha0.9", "hist/lambda0.001",
]

# The same experiment named from two posts: post 000 re-ran the blog's protocol-2017 runs, its
# feature-matching cell is the paired-L2 form, and the non-saturating G loss is the default. These
# names share one config and hence one slug (and one --out folder); every other slug is unique.
ALIASES = [
    {"blog2017/vanilla", "post000/vanilla", "gloss/non_saturating"},
    {"blog2017/minibatch", "post000/mbd"},
    {"post000/fm", "fm/paired_l2"},
]

SOURCES_DOC = (Path(__file__).resolve().parents[1] / "docs" / "sources.md").read_text(encoding="utf-8")


def test_names_are_pinned():
    assert variant_names() == PINNED
    assert list(VARIANTS) == PINNED
    assert all(VARIANTS[n].name == n for n in PINNED)


@pytest.mark.parametrize("name", PINNED)
def test_every_variant_is_a_valid_described_config(name):
    variant = VARIANTS[name]
    assert isinstance(variant, Variant)
    config = variant_config(name)
    assert isinstance(config, ExperimentConfig)
    assert config.seeds == (0,)
    assert config.protocol == variant.protocol == variant.overrides["protocol"]
    assert ExperimentConfig.from_dict(config.to_dict()) == config  # a plain, complete value
    assert variant.config() == config
    # A one-line description that names the source post it comes from; the source is that post's
    # number and title (no file path: the posts' texts are not part of the repository).
    assert variant.description.strip() and "\n" not in variant.description
    post = re.search(r"\(post (\d{3})\)$", variant.description)
    assert post, variant.description
    assert variant.source == post_source(post.group(1)) == f"post {post.group(1)}: '{POSTS[post.group(1)]}'"
    assert "/" not in variant.source and "seed" not in variant.source.lower()
    # "seed" means a random seed only: a description never calls a post a seed.
    assert not re.search(r"\bseeds? ?-?\d{3}", variant.description), variant.description


def test_posts_are_named_by_number_and_their_own_title():
    assert sorted(POSTS) == ["000", "001", "003", "004"]  # 002 is a mirror of 001; no variant cites it
    assert {VARIANTS[n].source for n in PINNED} == {post_source(p) for p in POSTS}
    for number, title in POSTS.items():
        assert title.strip() == title and "\n" not in title and "'" not in title
        in_doc = " ".join(title.split()) in " ".join(SOURCES_DOC.split())
        assert in_doc, f"post {number}'s title is not in docs/sources.md"


def test_slugs_are_unique_except_the_pinned_aliases():
    by_slug = defaultdict(set)
    for name in PINNED:
        by_slug[variant_config(name).slug].add(name)
    shared = sorted(sorted(names) for names in by_slug.values() if len(names) > 1)
    assert shared == sorted(sorted(group) for group in ALIASES)
    # A slug names one experiment: names that share a slug share the whole config (and vice versa).
    for a, b in itertools.combinations(PINNED, 2):
        ca, cb = variant_config(a), variant_config(b)
        assert (ca.slug == cb.slug) == (ca == cb), (a, b)


def _differences(config: ExperimentConfig) -> dict:
    """The fields of ``config`` that differ from its protocol's defaults."""
    base = make_config(config.protocol).to_dict()
    return {k: v for k, v in config.to_dict().items() if v != base[k]}


def test_blog_runs_are_the_protocol_defaults():
    for protocol in ("2016", "2017"):
        assert variant_config(f"blog{protocol}/vanilla") == make_config(protocol)
        assert variant_config(f"blog{protocol}/minibatch") == make_config(protocol, minibatch=True)
    assert variant_config("blog2016/minibatch").mbd_self_term == "exp-1"
    assert variant_config("blog2017/minibatch").mbd_self_term == "exp0"


def test_post000_grid_is_the_full_two_by_two_by_two_design():
    cells = {n: variant_config(n) for n in PINNED if n.startswith("post000/")}
    assert len(cells) == 8
    design = set()
    for name, c in cells.items():
        mbd, noise, fm = c.minibatch, c.instance_noise > 0, c.feature_matching != "none"
        design.add((mbd, noise, fm))
        expected = {}
        if mbd:
            expected["minibatch"] = True
        if noise:  # the post's code: std 0.001 on x and on z (G's input), constant
            expected.update(instance_noise=0.001, noise_target="z")
        if fm:  # the post replaces G's loss by paired-L2 feature matching, weight 1
            expected.update(g_loss="none", feature_matching="paired_l2")
        assert c.protocol == "2017", name
        assert _differences(c) == expected, name
        assert (c.fm_weight, c.noise_schedule, c.noise_anneal_steps) == (1.0, "constant", 0)
        assert "post 000" in VARIANTS[name].description
        if noise:
            assert "z" in VARIANTS[name].description and "not on G(z)" in VARIANTS[name].description
    assert design == set(itertools.product((False, True), repeat=3))


def test_technique_variants_change_only_their_switch():
    expect = {
        "fm/paired_l2": dict(g_loss="none", feature_matching="paired_l2"),
        "fm/paired_sq": dict(g_loss="none", feature_matching="paired_sq"),
        "fm/mean_sq": dict(g_loss="none", feature_matching="mean_sq"),
        "gloss/non_saturating": {},
        "gloss/saturating": dict(g_loss="saturating"),
        "noise/d_inputs-0.001": dict(instance_noise=0.001),
        "noise/d_inputs-0.1-linear": dict(instance_noise=0.1, noise_schedule="linear", noise_anneal_steps=2500),
        "smoothing/alpha0.9": dict(label_smoothing=0.9),
        "hist/lambda0.001": dict(historical_averaging=0.001),
    }
    for name, diff in expect.items():
        c = variant_config(name)
        assert (c.protocol, c.minibatch) == ("2017", False), name
        assert _differences(c) == diff, name
    assert variant_config("noise/d_inputs-0.001").noise_target == "d_inputs"
    assert variant_config("noise/d_inputs-0.1-linear").noise_target == "d_inputs"


def test_variant_config_overrides():
    name = "post000/mbd+noise+fm"
    before = dict(VARIANTS[name].overrides)
    c = variant_config(name, seeds=range(4), dtype="float64", num_steps=20, fm_weight=0.5)
    assert (c.seeds, c.dtype, c.num_steps, c.fm_weight) == ((0, 1, 2, 3), "float64", 20, 0.5)
    assert (c.minibatch, c.g_loss, c.feature_matching, c.instance_noise, c.noise_target) == \
        (True, "none", "paired_l2", 0.001, "z")
    assert variant_config(name, dtype=None, num_steps=None) == variant_config(name)  # None: keep
    assert variant_config(name, minibatch=False) == variant_config("post000/noise+fm")
    # Another protocol starts from that protocol's defaults, the variant's switches kept.
    c16 = variant_config("blog2017/minibatch", protocol="2016")
    assert c16 == variant_config("blog2016/minibatch")
    assert VARIANTS[name].overrides == before  # the registry is not mutated
    with pytest.raises(ConfigError, match="label smoothing"):
        variant_config("smoothing/alpha0.9", label_smoothing=1.5)
    with pytest.raises(ConfigError, match="longer than the run"):
        variant_config("noise/d_inputs-0.1-linear", num_steps=100)
    with pytest.raises(ConfigError, match="G needs a loss"):
        variant_config("fm/mean_sq", feature_matching="none")
    with pytest.raises(ConfigError, match="unknown config field"):
        variant_config("blog2017/vanilla", no_such_field=1)
    with pytest.raises(dataclasses.FrozenInstanceError):
        VARIANTS[name].name = "x"


def test_unknown_name_lists_close_matches_or_all_names():
    with pytest.raises(ConfigError, match=r"unknown variant 'post000/mdb'; did you mean post000/mbd\b"):
        variant_config("post000/mdb")
    # post 000's grid was once named seed000/...: an old name is refused, with its new name as the hint
    with pytest.raises(ConfigError, match=r"^unknown variant 'seed000/mbd\+fm'; it is now called post000/mbd\+fm "):
        get_variant("seed000/mbd+fm")
    with pytest.raises(ConfigError, match=r"unknown variant 'seed000/mdb'; did you mean post000/mbd\b"):
        get_variant("seed000/mdb")
    with pytest.raises(ConfigError) as err:
        get_variant("zzz")
    message = str(err.value)
    assert "'zzz'" in message and all(n in message for n in PINNED)
    assert "\n" not in message


def test_import_is_framework_free():
    code = "import sys, ganrepro.variants; print(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))"
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "[]"
