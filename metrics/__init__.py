"""ganrepro.metrics: scores of generated 1D samples against the exact target N(mu=4, sigma=0.5).

Framework-free (NumPy and SciPy only), as docs/metrics.md#what-is-scored requires: both framework
implementations hand their generated samples, as NumPy arrays, to these functions.

- :mod:`.target`   the target's constants (MU, SIGMA, TARGET_ENTROPY) and CDF/pdf/quantile helpers
- :mod:`.distance` ks_statistic, wasserstein1 (to the exact target CDF, closed form)
- :mod:`.kde`      kde_log_likelihood (Parzen window, bandwidth chosen on a validation draw); its exact
                   paths: :mod:`.kde_direct` (pairwise sums), :mod:`.kde_moments` (Taylor moments), and
                   :mod:`.kde_cost` (which path is cheaper); :mod:`.kde_select` (the bandwidth's
                   exact argmax from rigorous bounds of the validation scores, without all of them)
- :mod:`.status`   run_status: "ok" / "collapsed" / "diverged"
- :mod:`.evaluate` evaluate: everything for one sample array, as a plain dict; evaluate_many: the
                   same for every row of a stack (one generator per row), sorting once
- :mod:`.floor`    perfect_generator_floor and PUBLISHED_FLOOR
"""
from .distance import ks_statistic, wasserstein1
from .evaluate import METRIC_KEYS, evaluate, evaluate_many
from .floor import PUBLISHED_FLOOR, perfect_generator_floor
from .kde import DEFAULT_BANDWIDTHS, KDEResult, kde_log_likelihood, parzen_log_likelihoods
from .status import (
    COLLAPSE_STD_RATIO,
    STATUS_COLLAPSED,
    STATUS_DIVERGED,
    STATUS_OK,
    STATUSES,
    run_status,
    sample_std,
)
from .target import (
    MU,
    SIGMA,
    TARGET_ENTROPY,
    target_cdf,
    target_entropy,
    target_logpdf,
    target_pdf,
    target_quantile,
    target_sf,
)

__all__ = [
    "COLLAPSE_STD_RATIO",
    "DEFAULT_BANDWIDTHS",
    "METRIC_KEYS",
    "MU",
    "PUBLISHED_FLOOR",
    "SIGMA",
    "STATUSES",
    "STATUS_COLLAPSED",
    "STATUS_DIVERGED",
    "STATUS_OK",
    "TARGET_ENTROPY",
    "KDEResult",
    "evaluate",
    "evaluate_many",
    "kde_log_likelihood",
    "ks_statistic",
    "parzen_log_likelihoods",
    "perfect_generator_floor",
    "run_status",
    "sample_std",
    "target_cdf",
    "target_entropy",
    "target_logpdf",
    "target_pdf",
    "target_quantile",
    "target_sf",
    "wasserstein1",
]
