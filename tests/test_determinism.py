"""Seeds in, identical bytes out: the same run twice, and a seed alone vs inside a stack.

Every test trains whole runs (``train``: weights, pretraining, the training loop, the evaluation
outputs; several per test, both frameworks), so the module is marked slow."""
from __future__ import annotations

import numpy as np
import pytest

from ganrepro.config import make_config
from ganrepro.training import train

pytestmark = pytest.mark.slow

CASES = {
    "2016-mbd": dict(protocol="2016", minibatch=True, num_steps=150, pretrain_steps=100),
    "2017-vanilla": dict(protocol="2017", minibatch=False, num_steps=300),
    "2017-mbd": dict(protocol="2017", minibatch=True, num_steps=300),
}


def config_for(case, seeds):
    kw = dict(CASES[case])
    return make_config(kw.pop("protocol"), seeds=seeds, **kw)


def arrays(out, index=None):
    """Every array a run returns, for seed ``index`` of the stack (all seeds if None)."""
    pick = (lambda a: a) if index is None else (lambda a: a[index])
    items = {f"{net}/{k}": pick(v) for net in ("G", "D") for k, v in out.weights[net].items()}
    items.update(samples_grid=pick(out.samples_grid), samples_uniform=pick(out.samples_uniform),
                 boundary=pick(out.boundary),
                 curves=out.curves if index is None else out.curves[:, index])
    return items


@pytest.mark.parametrize("case", list(CASES))
def test_the_same_run_twice_gives_identical_bytes(framework, case):
    config = config_for(case, seeds=(0, 1, 2))
    first, second = arrays(train(config, framework)), arrays(train(config, framework))
    for name, value in first.items():
        assert value.tobytes() == second[name].tobytes(), name


@pytest.mark.parametrize("case", list(CASES))
def test_a_seed_alone_equals_the_same_seed_in_a_stack_of_eight(framework, case, agreement):
    stacked = train(config_for(case, seeds=range(8)), framework)
    worst = 0.0
    for k in (0, 5):
        alone = arrays(train(config_for(case, seeds=(k,)), framework), 0)
        inside = arrays(stacked, k)
        for name, value in alone.items():
            worst = max(worst, float(np.max(np.abs(value - inside[name]))))
    # Bitwise: neither twin lets a seed's rounding depend on its position in the stack
    # (see torch_twin.configure and tf_twin.linear for what that takes).
    agreement(f"{framework} {case}: seed alone vs in a stack of 8, max abs difference", worst, 0.0)


LARGE_STACK = 1024
"""Larger than every stack a grid trains (the large grid's 512) and than TensorFlow's STACK_LIMIT."""


@pytest.mark.parametrize("case", ["2017-vanilla", "2017-mbd"])
def test_a_seed_alone_equals_the_same_seed_in_a_large_stack(framework, case):
    """The large grid's stacks: bitwise, at the first, a middle and the last position. (TensorFlow
    trains stacks above its twin's STACK_LIMIT in groups; without that, seeds of a stack of 512
    rounded differently from step 3 on.) Diverged seeds' NaN bits are compared as stored
    (records.canonical_nans)."""
    from ganrepro.records import canonical_nans

    short = dict(CASES[case], num_steps=40)
    config = make_config(short.pop("protocol"), seeds=range(LARGE_STACK), **short)
    stacked = train(config, framework)
    for k in (0, 300, LARGE_STACK - 1):
        alone = arrays(train(config.with_seeds((k,)), framework), 0)
        inside = arrays(stacked, k)
        for name, value in alone.items():
            assert canonical_nans(value).tobytes() == canonical_nans(inside[name]).tobytes(), f"seed {k}: {name}"


def test_groups_above_the_stack_limit_join_into_one_output(monkeypatch):
    """A stack above STACK_LIMIT is trained in groups and joined along the seed axis: the same
    arrays as one stack where the limit is lifted (PyTorch has none; it is imposed here)."""
    from ganrepro.impls import get_backend

    config = make_config("2017", minibatch=True, seeds=range(7), num_steps=30, curve_interval=7)
    whole = arrays(train(config, "torch"))
    monkeypatch.setattr(get_backend("torch"), "STACK_LIMIT", 3)
    seen = []
    grouped_output = train(config, "torch", progress=lambda done, total: seen.append((done, total)))
    grouped = arrays(grouped_output)
    for name, value in whole.items():
        assert value.tobytes() == grouped[name].tobytes(), name
    assert grouped_output.config.seeds == tuple(range(7)) and grouped_output.curves.shape[1] == 7
    assert seen[-1] == (3 * config.iterations, 3 * config.iterations)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)  # the bar only moves forward
