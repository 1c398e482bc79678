"""The cost model that picks, per bandwidth, the Taylor moments or the direct sums.

Estimated costs, in ~ns, of the two exact methods for one bandwidth, from the moment groups
(:class:`.kde_moments.MomentGroups`: per group g its window of W_g samples, its P_g points and
its N_g Taylor terms):

    moments = sum_g COST_PER_GROUP + COST_PER_TERM N_g + W_g (COST_PER_EXP + COST_PER_PRODUCT N_g)
    direct  = COST_PER_PAIR sum_g W_g P_g

The constants were fitted on the development machine; they only pick the faster method (both are
exact), and depend on the data only, never on timings, so the same data always take the same path.
"""
from __future__ import annotations

import numpy as np

from .kde_moments import MomentGroups

COST_PER_GROUP = 8_000.0  # moments: per group of points
COST_PER_TERM = 3_000.0  # per Taylor term of a group (two NumPy calls)
COST_PER_EXP = 6.0  # per window sample: w_i
COST_PER_PRODUCT = 1.5  # per window sample and term: w_i y_i^n and its sum
COST_PER_PAIR = 8.0  # direct: per kept (point, sample) pair


def moments_are_cheaper(groups: MomentGroups) -> bool:
    """Whether the moments' estimated cost is below the direct sums' (a model, not a timing)."""
    window = (groups.hi - groups.lo).astype(np.float64)
    terms = groups.terms.astype(np.float64)
    moments = np.sum(COST_PER_GROUP + COST_PER_TERM * terms + window * (COST_PER_EXP + COST_PER_PRODUCT * terms))
    direct = COST_PER_PAIR * float(np.sum(window * (groups.end - groups.start)))
    return bool(moments < direct)
