"""The image track's metrics (metrics/images/, docs/metrics-images.md): exactness against brute-force
references, the fixed conventions (sigma grid, coverage threshold, instability, vanishing step), the
diverged path, and the suite's classifier (determinism, cache, accuracy)."""
from __future__ import annotations

import ganrepro  # noqa: F401  (first: its instruction-set pin must precede NumPy)

# isort: split
import dataclasses
import hashlib
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import scipy.linalg
from scipy.special import logsumexp

from ganrepro.metrics import images as mi
from ganrepro.metrics.images import classifier as clf_mod
from ganrepro.metrics.images import parzen as parzen_mod

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")


# ---- helpers -------------------------------------------------------------------------------------

def brute_parzen(samples: np.ndarray, points: np.ndarray, sigma: float) -> np.ndarray:
    """log p_sigma(x) from the explicit differences and scipy's logsumexp over the full matrix."""
    s = samples.reshape(len(samples), -1)
    x = points.reshape(len(points), -1)
    d2 = ((x[:, None, :] - s[None, :, :]) ** 2).sum(axis=2)
    d = s.shape[1]
    return logsumexp(-d2 / (2 * sigma**2), axis=1) - math.log(len(s)) - 0.5 * d * math.log(2 * math.pi * sigma**2)


@dataclasses.dataclass(frozen=True, eq=False)
class SynthData:
    """A stand-in for ganrepro.image.data.ImageData: 10 noisy 8x8 prototypes."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    image_size: int = 8
    name: str = "synthetic"

    @property
    def content_sha256(self) -> str:
        h = hashlib.sha256()
        for a in (self.train_x, self.train_y, self.val_x, self.val_y, self.test_x, self.test_y):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()


def synthetic_data(n_train: int = 320, n_val: int = 100, n_test: int = 100, seed: int = 0) -> SynthData:
    rng = np.random.default_rng(seed)
    protos = (rng.random((10, 8, 8)) < 0.35).astype(np.float64)

    def draw(n):
        y = np.arange(n) % 10
        x = np.clip(protos[y] * 0.8 + rng.normal(0.0, 0.15, (n, 8, 8)), 0.0, 1.0)
        return x, y.astype(np.int64)

    (trx, tr_y), (vx, vy), (tex, tey) = draw(n_train), draw(n_val), draw(n_test)
    return SynthData(trx, tr_y, vx, vy, tex, tey)


TINY = clf_mod.Recipe(image_size=8, pool1=False, conv1=4, conv2=8, hidden=16, batch_size=32, epochs=2, lr=3e-3,
                      shift=1)


@pytest.fixture(scope="module")
def synth() -> SynthData:
    return synthetic_data()


@pytest.fixture(scope="module")
def tiny_classifier(synth) -> mi.Classifier:
    return mi.train_classifier(synth, recipe=TINY)


def image_loader():
    """ganrepro.image.data.load_dataset, or None where it cannot be imported."""
    try:
        from ganrepro.image.data import load_dataset
    except ImportError:
        return None
    return load_dataset


# ---- Parzen window -------------------------------------------------------------------------------

def test_sigma_grid_is_goodfellows():
    assert mi.SIGMAS == tuple(np.logspace(-1, 0, 10))
    assert len(mi.SIGMAS) == 10 and mi.SIGMAS[0] == 0.1 and mi.SIGMAS[-1] == 1.0


def test_parzen_matches_brute_force():
    rng = np.random.default_rng(0)
    samples = rng.random((300, 8, 8))
    points = np.concatenate([rng.random((40, 8, 8)), samples[:5], samples[:3] + 1e-9])  # incl. distance 0
    for sigma in mi.SIGMAS:
        got = mi.parzen_log_likelihoods(samples, points, sigma)
        np.testing.assert_allclose(got, brute_parzen(samples, points, sigma), rtol=1e-12, atol=1e-12)


def test_parzen_block_size_does_not_matter():
    rng = np.random.default_rng(1)
    s = rng.random((500, 30))
    x = rng.random((70, 30))
    sigmas = np.asarray(mi.SIGMAS)
    ref = parzen_mod.log_kernel_sums(s, x, sigmas)
    for pb, sb in [(3, 11), (7, 13), (64, 499), (256, 8192), (1000, 100_000)]:
        got = parzen_mod.log_kernel_sums(s, x, sigmas, point_block=pb, sample_block=sb)
        np.testing.assert_allclose(got, ref, rtol=1e-13, atol=1e-13)


def test_parzen_point_result_independent_of_other_points():
    rng = np.random.default_rng(2)
    s, x = rng.random((900, 64)), rng.random((600, 64))
    full = mi.parzen_log_likelihoods(s, x, 0.3)
    assert np.array_equal(full[5:300], mi.parzen_log_likelihoods(s, x[5:300], 0.3))
    assert np.array_equal(full[255:256], mi.parzen_log_likelihoods(s, x[255:256], 0.3))
    assert full.tobytes() == mi.parzen_log_likelihoods(s, x, 0.3).tobytes()


def test_choose_sigma_and_score():
    rng = np.random.default_rng(3)
    v = rng.random((200, 64))
    sigma, means = mi.choose_sigma(v, v)  # every point has an exact copy: narrowest kernel wins
    assert sigma == 0.1 and means.shape == (10,) and int(np.argmax(means)) == 0
    for noise, expected in [(0.3, mi.SIGMAS[4]), (0.5, mi.SIGMAS[6])]:  # copies blurred by noise: sigma ~ noise
        samples = np.concatenate([v + rng.normal(0.0, noise, v.shape) for _ in range(5)])
        sigma, means = mi.choose_sigma(samples, v)
        assert sigma == expected
        for k in (0, 9):
            assert means[k] == pytest.approx(np.mean(mi.parzen_log_likelihoods(samples, v, mi.SIGMAS[k])), rel=1e-14)
    test = rng.random((50, 64))
    score = mi.parzen_score(samples, v, test)
    ll = mi.parzen_log_likelihoods(samples, test, score["parzen_sigma"])
    assert score["parzen_sigma"] == sigma
    assert score["parzen_ll"] == pytest.approx(float(np.mean(ll)), rel=1e-15)
    assert score["parzen_ll_stderr"] == pytest.approx(float(np.std(ll, ddof=1) / math.sqrt(50)), rel=1e-12)


def test_parzen_rejects_bad_input():
    s = np.zeros((5, 4))
    with pytest.raises(ValueError, match="non-finite"):
        mi.parzen_log_likelihoods(np.full((5, 4), np.nan), s, 0.5)
    with pytest.raises(ValueError):
        mi.parzen_log_likelihoods(s, np.zeros((3, 5)), 0.5)
    with pytest.raises(ValueError):
        mi.parzen_log_likelihoods(s, s, 0.0)


# ---- Frechet distance ----------------------------------------------------------------------------

def sqrtm_reference(a: np.ndarray, b: np.ndarray) -> float:
    mu_a, mu_b = a.mean(axis=0), b.mean(axis=0)
    c_a, c_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
    root = scipy.linalg.sqrtm(c_a @ c_b)
    return float(((mu_a - mu_b) ** 2).sum() + np.trace(c_a) + np.trace(c_b) - 2 * np.trace(root).real)


def test_frechet_matches_sqrtm():
    rng = np.random.default_rng(4)
    a = rng.normal(size=(600, 12)) @ rng.normal(size=(12, 12))
    b = rng.normal(size=(500, 12)) @ rng.normal(size=(12, 12)) + 0.5
    assert mi.frechet_distance(a, b) == pytest.approx(sqrtm_reference(a, b), rel=1e-9)


def test_frechet_closed_form_and_zero():
    # Independent coordinates: FD = sum (m_a - m_b)^2 + (s_a - s_b)^2 per coordinate.
    rng = np.random.default_rng(5)
    z = rng.normal(size=(4000, 3))
    z = (z - z.mean(axis=0)) / z.std(axis=0, ddof=1)
    z = np.linalg.qr(z - z.mean(axis=0))[0] * math.sqrt(len(z) - 1)  # exactly uncorrelated, unit variance
    a = z * [1.0, 2.0, 0.5] + [0.0, 1.0, 2.0]
    b = z * [3.0, 2.0, 0.0] + [1.0, 1.0, 0.0]  # last coordinate constant: singular covariance
    expected = (1 + 0 + 4) + (4 + 0 + 0.25)
    assert mi.frechet_distance(a, b) == pytest.approx(expected, rel=1e-10)
    for f in (a, b, rng.normal(size=(300, 64))):
        assert abs(mi.frechet_distance(f, f)) < 1e-9 * max(1.0, float(np.trace(np.cov(f, rowvar=False))))


def test_frechet_rejects_bad_input():
    with pytest.raises(ValueError):
        mi.frechet_distance(np.zeros((1, 3)), np.zeros((5, 3)))
    with pytest.raises(ValueError):
        mi.frechet_distance(np.zeros((4, 3)), np.zeros((5, 2)))
    with pytest.raises(ValueError):
        mi.frechet_distance(np.full((4, 3), np.inf), np.zeros((5, 3)))


# ---- Inception-score analogue and coverage -------------------------------------------------------

def test_inception_score_extremes():
    one_hot_uniform = np.eye(10)[np.arange(100) % 10]
    assert mi.inception_score(one_hot_uniform) == pytest.approx(10.0, rel=1e-12)
    single_class = np.eye(10)[np.zeros(50, dtype=int)]
    assert mi.inception_score(single_class) == pytest.approx(1.0, abs=1e-15)
    assert mi.inception_score(np.full((20, 10), 0.1)) == pytest.approx(1.0, abs=1e-12)
    two_classes = np.eye(10)[np.arange(40) % 2]
    assert mi.inception_score(two_classes) == pytest.approx(2.0, rel=1e-12)


def test_mode_coverage():
    labels = np.repeat(np.arange(10), 10)  # uniform
    assert mi.mode_coverage(labels) == {"classes_covered": 10, "class_kl_uniform": pytest.approx(0.0, abs=1e-15)}
    single = mi.mode_coverage(np.zeros(30, dtype=np.int64))
    assert single["classes_covered"] == 1 and single["class_kl_uniform"] == pytest.approx(math.log(10), rel=1e-14)
    # 1,000 labels: class 9 has 10 (exactly 1%: covered), class 8 has 9 (0.9%: not covered)
    lab = np.concatenate([np.repeat(np.arange(8), [123, 123, 123, 123, 123, 122, 122, 122]), [8] * 9, [9] * 10])
    assert lab.size == 1000
    assert mi.mode_coverage(lab)["classes_covered"] == 9
    assert mi.COVERAGE_MIN_SHARE == 0.01
    probs = np.full((4, 10), 0.05)
    probs[np.arange(4), [3, 3, 7, 3]] = 0.55
    assert mi.mode_coverage(probs)["classes_covered"] == 2
    with pytest.raises(ValueError):
        mi.mode_coverage(np.array([0, 10]))


# ---- stability -----------------------------------------------------------------------------------

def test_mapping_instability():
    labels = np.array([[0, 1, 2, 3], [0, 1, 2, 4], [1, 1, 2, 4], [1, 1, 2, 4]])
    assert mi.mapping_instability(labels) == pytest.approx((0.25 + 0.25 + 0.0) / 3)
    assert mi.mapping_instability(np.zeros((5, 225), dtype=int)) == 0.0
    assert mi.mapping_instability(np.array([[0, 1], [1, 0]])) == 1.0
    assert math.isnan(mi.mapping_instability(np.array([[0, 1, 2]])))


def test_gradient_vanishing_step():
    steps = [0, 10, 20, 30, 40]
    assert mi.gradient_vanishing_step(steps, [2.0, 1.0, 0.0019, 0.0021, 1e-6]) == 20
    assert mi.gradient_vanishing_step(steps, [1.0, 0.5, 1e-3, 2e-3, 9.99e-4]) == 40  # exactly 1e-3 is not below
    assert mi.gradient_vanishing_step(steps, [1.0, np.nan, 0.5, 0.1, 0.01]) is None
    assert mi.gradient_vanishing_step(steps, [1.0] * 5, threshold=1.5) == 0
    with pytest.raises(ValueError):
        mi.gradient_vanishing_step([0, 1], [0.0, 1.0])
    with pytest.raises(ValueError):
        mi.gradient_vanishing_step([0, 1], [1.0])


# ---- evaluate ------------------------------------------------------------------------------------

def test_evaluate_images_diverged_and_ok(synth, tiny_classifier):
    bad = synth.test_x[:50].copy()
    bad[3, 2, 2] = np.nan
    result = mi.evaluate_images(bad, synth, tiny_classifier)
    assert tuple(result) == mi.IMAGE_METRIC_KEYS
    assert result["status"] == "diverged"
    assert all(math.isnan(v) for k, v in result.items() if k != "status")
    bad[3, 2, 2] = np.inf
    assert mi.evaluate_images(bad, synth, tiny_classifier)["status"] == "diverged"

    good = mi.evaluate_images(synth.train_x[:200], synth, tiny_classifier)
    assert tuple(good) == mi.IMAGE_METRIC_KEYS and good["status"] == "ok"
    assert all(math.isfinite(v) for k, v in good.items() if k != "status")
    assert good["parzen_sigma"] in mi.SIGMAS and 1.0 <= good["inception_score"] <= 10.0
    assert good == mi.evaluate_images(synth.train_x[:200], synth, tiny_classifier)  # same numbers again
    floor = mi.image_floor(synth, tiny_classifier)
    assert tuple(floor) == mi.IMAGE_METRIC_KEYS and floor["status"] == "ok"
    assert floor["sample_mean"] == pytest.approx(float(np.mean(synth.test_x)))
    with pytest.raises(ValueError):
        mi.evaluate_images(np.zeros((10, 28, 28)), synth, tiny_classifier)


def test_published_mnist_parzen():
    assert mi.PUBLISHED_MNIST_PARZEN == {"GAN": (225, 2), "Deep GSN": (214, 1.1), "DBN": (138, 2),
                                         "Stacked CAE": (121, 1.6)}


def test_no_framework_imported():
    code = "import ganrepro.metrics.images, sys; print(sorted(m for m in ('torch', 'tensorflow') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ---- the classifier ------------------------------------------------------------------------------

def test_classifier_is_deterministic(synth, tiny_classifier):
    again = mi.train_classifier(synth, recipe=TINY)
    assert again.to_bytes() == tiny_classifier.to_bytes()
    for k in tiny_classifier.weights:
        assert again.weights[k].tobytes() == tiny_classifier.weights[k].tobytes()
    other_seed = mi.train_classifier(synth, recipe=TINY, seed=1)
    assert other_seed.to_bytes() != tiny_classifier.to_bytes()


def test_classifier_batches_do_not_change_results(synth, tiny_classifier):
    x = np.concatenate([synth.train_x, synth.val_x])  # 420 images: four evaluation batches, the last padded
    p_all, f_all = tiny_classifier.predict_proba(x), tiny_classifier.features(x)
    assert p_all.shape == (420, 10) and f_all.shape == (420, TINY.hidden)
    assert np.allclose(p_all.sum(axis=1), 1.0)
    for i, j in [(0, 1), (250, 300), (7, 420)]:
        assert p_all[i:j].tobytes() == tiny_classifier.predict_proba(x[i:j]).tobytes()
        assert f_all[i:j].tobytes() == tiny_classifier.features(x[i:j]).tobytes()
    assert np.array_equal(tiny_classifier.predict(x), np.argmax(p_all, axis=1))
    assert tiny_classifier.test_accuracy == tiny_classifier.accuracy(synth.test_x, synth.test_y)


def test_classifier_28x28_rows_independent_of_position():
    """An image's results are the same bits wherever it sits among the images evaluated (28x28 shapes)."""
    recipe = mi.recipe_for(28)
    clf = mi.Classifier(clf_mod.init_weights(recipe, 0), recipe)
    x = np.random.default_rng(6).random((300, 28, 28))
    p_all, f_all = clf.proba_and_features(x)
    for i, j in [(5, 140), (127, 129), (299, 300)]:
        p, f = clf.proba_and_features(x[i:j])
        assert p.tobytes() == p_all[i:j].tobytes() and f.tobytes() == f_all[i:j].tobytes()


def test_classifier_independent_of_blas_threads():
    """Trained weights are the same bytes with 1 and 3 OpenBLAS threads (one_blas_thread)."""
    script = (
        "import ganrepro, sys, hashlib\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "from test_image_metrics import synthetic_data, TINY\n"
        "from ganrepro.metrics.images import train_classifier\n"
        "print(hashlib.sha256(train_classifier(synthetic_data(n_train=640), recipe=TINY).to_bytes()).hexdigest())\n"
    )
    digests = set()
    for threads in ("1", "3"):
        env = dict(os.environ, OPENBLAS_NUM_THREADS=threads)
        out = subprocess.run([sys.executable, "-c", script, str(Path(__file__).parent)], env=env,
                             capture_output=True, text=True, check=True)
        digests.add(out.stdout.strip())
    assert len(digests) == 1


def test_classifier_cache(synth, tiny_classifier, tmp_path, monkeypatch):
    first = mi.load_or_train(synth, tmp_path, recipe=TINY)
    files = list(tmp_path.iterdir())
    assert [f.name for f in files] == [f"classifier-{mi.cache_key(synth, TINY)}.npz"]
    assert files[0] == mi.cache_path(synth, tmp_path, recipe=TINY)
    assert files[0].read_bytes() == tiny_classifier.to_bytes() == first.to_bytes()
    assert first.key == mi.cache_key(synth, TINY)

    def no_training(*args, **kwargs):
        raise AssertionError("retrained although the cache holds the weights")

    monkeypatch.setattr(clf_mod, "train_classifier", no_training)
    second = mi.load_or_train(synth, tmp_path, recipe=TINY)
    assert second.to_bytes() == first.to_bytes() and second.test_accuracy == first.test_accuracy
    monkeypatch.undo()

    # another recipe or data is another key; a damaged file is retrained and replaced
    assert mi.cache_key(synth, dataclasses.replace(TINY, epochs=3)) != first.key
    assert mi.cache_key(synthetic_data(seed=1), TINY) != first.key
    files[0].write_bytes(files[0].read_bytes()[:200])
    with pytest.warns(RuntimeWarning, match="unusable"):
        third = mi.load_or_train(synth, tmp_path, recipe=TINY)
    assert third.to_bytes() == first.to_bytes() == files[0].read_bytes()
    assert [f.name for f in tmp_path.iterdir()] == [files[0].name]  # no temporary left behind


def test_default_cache_dir(monkeypatch, tmp_path):
    monkeypatch.setenv("GANREPRO_CACHE", str(tmp_path))
    assert mi.default_cache_dir() == tmp_path
    monkeypatch.delenv("GANREPRO_CACHE")
    assert mi.default_cache_dir() == Path.home() / ".cache" / "ganrepro"


def test_min_accuracy_table(tiny_classifier):
    assert mi.MIN_ACCURACY == {"digits8": 0.97, "mnist": 0.99, "fashion-mnist": 0.90}
    low = mi.Classifier(tiny_classifier.weights, TINY, test_accuracy=0.5)
    with pytest.raises(ValueError, match="below"):
        mi.check_accuracy(low, "digits8")


def test_digits8_accuracy():
    pytest.importorskip("sklearn")
    load_dataset = image_loader()
    if load_dataset is None:
        pytest.skip("ganrepro.image.data.load_dataset is not available")
    data = load_dataset("digits8")
    start = time.perf_counter()
    clf = mi.train_classifier(data)
    seconds = time.perf_counter() - start
    print(f"digits8 classifier: test accuracy {clf.test_accuracy:.4f}, trained in {seconds:.1f} s")
    assert clf.test_accuracy >= mi.MIN_ACCURACY["digits8"]
    mi.check_accuracy(clf, "digits8")


@pytest.mark.slow
def test_fashion_mnist_accuracy():
    """Minutes: the 28x28 recipe on Fashion-MNIST's 50,000 training images (Debian's dataset-fashion-mnist)."""
    if not FASHION_DIR.is_dir():
        pytest.skip(f"{FASHION_DIR} is absent (apt-get install dataset-fashion-mnist)")
    load_dataset = image_loader()
    if load_dataset is None:
        pytest.skip("ganrepro.image.data.load_dataset is not available")
    data = load_dataset("fashion-mnist", data_dir=FASHION_DIR)
    start = time.perf_counter()
    clf = mi.train_classifier(data)
    seconds = time.perf_counter() - start
    print(f"fashion-mnist classifier: test accuracy {clf.test_accuracy:.4f}, trained in {seconds:.0f} s")
    assert clf.test_accuracy >= mi.MIN_ACCURACY["fashion-mnist"]
