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
