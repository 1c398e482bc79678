"""Scores of generated images read through the suite's classifier: an Inception-score analogue and mode coverage.

With p(y|x_i) the classifier's class probabilities of image i (N images, K = 10 classes) and
p(y) = (1/N) sum_i p(y|x_i) their mean:

    inception_score = exp( (1/N) sum_i KL(p(y|x_i) || p(y)) ),
    KL(p || q)      = sum_y p_y log(p_y / q_y)        (0 log 0 = 0; nats)

the Inception score of Salimans et al. 2016 ("Improved Techniques for Training GANs",
https://arxiv.org/abs/1606.03498) computed on one split of all N images with the suite's own
classifier instead of Inception v3 (so it lies in [1, K] and is not comparable with published IS).
It is K for confident predictions spread evenly over the K classes and 1 when every image gets the
same distribution.

Mode coverage, from the predicted labels l_i = argmax_y p(y|x_i) (the first maximum on ties) and
their histogram h_y = #{i : l_i = y} / N:

    classes_covered  = #{y : h_y >= COVERAGE_MIN_SHARE}      (COVERAGE_MIN_SHARE = 1%)
    class_kl_uniform = KL(h || uniform) = sum_y h_y log(K h_y)   (0 for a uniform histogram,
                                                                  log K = 2.303 for one class)
"""
from __future__ import annotations

import math

import numpy as np
from scipy.special import rel_entr

N_CLASSES = 10
"""The classes of every image set of the suite (digits 0-9, or Fashion-MNIST's 10 kinds)."""

COVERAGE_MIN_SHARE = 0.01
"""A class counts as covered when at least 1% of the images are predicted as it (10% is its share
under uniform coverage; 1% keeps a handful of stray predictions of a dropped mode from counting)."""


def as_probabilities(probs) -> np.ndarray:
    """probs (N, K), finite, non-negative, rows summing to 1 within 1e-6, as float64 (ValueError otherwise)."""
    p = np.asarray(probs, dtype=np.float64)
    if p.ndim != 2 or p.shape[0] == 0:
        raise ValueError(f"probs must have shape (N, K) with N >= 1, got {p.shape}")
    if not bool(np.isfinite(p).all()) or bool(np.any(p < 0.0)):
        raise ValueError("probs must be finite and non-negative")
    if not np.allclose(p.sum(axis=1), 1.0, rtol=0.0, atol=1e-6):
        raise ValueError("each row of probs must sum to 1")
    return p


def inception_score(probs) -> float:
    """exp(mean_i KL(p(y|x_i) || p(y))) over all images as one split (module docstring)."""
    p = as_probabilities(probs)
    marginal = np.mean(p, axis=0)
    kl = np.sum(rel_entr(p, marginal[None, :]), axis=1)
    return float(math.exp(float(np.mean(kl))))


def predicted_labels(probs_or_labels, n_classes: int = N_CLASSES) -> np.ndarray:
    """Labels (N,) from probabilities (N, K) by argmax, or integer labels (N,) checked to lie in 0..K-1."""
    a = np.asarray(probs_or_labels)
    if a.ndim == 2:
        p = as_probabilities(a)
        if p.shape[1] != n_classes:
            raise ValueError(f"probs have {p.shape[1]} classes, expected {n_classes}")
        return np.argmax(p, axis=1)
    if a.ndim != 1 or a.size == 0:
        raise ValueError(f"labels must have shape (N,) with N >= 1, got {a.shape}")
    if not np.issubdtype(a.dtype, np.integer):
        raise ValueError(f"labels must be integers, got dtype {a.dtype}")
    if bool(np.any(a < 0)) or bool(np.any(a >= n_classes)):
        raise ValueError(f"labels must lie in 0..{n_classes - 1}")
    return a.astype(np.int64)


def class_histogram(probs_or_labels, n_classes: int = N_CLASSES) -> np.ndarray:
    """h_y: the share of images predicted as class y, shape (K,), summing to 1."""
    labels = predicted_labels(probs_or_labels, n_classes)
    return np.bincount(labels, minlength=n_classes) / labels.size


def mode_coverage(probs_or_labels, n_classes: int = N_CLASSES, min_share: float = COVERAGE_MIN_SHARE) -> dict:
    """{"classes_covered": #{y : h_y >= min_share} (int), "class_kl_uniform": KL(h || uniform) in nats}."""
    h = class_histogram(probs_or_labels, n_classes)
    covered = int(np.count_nonzero(h >= min_share))
    kl = float(np.sum(rel_entr(h, np.full(n_classes, 1.0 / n_classes))))
    return {"classes_covered": covered, "class_kl_uniform": kl}
