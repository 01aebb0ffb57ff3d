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


def test_a_job_waiting_for_its_recording_is_said_and_not_named_next(tmp_path):
    from dataclasses import asdict

    from asrd.ledger import Ledger

    ledger = Ledger(tmp_path / "state")
    gone, _ = ledger.offer(tmp_path / "inbox" / "a.wav", 10, 1, "a" * 64)
    ready, _ = ledger.offer(tmp_path / "inbox" / "b.wav", 11, 2, "b" * 64)
    ledger.mark_missing(gone.id, "gone")
    info = status_info(1, 0) | {"counts": {**ledger.counts()}, "queue": [asdict(j) for j in ledger.queued()]}
    text = render(info)
    assert "queue: 2 waiting, next: b.wav" in text
    assert f"waiting for its recording: {gone.path}" in text


def test_the_engine_line_shows_its_memory_figure_and_why_it_left_the_gpu():
    info = status_info(3, 1)
    info["engine"] |= {"memory_mb": 1834, "memory_limit_mb": 8192, "device_note": "on the CPU until asrd restarts: "
                       "2 jobs hit ops mps cannot run (last: aten::_fft_r2c)"}
    lines = render(info).splitlines()
    assert "engine: ready on cpu (preset sensevoice), 3 jobs served, 1 restart, memory 1834 MB of 8192" in lines
    assert "  on the CPU until asrd restarts: 2 jobs hit ops mps cannot run (last: aten::_fft_r2c)" in lines
    assert ", memory" not in render(status_info(0, 0))  # no job yet: no figure
