"""`asrd run` keeps the Mac awake while it works: a fake `caffeinate` (first on PATH) runs as
`caffeinate -i -w <daemon pid>` during a job, is gone once the queue is empty, and ends by itself
when the daemon is SIGKILLed (-w), so a dead daemon never keeps a Mac from sleeping."""

from __future__ import annotations

import shutil
import signal
from pathlib import Path

import psutil

from tests.support.daemon import DaemonRun
from tests.support.fake_tools import (
    caffeinate_starts,
    fake_path,
    running,
    wait_caffeinate_starts,
    wait_gone,
)


def drop(speech3, target: Path) -> Path:
    """A recording under `target`'s name, in the clip format its suffix names (each its own content)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(speech3[0] / f"speech3{target.suffix}", target))


def test_caffeinate_is_held_while_a_job_runs_and_dies_with_a_killed_daemon(tmp_path, tiny_models, speech3):
    record = tmp_path / "caffeinate.starts"
    env = {"PATH": fake_path(tmp_path / "bin", "caffeinate"), "FAKE_CAFFEINATE_LOG": str(record)}
    daemon = DaemonRun(tmp_path, hooks={"delay_s": 3}, env=env)  # each job takes 3 s more: time to look
    with daemon:
        daemon_pid = daemon.proc.pid
        drop(speech3, daemon.inbox / "first.wav")
        daemon.wait_for(lambda e: e["event"] == "job.started")
        [(pid, argv)] = wait_caffeinate_starts(record, 1)
        assert argv == ["-i", "-w", str(daemon_pid)]
        assert running(pid) and psutil.Process(pid).ppid() == daemon_pid  # the daemon's child
        daemon.wait_done(1)
        [released] = daemon.wait_for(lambda e: e["event"] == "power.released")
        assert released["reason"] == "the queue is empty" and wait_gone(pid)
        [held] = [e for e in daemon.events() if e["event"] == "power.held"]
        assert held["pid"] == pid and held["level"] == "info" and held["reason"]
        # the second job's assertion outlives no daemon: SIGKILL leaves caffeinate -w to notice
        drop(speech3, daemon.inbox / "second.mp3")
        daemon.wait_for(lambda e: e["event"] == "job.started", n=2)
        second = wait_caffeinate_starts(record, 2)[1][0]
        assert running(second)
        daemon.stop(signal.SIGKILL)
    assert wait_gone(second), "caffeinate -w outlived the SIGKILLed daemon"
    assert len(caffeinate_starts(record)) == 2  # one per busy spell, none while idle


def test_a_daemon_stopped_mid_job_lets_the_mac_sleep_before_it_exits(tmp_path, tiny_models, speech3):
    """Logout's SIGTERM during a job: the assertion is released as asrd stops (not left to caffeinate
    noticing the exit), and the log says why."""
    record = tmp_path / "caffeinate.starts"
    env = {"PATH": fake_path(tmp_path / "bin", "caffeinate"), "FAKE_CAFFEINATE_LOG": str(record)}
    daemon = DaemonRun(tmp_path, hooks={"delay_s": 30}, env=env)
    with daemon:
        drop(speech3, daemon.inbox / "memo.wav")
        daemon.wait_for(lambda e: e["event"] == "job.started")
        [(pid, _)] = wait_caffeinate_starts(record, 1)
        code, _ = daemon.stop()
    assert code == 0 and wait_gone(pid)
    [released] = [e for e in daemon.events() if e["event"] == "power.released"]
    assert released["reason"] == "daemon stopping"


def test_keep_awake_false_starts_no_caffeinate(tmp_path, tiny_models, speech3):
    record = tmp_path / "caffeinate.starts"
    env = {"PATH": fake_path(tmp_path / "bin", "caffeinate"), "FAKE_CAFFEINATE_LOG": str(record)}
    with DaemonRun(tmp_path, env=env, power={"keep_awake": False}) as daemon:
        drop(speech3, daemon.inbox / "memo.wav")
        daemon.wait_done(1)
        code, _ = daemon.stop()
    assert code == 0 and caffeinate_starts(record) == []
    assert daemon.count("power.held") == 0
