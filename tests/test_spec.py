"""The framework-free spec: configs, seeding, samplers, initial weights, batch streams, schedules."""
from __future__ import annotations

import dataclasses
import subprocess
import sys

import numpy as np
import pytest
from scipy import stats

from ganrepro.config import ConfigError, ExperimentConfig, format_seeds, make_config, parse_seeds
from ganrepro.sampling import pretrain_batches, real_batches, stratified_noise
from ganrepro.schedules import adam_tf1_step_size, gd_staircase
from ganrepro.seeding import rng_for
from ganrepro.streams import chunk_length, evaluation_inputs, pad_to_batches, pretraining, training_chunks
from ganrepro.weights import discriminator_shapes, initial_weights


# ---- config ---------------------------------------------------------------------------------
@pytest.mark.parametrize("protocol, act, opt, b, steps, iters, self_term, pre", [
    ("2016", "tanh", "gd_staircase", 12, 1200, 1200, "exp-1", 1000),
    ("2017", "relu", "adam_tf1", 8, 5000, 5001, "exp0", 0),
])
def test_protocol_defaults(protocol, act, opt, b, steps, iters, self_term, pre):
    c = make_config(protocol, minibatch=True)
    assert (c.activation, c.optimizer, c.batch_size, c.num_steps, c.iterations, c.mbd_self_term,
            c.pretrain_steps) == (act, opt, b, steps, iters, self_term, pre)
    assert c.clip_log == (protocol == "2017")
    assert c.d_feature_size == 8 + 5


def test_config_is_an_immutable_value_with_a_stable_identity():
    a = make_config("2017", minibatch=True, seeds=range(8))
    b = make_config("2017", minibatch=True, seeds=range(8))
    assert a == b and hash(a) == hash(b)
    assert a.identity == "p2017-mbd-exp0-K5C3-B8-T5000-h4-float32@0-7"
    assert make_config("2016", pretrain_steps=0).slug == "p2016-vanilla-B12-T1200-h4-pre0-float32"
    with pytest.raises(dataclasses.FrozenInstanceError):
        a.batch_size = 4  # type: ignore[misc]
    assert ExperimentConfig.from_dict(a.to_dict()) == a
    assert a.replace(dtype="float64") != a


@pytest.mark.parametrize("overrides, fragment", [
    (dict(protocol="2015"), "unknown protocol '2015'"),
    (dict(num_steps=0), "num_steps must be an integer >= 1, got 0"),
    (dict(batch_size=1, minibatch=True), "batch size must be an integer >= 2 with minibatch discrimination, got 1"),
    (dict(dtype="float16"), "unknown dtype 'float16'; allowed: float32, float64"),
    (dict(mbd_self_term="exp1"), "unknown minibatch self term 'exp1'"),
    (dict(mbd_kernels=0), "mbd_kernels must be an integer >= 1, got 0"),
    (dict(seeds=(1, 1)), "seeds must be distinct"),
    (dict(seeds=()), "at least one seed"),
    (dict(seeds=(-1,)), "seeds must lie in"),
])
def test_bad_config_values_are_refused_by_name(overrides, fragment):
    protocol = overrides.pop("protocol", "2017")
    with pytest.raises(ConfigError, match=None) as err:
        make_config(protocol, **overrides)
    assert fragment in str(err.value)


def test_from_dict_rejects_unknown_fields():
    d = make_config().to_dict() | {"learning_rate": 1}
    with pytest.raises(ConfigError, match="learning_rate"):
        ExperimentConfig.from_dict(d)


@pytest.mark.parametrize("text, seeds",
                         [("0-7", tuple(range(8))), ("3", (3,)), ("0-2,10,12-13", (0, 1, 2, 10, 12, 13))])
def test_parse_seeds(text, seeds):
    assert parse_seeds(text) == seeds
    assert parse_seeds(format_seeds(seeds)) == seeds


@pytest.mark.parametrize("text", ["3-1", "a", "", "1-", "0-3,2", "-1", "99999999999"])
def test_parse_seeds_refuses_malformed_ranges(text):
    with pytest.raises(ConfigError):
        parse_seeds(text)


# ---- randomness and samplers -----------------------------------------------------------------
def test_generators_are_keyed_by_seed_and_purpose():
    assert np.array_equal(rng_for(3, "real").random(5), rng_for(3, "real").random(5))
    assert not np.array_equal(rng_for(3, "real").random(5), rng_for(4, "real").random(5))
    assert not np.array_equal(rng_for(3, "real").random(5), rng_for(3, "noise_d").random(5))
    with pytest.raises(ValueError, match="unknown random purpose"):
        rng_for(0, "weights")


def test_real_batches_are_sorted_target_draws():
    x = real_batches(rng_for(0, "real"), 2000, 8)
    assert np.all(np.diff(x, axis=1) >= 0)
    assert stats.kstest(x.ravel(), stats.norm(4, 0.5).cdf).pvalue > 1e-3


def test_stratified_noise_is_a_jittered_linspace():
    z = stratified_noise(rng_for(0, "noise_d"), 500, 8, 8.0)
    offset = z - np.linspace(-8, 8, 8)
    assert offset.min() >= 0 and offset.max() < 0.01 and offset.max() > 0.009


def test_pretraining_labels_are_the_target_density():
    d, y = pretrain_batches(rng_for(0, "pretrain_inputs"), 100, 12)
    assert d.min() >= -5 and d.max() < 5
    np.testing.assert_allclose(y, stats.norm(4, 0.5).pdf(d), rtol=1e-14, atol=1e-300)


def test_numpy_streams_do_not_depend_on_how_they_are_cut():
    whole = rng_for(0, "real").normal(4, 0.5, size=(100, 8))
    r = rng_for(0, "real")
    pieces = np.concatenate([r.normal(4, 0.5, size=(n, 8)) for n in (7, 50, 43)])
    assert np.array_equal(whole, pieces)


# ---- weights, streams, schedules -------------------------------------------------------------
def test_initial_weights_follow_the_fixed_draw_order():
    c = make_config("2017", minibatch=True, dtype="float64", seeds=(5,))
    w = initial_weights(c)
    rng = rng_for(5, "init_d")
    for name, shape, std in discriminator_shapes(c):
        expected = std * rng.standard_normal(shape) if std else np.zeros(shape)
        assert np.array_equal(w["D"][name][0], expected), name
    assert w["D"]["mbd.w"].shape == (1, 8, 15) and w["D"]["out.w"].shape == (1, 13, 1)
    assert "D_pre" not in w and "D_pre" in initial_weights(make_config("2016", seeds=(5,)))


def test_a_seeds_weights_and_batches_do_not_depend_on_its_stack():
    alone = make_config("2017", minibatch=True, seeds=(3,))
    stacked = alone.with_seeds(range(8))
    wa, ws = initial_weights(alone), initial_weights(stacked)
    for net in ("G", "D"):
        for k in wa[net]:
            assert np.array_equal(wa[net][k][0], ws[net][k][3])
    ca, cs = next(training_chunks(alone)), next(training_chunks(stacked))
    for field in ("x", "z_d", "z_g"):
        assert np.array_equal(getattr(ca, field)[:, 0], getattr(cs, field)[:, 3])


def test_chunks_cover_the_run_with_one_shape_whatever_the_chunk_size():
    c = make_config("2017", num_steps=40, dtype="float64", seeds=(0, 1))
    big = list(training_chunks(c, max_chunk=1000))
    small = list(training_chunks(c, max_chunk=7))
    assert len({ch.x.shape for ch in small}) == 1 and sum(ch.n_valid for ch in small) == c.iterations == 41
    for field in ("x", "z_d", "z_g", "lr_d"):
        a = np.concatenate([getattr(ch, field)[:ch.n_valid] for ch in small])
        assert np.array_equal(a, getattr(big[0], field)[:41]), field
    last = small[-1]
    assert np.all(last.x[last.n_valid:] == 0)
    assert chunk_length(5001, 1000) == 834 and chunk_length(1200, 1000) == 600


def test_schedules_match_their_closed_forms():
    lr = gd_staircase(451)
    assert lr[0] == lr[149] == 0.005 and lr[150] == 0.005 * 0.95 and lr[450] == 0.005 * 0.95**3
    a = adam_tf1_step_size(3)
    np.testing.assert_allclose(a[0], 1e-3 * np.sqrt(1 - 0.999) / (1 - 0.9), rtol=1e-15)
    np.testing.assert_allclose(a[2], 1e-3 * np.sqrt(1 - 0.999**3) / (1 - 0.9**3), rtol=1e-15)
    c = make_config("2016", pretrain_steps=300, seeds=(0,), dtype="float64")
    assert np.array_equal(pretraining(c).lr, gd_staircase(300))


def test_evaluation_inputs():
    c = make_config("2016", minibatch=True, seeds=(0, 1), dtype="float64")
    ev = evaluation_inputs(c)
    assert np.array_equal(ev.z_grid[1], np.linspace(-8, 8, 10_000))
    assert ev.z_uniform.shape == (2, 10_000) and np.abs(ev.z_uniform).max() <= 8
    assert not np.array_equal(ev.z_uniform[0], ev.z_uniform[1])
    padded = pad_to_batches(ev.boundary_grid, 12)
    assert padded.shape == (2, 834, 12) and padded[0, -1, -1] == 8.0


def test_framework_neutral_modules_import_no_framework():
    code = ("import sys, ganrepro.config, ganrepro.seeding, ganrepro.sampling, ganrepro.weights, "
            "ganrepro.streams, ganrepro.schedules, ganrepro.training, ganrepro.impls, ganrepro.impls.numpy_ref, "
            "ganrepro.metrics; bad = {'torch', 'tensorflow'} & set(sys.modules); print(sorted(bad)); "
            "sys.exit(1 if bad else 0)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


# ---- technique switches (docs/techniques.md) ------------------------------------------------------------
@pytest.mark.parametrize("overrides, fragment", [
    (dict(feature_matching="paired_l2", fm_weight=-1.0), "feature-matching weight must be a number > 0, got -1.0"),
    (dict(label_smoothing=0.0), "label smoothing alpha must lie in (0, 1], got 0.0"),
    (dict(label_smoothing=1.5), "label smoothing alpha must lie in (0, 1], got 1.5"),
    (dict(instance_noise=0.1, noise_schedule="linear", noise_anneal_steps=6000),
     "noise annealing over 6000 steps is longer than the run (5001 steps)"),
    (dict(noise_anneal_steps=100), "applies to a linear or exponential noise schedule"),
    (dict(noise_schedule="linear"), "needs instance noise > 0"),
    (dict(instance_noise=-0.1), "instance noise std must be a number >= 0"),
    (dict(instance_noise=float("nan")), "instance noise std must be a number >= 0"),
    (dict(g_loss="none"), "G needs a loss"),
    (dict(g_loss="wasserstein"), "unknown generator loss 'wasserstein'"),
    (dict(feature_matching="l1"), "unknown feature matching 'l1'"),
    (dict(noise_target="g"), "unknown instance-noise target 'g'"),
    (dict(historical_averaging=-1e-3), "historical averaging weight must be a number >= 0"),
    (dict(mbd_dims=0, minibatch=True), "mbd_dims must be an integer >= 1, got 0"),
])
def test_invalid_technique_combinations_are_refused(overrides, fragment):
    with pytest.raises(ConfigError) as err:
        make_config("2017", **overrides)
    assert fragment in str(err.value)


def test_technique_switches_show_in_the_identity_and_defaults_do_not():
    assert make_config("2017").slug == "p2017-vanilla-B8-T5000-h4-float32"
    c = make_config("2017", g_loss="none", feature_matching="paired_l2", instance_noise=0.001, noise_target="z",
                    label_smoothing=0.9, historical_averaging=0.01)
    assert c.slug == "p2017-vanilla-B8-T5000-h4-noadv-fm_paired_l2x1-in0.001z-ls0.9-ha0.01-float32"
    assert make_config("2017", fm_weight=1) == make_config("2017", fm_weight=1.0)


def test_instance_noise_schedules():
    from ganrepro.streams import instance_noise_scale
    c = make_config("2017", num_steps=99, instance_noise=0.2)
    assert np.all(instance_noise_scale(c) == 0.2)
    lin = instance_noise_scale(c.replace(noise_schedule="linear", noise_anneal_steps=50))
    np.testing.assert_allclose(lin[[0, 25, 49, 50, 99]], [0.2, 0.1, 0.2 / 50, 0, 0], atol=1e-15)
    exp = instance_noise_scale(c.replace(noise_schedule="exponential"))
    np.testing.assert_allclose(exp[[0, 50]], [0.2, 0.2 * 1000 ** -0.5], rtol=1e-12)
    assert exp[-1] > 0 and np.all(np.diff(exp) < 0)


def test_instance_noise_streams():
    off = next(training_chunks(make_config("2017", num_steps=20, seeds=(0, 1))))
    assert not off.noise_real.any() and not off.noise_fake_d.any() and not off.noise_fake_g.any()
    c = make_config("2017", num_steps=2000, seeds=(0, 1), instance_noise=0.5, dtype="float64")
    on = next(training_chunks(c))
    assert on.noise_real.shape == on.x.shape
    for a in (on.noise_real, on.noise_fake_d, on.noise_fake_g):
        assert abs(a[:on.n_valid].std() - 0.5) < 0.01
    alone = next(training_chunks(c.with_seeds((1,))))
    assert np.array_equal(alone.noise_fake_g[:, 0], on.noise_fake_g[:, 1])
    z_variant = next(training_chunks(c.replace(noise_target="z")))
    assert np.array_equal(z_variant.noise_fake_d, on.noise_fake_d) and not z_variant.noise_fake_g.any()
