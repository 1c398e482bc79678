"""ganrepro.metrics.evaluate_many: a stack of sample sets scored at once, each row bit for bit what
evaluate gives it with its own generator."""
from __future__ import annotations

import math
import struct

import numpy as np
import pytest

from ganrepro.metrics import METRIC_KEYS, STATUS_COLLAPSED, STATUS_DIVERGED, STATUS_OK, evaluate, evaluate_many


def _bits(value):
    return struct.pack("<d", value) if isinstance(value, float) else value


def _same(a: dict, b: dict) -> bool:
    return tuple(a) == tuple(b) == METRIC_KEYS and all(_bits(a[k]) == _bits(b[k]) for k in METRIC_KEYS)


def _rngs(seeds, stream=9):
    return [np.random.default_rng(np.random.SeedSequence([seed, stream])) for seed in seeds]


def _stacks():
    r = np.random.default_rng(np.random.SeedSequence([20240611, 70]))
    n = 4000
    diverged = r.normal(4.0, 0.5, n)
    diverged[::97] = np.nan
    overflowing = r.normal(4.0, 0.5, n)
    overflowing[5] = 1e300  # finite, but its std overflows: diverged too
    return {
        "mixed": np.stack(
            [
                r.normal(4.0, 0.5, n),  # target-like
                diverged,
                4.0 + 0.01 * r.normal(size=n),  # collapsed
                np.concatenate([r.normal(3.0, 0.1, n // 2), r.normal(5.0, 0.1, n // 2)]),
                np.round(r.normal(4.2, 0.6, n), 2),  # many exact duplicates
            ]
        ),
        "with_inf_and_overflow": np.stack([r.normal(4.0, 0.5, n), overflowing, np.full(n, np.inf)]),
        "point_masses": np.stack([np.full(n, 4.0), np.full(n, 7.5), r.normal(4.0, 0.05, n)]),
        "single_row": r.normal(4.1, 0.45, (1, n)),
        "tiny_rows": r.normal(4.0, 0.5, (3, 2)),
    }


@pytest.mark.parametrize("name", list(_stacks()))
def test_evaluate_many_is_evaluate_per_row_bitwise(name):
    stack = _stacks()[name]
    seeds = range(stack.shape[0])
    kwargs = {"n_test": 3000, "n_validation": 2000}
    many = evaluate_many(stack, _rngs(seeds), **kwargs)
    assert len(many) == stack.shape[0]
    for row, rng, got in zip(stack, _rngs(seeds), many, strict=True):
        assert _same(got, evaluate(row.copy(), rng=rng, **kwargs))


def test_evaluate_many_statuses_and_generator_advance():
    stack = _stacks()["mixed"]
    rngs = _rngs(range(stack.shape[0]))
    many = evaluate_many(stack, rngs, n_test=500, n_validation=200)
    assert [m["status"] for m in many] == [STATUS_OK, STATUS_DIVERGED, STATUS_COLLAPSED, STATUS_OK, STATUS_OK]
    assert all(math.isnan(many[1][k]) for k in METRIC_KEYS if k != "status")
    # Every generator advanced by exactly its own 700 normals, diverged row included.
    for rng, fresh in zip(rngs, _rngs(range(stack.shape[0])), strict=True):
        fresh.normal(size=700)
        assert rng.random() == fresh.random()


def test_evaluate_many_default_sizes_and_other_target():
    r = np.random.default_rng(3)
    stack = np.stack([r.normal(1.0, 2.0, 10_000), r.normal(0.0, 1.5, 10_000)])
    many = evaluate_many(stack, _rngs([1, 2], stream=4), mu=1.0, sigma=2.0)
    for row, rng, got in zip(stack, _rngs([1, 2], stream=4), many, strict=True):
        assert _same(got, evaluate(row, rng=rng, mu=1.0, sigma=2.0))


def test_evaluate_many_rejects_bad_arguments_before_drawing():
    stack = np.random.default_rng(4).normal(4.0, 0.5, (2, 50))
    rngs = _rngs([0, 1])
    with pytest.raises(ValueError):
        evaluate_many(stack[0], rngs[:1])  # 1-D
    with pytest.raises(ValueError):
        evaluate_many(stack, rngs[:1])  # one generator short
    with pytest.raises(TypeError):
        evaluate_many(stack, [rngs[0], 1])
    with pytest.raises(ValueError):
        evaluate_many(np.empty((2, 0)), rngs)
    with pytest.raises(ValueError):
        evaluate_many(stack, rngs, n_test=0)
    fresh = _rngs([0, 1])
    assert all(a.random() == b.random() for a, b in zip(rngs, fresh, strict=True))  # nothing drawn
    assert evaluate_many(np.empty((0, 5)), []) == []
