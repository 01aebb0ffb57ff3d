"""The engine process lives and dies with the daemon: a SIGKILLed daemon leaves no engine behind,
and a SIGTERM to the whole process group (timeout, systemd, a logout) is a stop, never a crash
blamed on the recording. Real `asrd run` subprocesses, real signals."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import psutil

from asrd.error_record import error_record_path
from asrd.ledger import Ledger
from tests.support.daemon import DaemonRun
from tests.support.recordings import distinct_wav


def drop(speech3, target: Path) -> Path:
    return distinct_wav(speech3[0] / "speech3.wav", target)  # its own content: not a duplicate


def gone(pid: int) -> bool:
    """Exited; a zombie counts (an orphan's new parent may be slow to reap it)."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_gone(pid: int, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while not gone(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_a_sigkilled_daemon_leaves_no_engine_behind(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path, hooks={"hang_on": "stuck.wav"})
    drop(speech3, daemon.inbox / "stuck.wav")
    with daemon:
        [ready] = daemon.wait_for(lambda e: e["event"] == "engine.ready")
        engine_pid = ready["pid"]
        daemon.proc.kill()
        daemon.proc.wait(10)
        try:
            assert wait_gone(engine_pid, 5), "the engine outlived its daemon"
        finally:
            if not gone(engine_pid):
                os.kill(engine_pid, signal.SIGKILL)


def test_sigterm_to_the_process_group_mid_job_is_a_stop_not_a_crash(tmp_path, tiny_models, speech3):
    """`timeout -s TERM`, systemd and a logout signal the whole group, twice here, mid-job, with
    engine.max_crashes 2: counted as crashes, the recording would be failed."""
    first = drop(speech3, tmp_path / "inbox" / "first.wav")
    settings = {"hooks": {"delay_s": 5}, "new_session": True, "engine": {"max_crashes": 2}}
    with DaemonRun(tmp_path, **settings) as daemon:
        [ready] = daemon.wait_for(lambda e: e["event"] == "engine.ready")
        # the group's signal can reach the engine before the daemon (macOS hands a process's signal
        # to any of its threads, so the daemon may see its engine die before it knows it is stopping)
        os.kill(ready["pid"], signal.SIGTERM)
        daemon.wait_done(1)
        memo = drop(speech3, daemon.inbox / "memo.wav")
        daemon.wait_for(lambda e: e["event"] == "job.started" and e["file"] == str(memo))
        os.killpg(daemon.proc.pid, signal.SIGTERM)
        assert daemon.proc.wait(15) == 0
    daemon = DaemonRun(tmp_path, **settings)
    started_before = daemon.count("engine.ready")
    with daemon:  # memo.wav again: in the engine, inside its delay
        daemon.wait_for(lambda e: e["event"] == "engine.ready", n=started_before + 1)
        os.killpg(daemon.proc.pid, signal.SIGTERM)
        assert daemon.proc.wait(15) == 0
    with DaemonRun(tmp_path, engine={"max_crashes": 2}) as daemon:
        daemon.wait_for(lambda e: e["event"] == "job.done" and e["file"] == str(memo))
    ledger = Ledger(tmp_path / "state")
    for path in (first, memo):
        job = ledger.by_path(path)
        assert (job.state, job.crashes, job.attempts) == ("done", 0, 0), path
        assert path.with_suffix(".txt").exists() and not error_record_path(path).exists()
    assert daemon.count("engine.crashed") == 0
