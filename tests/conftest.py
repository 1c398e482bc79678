"""Shared fixtures: the frameworks to test, and the agreement report printed after the run.

Set GANREPRO_REQUIRE_FRAMEWORKS=1 (tox and CI do) to turn a missing framework into a failure
instead of a skip, so a broken install can never pass as "skipped".
"""
from __future__ import annotations

import os

os.environ.setdefault("ATEN_CPU_CAPABILITY", "default")  # as ganrepro.impls.torch_twin sets it

import ganrepro  # noqa: F401  (first: its instruction-set pin must precede NumPy; ganrepro/isa.py)

# isort: split
import numpy as np
import pytest

from ganrepro.impls import FRAMEWORKS, available, get_backend, import_order

assert import_order  # imported for its effect: Triton before any test imports TensorFlow (its docstring)

_AGREEMENT: list[tuple[str, str, float, float]] = []  # (test node id, quantity, reached, bound)


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
    """record(quantity, reached, bound): asserts reached <= bound and lists it in the final report.

    Each value travels in the test's report (``user_properties``), so the table is complete when
    the tests run in several processes (pytest-xdist: tox's test command uses both cores)."""

    def record(quantity: str, reached: float, bound: float) -> None:
        request.node.user_properties.append((_AGREEMENT_KEY, (quantity, float(reached), float(bound))))
        assert np.isfinite(reached) and reached <= bound, f"{quantity}: reached {reached:.3e}, bound {bound:.1e}"

    return record


_AGREEMENT_KEY = "ganrepro-agreement"


def pytest_runtest_logreport(report):
    if report.when != "call":
        return
    for key, value in report.user_properties:
        if key == _AGREEMENT_KEY:
            _AGREEMENT.append((report.nodeid, *value))


def pytest_terminal_summary(terminalreporter):
    if not _AGREEMENT:
        return
    tr = terminalreporter
    tr.section("agreement reached (worst case per check)")
    # Sorted by test id (a stable sort keeps each test's own order), so the table reads the same
    # however the tests were spread over processes.
    rows = [(nodeid.rsplit("::", 1)[-1], quantity, reached, bound)
            for nodeid, quantity, reached, bound in sorted(_AGREEMENT, key=lambda row: row[0])]
    width = max(len(f"{t} {q}") for t, q, _, _ in rows)
    for test, quantity, reached, bound in rows:
        tr.write_line(f"{(test + ' ' + quantity).ljust(width)}  {reached:9.2e}  (bound {bound:.0e})")
