"""Shared fixtures: the frameworks to test, and the agreement report printed after the run.

Set GANREPRO_REQUIRE_FRAMEWORKS=1 (tox and CI do) to turn a missing framework into a failure
instead of a skip, so a broken install can never pass as "skipped".
"""
from __future__ import annotations

import os

os.environ.setdefault("ATEN_CPU_CAPABILITY", "default")  # as ganrepro.impls.torch_twin sets it

import numpy as np
import pytest

from ganrepro.impls import FRAMEWORKS, available, get_backend

_AGREEMENT: list[tuple[str, str, float, float]] = []


@pytest.fixture(params=list(FRAMEWORKS), ids=list(FRAMEWORKS))
def framework(request) -> str:
    name = request.param
    if not available(name):
        if os.environ.get("GANREPRO_REQUIRE_FRAMEWORKS") == "1":
            pytest.fail(f"framework {name!r} is required (GANREPRO_REQUIRE_FRAMEWORKS=1) but not installed")
        pytest.skip(f"framework {name!r} not installed")
    return name


def require_both():
    for name in FRAMEWORKS:
        if not available(name):
            if os.environ.get("GANREPRO_REQUIRE_FRAMEWORKS") == "1":
                pytest.fail(f"framework {name!r} is required but not installed")
            pytest.skip(f"framework {name!r} not installed")
    return get_backend("torch"), get_backend("tf")


@pytest.fixture
def twins():
    """(torch_twin, tf_twin) modules; skips (or fails, under GANREPRO_REQUIRE_FRAMEWORKS) if one is missing."""
    return require_both()


@pytest.fixture
def agreement(request):
    """record(quantity, reached, bound): asserts reached <= bound and lists it in the final report."""

    def record(quantity: str, reached: float, bound: float) -> None:
        _AGREEMENT.append((request.node.name, quantity, float(reached), float(bound)))
        assert np.isfinite(reached) and reached <= bound, f"{quantity}: reached {reached:.3e}, bound {bound:.1e}"

    return record


def pytest_terminal_summary(terminalreporter):
    if not _AGREEMENT:
        return
    tr = terminalreporter
    tr.section("agreement reached (worst case per check)")
    width = max(len(f"{t} {q}") for t, q, _, _ in _AGREEMENT)
    for test, quantity, reached, bound in _AGREEMENT:
        tr.write_line(f"{(test + ' ' + quantity).ljust(width)}  {reached:9.2e}  (bound {bound:.0e})")
