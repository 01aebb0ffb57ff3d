"""An idle `asrd run` leaves the disk alone (status.json is rewritten only when its content changes),
and under launchd (stderr not a terminal) it writes its events to the log file only, never to stderr."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil

from asrd.status import read_status, status_path
from tests.support.daemon import DaemonRun


def identity(path: Path) -> tuple[int, int, float]:
    """Changes on every atomic rewrite: a new inode renamed over the old one, a new mtime, a new updated_at."""
    st = path.stat()
    return st.st_ino, st.st_mtime_ns, json.loads(path.read_text())["updated_at"]


def rewrites_within(path: Path, seconds: float) -> int:
    seen, count = identity(path), 0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(0.05)
        now = identity(path)
        count += now != seen
        seen = now
    return count


def wait_until(predicate, timeout: float = 60):
    deadline = time.monotonic() + timeout
    while not (value := predicate()):
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)
    return value


def test_idle_daemon_does_not_rewrite_its_status_file_and_stderr_stays_empty(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path)
    state = tmp_path / "state"
    with daemon:
        wait_until(lambda: status_path(state).exists())  # written just after `daemon.started` is logged
        assert rewrites_within(status_path(state), 4.0) == 0  # idle: several status ticks, no write
        before = identity(status_path(state))
        memo = Path(shutil.copy(speech3[0] / "speech3.wav", daemon.inbox / "memo.wav"))
        job = wait_until(lambda: (read_status(state) or {}).get("job"))  # a job start is written at once
        assert job["file"] == str(memo) and identity(status_path(state)) != before
        daemon.wait_done(1)
        wait_until(lambda: (read_status(state) or {}).get("job") is None)
        # idle again after a file's events woke the loop: it waits, it does not spin (a loop that never
        # cleared its wake-up would burn a core from the first recording on)
        daemon_cpu = psutil.Process(daemon.proc.pid).cpu_times
        used_before, started = sum(daemon_cpu()[:2]), time.monotonic()
        time.sleep(2.0)
        assert sum(daemon_cpu()[:2]) - used_before < 0.25 * (time.monotonic() - started)
        status = subprocess.run([sys.executable, "-m", "asrd", "status", "--json", "--config", str(daemon.config)],
                                capture_output=True, text=True, timeout=60)
        info = json.loads(status.stdout)
        assert info["running"] is True  # told by the lock: the file is as old as the last change
        assert info["engine"]["state"] == "ready" and info["engine"]["load_s"] == round(info["engine"]["load_s"], 2)
        daemon.proc.send_signal(signal.SIGTERM)
        _, stderr = daemon.proc.communicate(timeout=15)
    assert daemon.proc.returncode == 0
    assert stderr == ""
    final = read_status(state)  # for scripts that read the file: it says the daemon stopped, not a stale "busy"
    assert final["running"] is False and final["job"] is None and final["engine"]["state"] == "stopped"
    events = {e["event"] for e in daemon.events()}
    assert {"daemon.started", "job.started", "job.done", "daemon.stopped"} <= events
    assert "config.reloaded" not in events  # read again only when asked (SIGHUP), never by the loop itself


def test_on_a_terminal_the_daemon_shows_its_events(tmp_path):
    """`asrd run` by hand keeps its human console output (a pseudo-terminal as stderr)."""
    import os
    import pty
    import select

    daemon = DaemonRun(tmp_path)
    controller, terminal = pty.openpty()
    proc = subprocess.Popen([sys.executable, "-m", "asrd", "run", "--config", str(daemon.config)],
                            stdout=subprocess.DEVNULL, stderr=terminal)
    os.close(terminal)
    shown = b""
    try:
        while b"daemon.started" not in shown:
            assert select.select([controller], [], [], 60)[0], f"nothing shown on the terminal: {shown!r}"
            chunk = os.read(controller, 4096)
            assert chunk, "the terminal closed before daemon.started was shown"
            shown += chunk
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(15)
        os.close(controller)
    assert proc.returncode == 0
