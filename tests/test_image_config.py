"""The image track's config, named variants, grids, inputs and command-line errors (fast, framework-free).

docs/images.md: the config's identity and validation, the initial weights' draw order and
statistics, the batches (epoch permutations per seed, independent of the stack and the chunking),
the latent grid, the step sizes; ``ganrepro run``/``variants``/``sweep`` refusing bad image input
with one line and exit 2 before any training.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from ganrepro.cli import main
from ganrepro.config import ConfigError
from ganrepro.grids import GRIDS, IMAGE_COMPARISONS, get_grid
from ganrepro.image import streams
from ganrepro.image.config import ADAM_BETA1, ADAM_BETA2, ADAM_LR, ImageConfig, estimated_bytes
from ganrepro.image.weights import discriminator_shapes, generator_shapes, initial_weights
from ganrepro.tracks import config_from_dict, track_of
from ganrepro.variants import IMAGE_VARIANTS, VARIANTS, get_variant, image_variant_names


# ---- config ---------------------------------------------------------------------------------------
def test_identity_names_every_field_that_differs():
    c = ImageConfig(seeds=(0, 1, 2))
    assert c.identity == "img-digits8-dcgan-z2-B64-T1000-float32@0-2"
    d = ImageConfig(dataset="fashion-mnist", model="linear", z_dim=7, g_loss="saturating", freeze_g=True,
                    checkpoint_interval=50, curve_interval=5, dtype="float64")
    assert d.slug == "img-fashion-mnist-linear-z7-B64-T1000-sat-frozenG-ci5-ck50-float64"
    assert len({ImageConfig(**{k: v}).slug for k, v in
                [("z_dim", 3), ("model", "linear"), ("batch_size", 32), ("num_steps", 10), ("dtype", "float64")]}) == 5


def test_dict_round_trip_and_track_dispatch():
    c = ImageConfig(model="linear", z_dim=7, seeds=(3, 4))
    d = c.to_dict()
    assert d["track"] == "image" and d["seeds"] == [3, 4]
    assert config_from_dict(d) == c and track_of(c) == "image"
    one_d = get_variant("blog2017/vanilla").config()
    assert config_from_dict(one_d.to_dict()) == one_d and track_of(one_d) == "1d"
    with pytest.raises(ConfigError, match="unknown image config field"):
        ImageConfig.from_dict({**d, "minibatch": True})


@pytest.mark.parametrize("change, words", [
    (dict(dataset="cifar"), ["unknown dataset 'cifar'", "digits8, mnist, fashion-mnist"]),
    (dict(model="resnet"), ["unknown image model", "linear, dcgan"]),
    (dict(z_dim=0), ["z_dim", ">= 1", "0"]),
    (dict(g_loss="none"), ["generator loss 'none'", "non_saturating, saturating"]),
    (dict(batch_size=1), ["batch_size", ">= 2"]),
    (dict(freeze_g=1), ["freeze_g must be true or false"]),
    (dict(seeds=(1, 1)), ["distinct"]),
    (dict(dataset="mnist", seeds=tuple(range(64)), batch_size=1024), ["GiB", "limit"]),
])
def test_bad_values_name_the_value_and_the_rule(change, words):
    with pytest.raises(ConfigError) as info:
        ImageConfig(**change)
    for word in words:
        assert word in str(info.value)


def test_memory_estimate_grows_with_every_size():
    base = estimated_bytes(ImageConfig())
    for change in (dict(seeds=(0, 1)), dict(batch_size=128), dict(dataset="mnist"), dict(num_steps=5000)):
        assert estimated_bytes(ImageConfig(**change)) > base


# ---- weights --------------------------------------------------------------------------------------
@pytest.mark.parametrize("model", ["linear", "dcgan"])
@pytest.mark.parametrize("dataset", ["digits8", "mnist"])
def test_initial_weights_follow_the_spec(model, dataset):
    c = ImageConfig(model=model, dataset=dataset, seeds=(0, 1))
    w = initial_weights(c)
    assert list(w["G"]) == [n for n, _, _ in generator_shapes(c)]
    assert list(w["D"]) == [n for n, _, _ in discriminator_shapes(c)]
    for player, shapes in (("G", generator_shapes(c)), ("D", discriminator_shapes(c))):
        for name, shape, init in shapes:
            a = w[player][name]
            assert a.shape == (2, *shape) and a.dtype == np.float32
            if init == "normal":
                assert 0.015 < float(a.std()) < 0.025 and abs(float(a.mean())) < 0.01, name
            else:
                assert (a == (1.0 if init == "ones" else 0.0)).all(), name
    if model == "dcgan":
        f, s0 = c.base_width, c.first_map
        assert w["G"]["g1.w"].shape == (2, 4, 4, 2 * f, f) and w["D"]["d2.w"].shape == (2, s0 * s0 * 2 * f, 1)
        assert set(w["G_stats"]) == {"g0.bn.mean", "g0.bn.var", "g1.bn.mean", "g1.bn.var"}
    else:
        assert w["G_stats"] == {}


def test_a_seed_draws_the_same_weights_alone_and_in_a_stack():
    alone = initial_weights(ImageConfig(seeds=(5,)))
    stacked = initial_weights(ImageConfig(seeds=(4, 5, 6)))
    for player in ("G", "D"):
        for name, a in alone[player].items():
            assert np.array_equal(a[0], stacked[player][name][1])


# ---- inputs ---------------------------------------------------------------------------------------
def test_batches_are_epoch_permutations_independent_of_stack_and_chunking():
    c = ImageConfig(seeds=(0, 1), num_steps=25, checkpoint_interval=10, batch_size=8)
    chunks = list(streams.training_chunks(c, 50))
    assert [(ch.start, ch.n_valid) for ch in chunks] == [(0, 10), (10, 10), (20, 5)]
    assert all(ch.idx.shape == (10, 2, 8) and ch.z_d.shape == (10, 2, 8, 2) for ch in chunks)
    assert not chunks[-1].idx[5:].any() and not chunks[-1].z_g[5:].any() and not chunks[-1].lr_d[5:].any()
    seq = np.concatenate([ch.idx[:ch.n_valid, 0].ravel() for ch in chunks])
    for epoch in range(4):  # 200 indices: four whole permutations of 50
        assert sorted(seq[50 * epoch:50 * (epoch + 1)]) == list(range(50))
    alone = next(streams.training_chunks(c.replace(seeds=(1,), checkpoint_interval=25), 50))
    assert np.array_equal(alone.idx[:, 0], np.concatenate([ch.idx[:ch.n_valid, 1] for ch in chunks]))
    assert np.array_equal(alone.z_g[:, 0], np.concatenate([ch.z_g[:ch.n_valid, 1] for ch in chunks]))
    assert not np.array_equal(chunks[0].z_d, chunks[0].z_g)


def test_step_sizes_are_adam_alpha_t():
    lr = streams.adam_step_sizes(3)
    t = np.arange(1, 4)
    assert np.allclose(lr, ADAM_LR * np.sqrt(1 - ADAM_BETA2**t) / (1 - ADAM_BETA1**t), rtol=1e-15)


def test_checkpoints_and_latent_grid():
    assert streams.checkpoint_steps(ImageConfig(num_steps=250, checkpoint_interval=100)) == [0, 100, 200, 250]
    grid = streams.latent_grid(2)
    assert grid.shape == (225, 2) and grid.min() == -3 and grid.max() == 3
    assert np.array_equal(grid[:15, 0], np.full(15, -3.0)) and np.allclose(grid[:15, 1], np.linspace(-3, 3, 15))
    seven = streams.latent_grid(7)
    assert seven.shape == (225, 7) and np.array_equal(seven, streams.latent_grid(7))
    assert abs(float(seven.std()) - 1) < 0.1


# ---- variants and grids ---------------------------------------------------------------------------
def test_image_variants_are_post_004s_experiments():
    names = image_variant_names()
    assert len(names) == 9 and all(n.startswith("post004/") for n in names)
    assert not set(names) & set(VARIANTS)  # the 1D registry (and its grids) is unchanged
    frozen = IMAGE_VARIANTS["post004/dcgan-z2-frozen-g"].config()
    assert frozen.freeze_g and frozen.model == "dcgan" and frozen.z_dim == 2
    assert get_variant("post004/linear-z7-saturating").config().g_loss == "saturating"
    assert GRIDS["image"].track == "image" and GRIDS["default"].track == "1d"
    assert set(GRIDS["image"].variants) == set(names) and len(GRIDS["image"].seeds) == 16
    assert all(GRIDS["fashion-mnist"].config(v).dataset == "fashion-mnist" for v in GRIDS["fashion-mnist"].variants)
    for technique, baseline, _ in IMAGE_COMPARISONS:
        a, b = get_variant(technique).config(), get_variant(baseline).config()
        assert sum(getattr(a, f) != getattr(b, f) for f in ("model", "z_dim", "g_loss")) == 1


def test_a_grid_holds_one_track():
    from ganrepro.grids import Grid

    with pytest.raises(ConfigError, match="mixes"):
        Grid("mixed", "", ("blog2017/vanilla", "post004/dcgan-z2"), ("torch",), (0,))
    assert get_grid("image-smoke").config("post004/dcgan-z2").num_steps == 200


# ---- command line ---------------------------------------------------------------------------------
@pytest.fixture
def no_image_training(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    from ganrepro.image import training

    def refuse(*args, **kwargs):
        raise AssertionError("training started despite a bad command line")

    monkeypatch.setattr(training, "train", refuse)
    return tmp_path


BAD_IMAGE = [
    (["--dataset", "cifar"], ["--dataset", "cifar", "digits8"]),
    (["--z-dim", "0"], ["--z-dim", "'0'", "1..128"]),
    (["--model", "dcgan", "--minibatch"], ["--minibatch", "1D track"]),
    (["--variant", "post004/dcgan-z2", "--instance-noise", "0.1"], ["--instance-noise", "1D track"]),
    (["--variant", "post004/dcgan-z2", "--g-loss", "none"], ["--g-loss", "'none'", "non_saturating"]),
    (["--variant", "blog2017/vanilla", "--z-dim", "7"], ["--z-dim", "image-track option", "1D experiment"]),
    (["--dataset", "fashion-mnist", "--data-dir", "nowhere"], ["nowhere"]),
    (["--variant", "post004/dcgan-z9"], ["unknown variant", "post004/dcgan-z2"]),
]


@pytest.mark.parametrize("args, words", BAD_IMAGE, ids=[" ".join(a) for a, _ in BAD_IMAGE])
def test_bad_image_input_exits_2_with_one_line(args, words, no_image_training, capsys):
    rc = main(["run", *args, "--out", str(no_image_training / "out")])
    captured = capsys.readouterr()
    assert rc == 2, captured
    lines = captured.err.splitlines()
    assert len(lines) == 1 and lines[0].startswith("ganrepro: error: "), lines
    for word in words:
        assert word in lines[0]
    assert captured.out == "" and not (Path(no_image_training) / "out").exists()


def test_variants_lists_the_image_track(capsys):
    assert main(["variants", "--track", "image"]) == 0
    out = capsys.readouterr().out
    for name in image_variant_names():
        assert f"\n{name}\n" in out
    assert "freeze_g=True*" in out and "img-digits8-dcgan-z2-B64-T1000-frozenG-float32@0" in out
    assert main(["variants", "post004/dcgan-z7"]) == 0
    assert "z_dim=7*" in capsys.readouterr().out


def test_sweep_of_an_image_grid_without_its_files_exits_2(no_image_training, monkeypatch, capsys):
    monkeypatch.delenv("GANREPRO_DATA_DIR", raising=False)
    rc = main(["sweep", "--grid", "fashion-mnist", "--runs", str(no_image_training / "runs"),
               "--data-dir", str(no_image_training / "empty")])
    err = capsys.readouterr().err
    assert rc == 2 and "empty" in err and len(err.splitlines()) == 1
    assert not (no_image_training / "runs").exists()
