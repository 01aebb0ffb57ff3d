"""A second `asrd run` on a state dir another asrd holds, as launchd would start it: it stays up (no
exit into KeepAlive's respawn loop), says so once, and takes over when the holder exits."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

from asrd.lock import StateLock
from tests.support.daemon import DaemonRun
from tests.support.recordings import distinct_wav


def start_second(daemon: DaemonRun) -> subprocess.Popen:
    """Another `asrd run` on the same config (so the same state dir and log file)."""
    return subprocess.Popen([sys.executable, "-m", "asrd", "run", "--config", str(daemon.config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ.copy())


def test_a_second_daemon_waits_then_takes_over_and_transcribes(tmp_path, tiny_models, speech3):
    first = DaemonRun(tmp_path)
    before = distinct_wav(speech3[0] / "speech3.wav", first.inbox / "before.wav")
    first.start()
    holder = first.proc
    second = start_second(first)
    try:
        [said] = first.wait_for(lambda e: e["event"] == "daemon.already_running", 60)
        assert said["holder_pid"] == holder.pid and said["state_dir"] == str(tmp_path / "state")
        assert "takes over" in said["fix"]
        first.wait_done(1)  # the holder works on while the second waits
        assert second.poll() is None and first.count("daemon.started") == 1
        code, _ = first.stop()
        assert code == 0
        first.proc = second  # follow the second daemon from here
        first.wait_for(lambda e: e["event"] == "daemon.started" and e["pid"] == second.pid, 30)
        [taken] = first.wait_for(lambda e: e["event"] == "daemon.lock_acquired")
        assert taken["previous_pid"] == holder.pid
        after = distinct_wav(speech3[0] / "speech3.wav", first.inbox / "after.wav")
        first.wait_for(lambda e: e["event"] == "job.done" and e["file"] == str(after), 120)
        assert first.count("daemon.already_running") == 1  # said once, not at every retry
        code, _ = first.stop()
        assert code == 0
    finally:
        for proc in (holder, second):
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert before.with_suffix(".json").exists() and after.with_suffix(".json").exists()


def test_sigterm_while_waiting_for_the_lock_exits_0_at_once(tmp_path):
    daemon = DaemonRun(tmp_path)
    lock = StateLock(tmp_path / "state")  # the holder: this test process
    lock.acquire()
    try:
        waiting = start_second(daemon)
        daemon.proc = waiting
        [said] = daemon.wait_for(lambda e: e["event"] == "daemon.already_running", 60)
        assert said["holder_pid"] == os.getpid()
        started = time.monotonic()
        waiting.send_signal(signal.SIGTERM)
        assert waiting.wait(timeout=10) == 0
        assert time.monotonic() - started < 5
        assert daemon.count("daemon.started") == 0 and not (tmp_path / "state" / "status.json").exists()
    finally:
        lock.release()
        if daemon.proc.poll() is None:
            daemon.proc.kill()
            daemon.proc.wait()
