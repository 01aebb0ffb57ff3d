"""A turn of the daemon's loop with no job due, in-process: whether the Mac may sleep, whether the
idle engine is offered its unload, and recordings that went missing found again by housekeeping."""

from __future__ import annotations

import shutil

import pytest
from structlog.testing import capture_logs

from asrd.engine.process import STOPPED
from asrd.status import read_status
from tests.support.in_process import ends, queued_memo, run_job


class PowerCalls:
    """Stands in for KeepAwake (caffeinate): what the daemon asked of it, in order."""

    def __init__(self):
        self.calls: list[tuple[str, str]] = []

    def hold(self, reason):
        self.calls.append(("hold", reason))

    def release(self, reason):
        self.calls.append(("release", reason))


@pytest.fixture
def idle(tmp_path, monkeypatch):
    """The daemon of one queued memo, its inbox there and quiet (the watcher hands nothing on)."""
    daemon, memo, job = queued_memo(tmp_path)
    daemon.watcher.inbox_available = True
    monkeypatch.setattr(daemon.watcher, "poll", list)
    daemon.power = PowerCalls()
    return daemon, memo, job


def test_a_job_waiting_out_a_retry_keeps_the_mac_awake_and_an_empty_queue_lets_it_sleep(idle, monkeypatch):
    daemon, _memo, job = idle
    unloads = []
    monkeypatch.setattr(daemon.engine, "unload_if_idle", lambda: unloads.append(1))
    daemon.ledger.requeue(daemon.ledger.claim(job.id).id, "decoder raised", "attempt", delay_s=600)
    daemon._step()
    assert daemon.power.calls == [("hold", "jobs wait for a retry")]
    assert read_status(daemon.config.state_dir)["job"] is None  # `asrd status` says it is idle
    daemon.ledger.fail(job.id, "gave up")
    daemon._step()
    assert daemon.power.calls[-1] == ("release", "the queue is empty")
    assert len(unloads) == 2  # every idle turn lets an engine idle past engine.idle_unload_s go


def test_a_recording_back_at_its_path_is_found_by_housekeeping_and_run(idle, tmp_path):
    """Moved out of the inbox while queued, then back under the same name (a quiet watcher: nothing
    handed on): the job resumes within HOUSEKEEPING_S and runs, without an attempt counted."""
    daemon, memo, job = idle
    away = tmp_path / "away.wav"
    shutil.move(memo, away)
    run_job(daemon, ends(STOPPED))
    assert daemon.ledger.get(job.id).missing_since is not None
    shutil.move(away, memo)
    given = []
    daemon._transcribe = lambda job, path: given.append(path) or ends(STOPPED)(job, path)
    daemon._housekept = 0.0  # housekeeping is due
    with capture_logs() as logs:
        daemon._step()
    assert [(e["event"], e["file"]) for e in logs if e["event"] == "job.resumed"] == [("job.resumed", str(memo))]
    assert given == [memo] and daemon.ledger.get(job.id).attempts == 0
