"""ganrepro.metrics.images: scores of generated images (the image track, docs/metrics-images.md).

Framework-free (NumPy and SciPy only; threadpoolctl, when installed, to keep BLAS on one thread),
like the 1D metrics: the twins hand their generated images over as NumPy arrays (N, H, W) in [0, 1].

- :mod:`.parzen`      Parzen-window log-likelihood with Goodfellow et al. 2014's protocol (sigma grid
                      SIGMAS chosen on validation images, mean and standard error on test images)
- :mod:`.classifier`  the suite's own small convnet (NumPy), trained deterministically per data set and
                      cached (load_or_train); its probabilities, labels and penultimate features
- :mod:`.frechet`     Frechet distance between two feature sets (FID's formula on the suite's classifier)
- :mod:`.scores`      inception_score (the Inception-score analogue) and mode_coverage
- :mod:`.stability`   mapping_instability (latent-grid labels across checkpoints), gradient_vanishing_step
- :mod:`.evaluate`    evaluate_images (everything for one set of samples), image_floor (real images),
                      PUBLISHED_MNIST_PARZEN
"""
from .classifier import (
    ARCHITECTURE_VERSION,
    MIN_ACCURACY,
    Classifier,
    Recipe,
    cache_key,
    cache_path,
    check_accuracy,
    default_cache_dir,
    load_or_train,
    recipe_for,
    train_classifier,
)
from .evaluate import (
    IMAGE_METRIC_KEYS,
    PUBLISHED_MNIST_PARZEN,
    STATUS_DIVERGED,
    STATUS_OK,
    evaluate_images,
    image_floor,
)
from .frechet import frechet_distance
from .parzen import SIGMAS, choose_sigma, parzen_log_likelihoods, parzen_score
from .scores import COVERAGE_MIN_SHARE, inception_score, mode_coverage
from .stability import VANISHING_THRESHOLD, gradient_vanishing_step, mapping_instability

__all__ = [
    "ARCHITECTURE_VERSION",
    "COVERAGE_MIN_SHARE",
    "IMAGE_METRIC_KEYS",
    "MIN_ACCURACY",
    "PUBLISHED_MNIST_PARZEN",
    "SIGMAS",
    "STATUS_DIVERGED",
    "STATUS_OK",
    "VANISHING_THRESHOLD",
    "Classifier",
    "Recipe",
    "cache_key",
    "cache_path",
    "check_accuracy",
    "choose_sigma",
    "default_cache_dir",
    "evaluate_images",
    "frechet_distance",
    "gradient_vanishing_step",
    "image_floor",
    "inception_score",
    "load_or_train",
    "mapping_instability",
    "mode_coverage",
    "parzen_log_likelihoods",
    "parzen_score",
    "recipe_for",
    "train_classifier",
]
