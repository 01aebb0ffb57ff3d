"""pytest plugin for the mapping run: name each test as coverage's context, in this process and (via
the environment the tests hand down) in every asrd process it starts, and record how long it took."""

from __future__ import annotations

import json
import os
from collections import defaultdict

import coverage
import pytest

CONTEXT_VAR = "ASRD_COVERAGE_CONTEXT"
_durations: dict[str, float] = defaultdict(float)
_failed: list[str] = []


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    os.environ[CONTEXT_VAR] = item.nodeid
    current = coverage.Coverage.current()
    if current is not None:
        current.switch_context(item.nodeid)


def pytest_runtest_logreport(report):
    _durations[report.nodeid] += report.duration
    if report.failed:
        _failed.append(report.nodeid)


def pytest_sessionfinish(session):
    out = os.environ.get("ASRD_MUTATION_DURATIONS")
    if out:
        with open(out, "w") as f:
            json.dump(
                {"durations": dict(_durations), "failed": sorted(set(_failed))},
                f,
                indent=0,
            )
