"""`asrd status` as text: counts read as English ("1 job served", "2 restarts")."""

from __future__ import annotations

import time

import pytest

from asrd.commands.status_cmd import render


def status_info(jobs_served: int, restarts: int) -> dict:
    return {"running": True, "pid": 42, "started_at": time.time() - 90, "inbox": "/in", "inbox_available": True,
            "engine": {"state": "ready", "device": "cpu", "preset": "sensevoice", "jobs_served": jobs_served,
                       "restarts": restarts},
            "job": None, "waiting_files": [], "counts": {"queued": 0, "running": 0, "done": 1, "failed": 0},
            "queue": [], "recent": []}


@pytest.mark.parametrize("served, restarts, words", [
    (1, 1, "1 job served, 1 restart"),
    (2, 0, "2 jobs served, 0 restarts"),
])
def test_engine_line_counts_are_plural_only_when_not_one(served, restarts, words):
    assert f"engine: ready on cpu (preset sensevoice), {words}\n" in render(status_info(served, restarts))
