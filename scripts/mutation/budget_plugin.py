"""pytest plugin for the sweep: once `--mutation-budget` seconds of wall time are spent, the tests
not yet started are skipped (reported as skipped, so the run still passes or fails on the tests that
ran). Mapped durations cannot bound a run: a test that took 0.4 s in the mapping run pays, in a fresh
process, the imports and session fixtures the tests before it had paid."""

from __future__ import annotations

import time

import pytest

_started = time.monotonic()


def pytest_addoption(parser):
    parser.addoption("--mutation-budget", type=float, default=None)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    budget = item.config.getoption("--mutation-budget")
    if budget is not None and time.monotonic() - _started > budget:
        pytest.skip("mutation budget spent")
