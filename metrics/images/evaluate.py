"""Every image metric of one set of generated images, and the same metrics for real images (the floor).

``evaluate_images(samples, data, classifier)``, for samples (N, H, W) (10,000 generated images per
seed, docs/images.md#evaluation), returns in the order of IMAGE_METRIC_KEYS:

    status             "ok", or "diverged" if any sample is non-finite (then every number is NaN)
    parzen_ll          Parzen-window log-likelihood of data.test_x under the samples (nats per image),
    parzen_ll_stderr   its standard error, and
    parzen_sigma       the kernel width chosen on the first PARZEN_VALIDATION images of data.val_x
                       (:mod:`.parzen`; all of them for digits8's 300)
    fid                Frechet distance between the classifier's penultimate features of the samples
                       and of data.test_x (:mod:`.frechet`)
    inception_score    exp(mean KL(p(y|x) || p(y))) of the classifier's probabilities (:mod:`.scores`)
    classes_covered    classes predicted for at least 1% of the samples (:mod:`.scores`)
    class_kl_uniform   KL(predicted-class histogram || uniform), nats
    sample_mean        the mean pixel value of the samples

``image_floor(data, classifier)``: the same keys with real images in place of generated ones, the
values a perfect generator would get up to sampling noise: Parzen with the first FLOOR_PARZEN_SAMPLES
(10,000) training images as the samples (all of them if fewer: digits8's 1,197), scored on the same
validation and test images; FID of data.val_x against data.test_x (two held-out real splits);
inception score and coverage of data.test_x; sample_mean of data.test_x.
"""
from __future__ import annotations

import math

import numpy as np

from .frechet import frechet_distance
from .parzen import parzen_score
from .scores import inception_score, mode_coverage

IMAGE_METRIC_KEYS = (
    "status",
    "parzen_ll",
    "parzen_ll_stderr",
    "parzen_sigma",
    "fid",
    "inception_score",
    "classes_covered",
    "class_kl_uniform",
    "sample_mean",
)
"""The keys of :func:`evaluate_images` and :func:`image_floor`, in order."""

STATUS_OK = "ok"
STATUS_DIVERGED = "diverged"

PARZEN_VALIDATION = 1000
"""Validation images that choose the Parzen sigma: the first 1,000 of data.val_x (parzen_ll.py's
``limit_size``; its MNIST validation images are the same ones, training-file images 50,000-50,999)."""

FLOOR_PARZEN_SAMPLES = 10_000
"""Real training images standing in for the generated samples in the floor's Parzen score."""

PUBLISHED_MNIST_PARZEN = {
    "GAN": (225.0, 2.0),
    "Deep GSN": (214.0, 1.1),
    "DBN": (138.0, 2.0),
    "Stacked CAE": (121.0, 1.6),
}
"""Goodfellow et al. 2014 ("Generative Adversarial Nets", https://arxiv.org/abs/1406.2661), Table 1,
MNIST column: Parzen-window log-likelihood of the MNIST test set, mean and standard error (nats)."""

_REFERENCE_MEMO: dict[tuple[str, str], np.ndarray] = {}
_MEMO_SIZE = 4


def _reference_features(data, classifier) -> np.ndarray:
    """classifier.features(data.test_x), remembered per (classifier key, data content) for the next seed."""
    key = (str(getattr(classifier, "key", "")), str(getattr(data, "content_sha256", "")))
    if not all(key):
        return classifier.features(data.test_x)
    if key not in _REFERENCE_MEMO:
        if len(_REFERENCE_MEMO) >= _MEMO_SIZE:
            _REFERENCE_MEMO.pop(next(iter(_REFERENCE_MEMO)))
        _REFERENCE_MEMO[key] = classifier.features(data.test_x)
    return _REFERENCE_MEMO[key]


def _check_images(samples, classifier) -> np.ndarray:
    x = np.asarray(samples, dtype=np.float64)
    size = int(classifier.image_size)
    if x.ndim != 3 or x.shape[1:] != (size, size) or x.shape[0] < 2:
        raise ValueError(f"samples must have shape (N, {size}, {size}) with N >= 2, got {x.shape}")
    return x


def diverged_metrics() -> dict:
    """The result for a diverged sample: status "diverged", every number NaN."""
    result: dict = {key: math.nan for key in IMAGE_METRIC_KEYS}
    result["status"] = STATUS_DIVERGED
    return result


def _metrics(parzen_samples: np.ndarray, fid_images: np.ndarray, class_images: np.ndarray, mean_images: np.ndarray,
             data, classifier) -> dict:
    parzen = parzen_score(parzen_samples, np.asarray(data.val_x)[:PARZEN_VALIDATION], data.test_x)
    if fid_images is class_images:
        probs, feats = classifier.proba_and_features(class_images)
    else:
        probs, feats = classifier.predict_proba(class_images), classifier.features(fid_images)
    fid = frechet_distance(feats, _reference_features(data, classifier))
    coverage = mode_coverage(probs)
    return {
        "status": STATUS_OK,
        "parzen_ll": parzen["parzen_ll"],
        "parzen_ll_stderr": parzen["parzen_ll_stderr"],
        "parzen_sigma": parzen["parzen_sigma"],
        "fid": fid,
        "inception_score": inception_score(probs),
        "classes_covered": coverage["classes_covered"],
        "class_kl_uniform": coverage["class_kl_uniform"],
        "sample_mean": float(np.mean(mean_images)),
    }


def evaluate_images(samples, data, classifier) -> dict:
    """Every image metric of the generated ``samples`` (N, H, W) (module docstring), keys IMAGE_METRIC_KEYS.

    ``data``: the data set (val_x, test_x; content_sha256 lets the test features be remembered
    between calls); ``classifier``: :class:`.classifier.Classifier` for its image size. Non-finite
    samples give status "diverged" and NaN everywhere, without an exception or a warning; a wrong
    shape is a ValueError. Cost at 10,000 28x28 samples: ~9 s of Parzen plus ~3 s of classifier
    on the 2-core development machine.
    """
    x = _check_images(samples, classifier)
    if not bool(np.isfinite(x).all()):
        return diverged_metrics()
    return _metrics(x, x, x, x, data, classifier)


def image_floor(data, classifier) -> dict:
    """The metrics of real images in place of generated ones (module docstring), keys IMAGE_METRIC_KEYS."""
    train = np.asarray(data.train_x, dtype=np.float64)[:FLOOR_PARZEN_SAMPLES]
    test = np.asarray(data.test_x, dtype=np.float64)
    return _metrics(train, np.asarray(data.val_x, dtype=np.float64), test, test, data, classifier)
