"""launchd's stdout/stderr files stay bounded: `asrd run` trims them at each start."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from asrd.lock import StateLock
from asrd.macos.launchd_logs import MAX_BYTES, trim


def test_trim_keeps_the_tail_and_empties_the_file_in_place(tmp_path):
    err = tmp_path / "launchd.err.log"
    err.write_bytes(b"a" * MAX_BYTES + b"the last crash\n")
    small = tmp_path / "launchd.out.log"
    small.write_text("fine\n")
    with open(err, "ab") as launchd_handle:  # launchd's own descriptor, opened for appending
        assert trim(tmp_path, keep_bytes=100) == [err]
        launchd_handle.write(b"after\n")
    assert err.read_bytes() == b"after\n"
    assert (tmp_path / "launchd.err.log.1").read_bytes().endswith(b"the last crash\n")
    assert len((tmp_path / "launchd.err.log.1").read_bytes()) == 100 and small.read_text() == "fine\n"


def test_asrd_run_trims_them_at_start(tmp_path):
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "launchd.err.log").write_bytes(b"x" * (MAX_BYTES + 1))
    config = tmp_path / "c.yaml"
    (tmp_path / "inbox").mkdir()
    config.write_text(f"inbox: {tmp_path / 'inbox'}\nstate_dir: {tmp_path / 'state'}\nlog_file: {logs / 'asrd.log'}\n")
    lock = StateLock(tmp_path / "state")  # another asrd holds the lock: `asrd run` waits, starting nothing
    lock.acquire()
    proc = subprocess.Popen([sys.executable, "-m", "asrd", "run", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=os.environ.copy())
    try:
        deadline = time.monotonic() + 60
        while "daemon.already_running" not in _read(logs / "asrd.log"):
            assert proc.poll() is None and time.monotonic() < deadline
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
    finally:
        lock.release()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert (logs / "launchd.err.log").stat().st_size == 0 and (logs / "launchd.err.log.1").exists()


def _read(path: Path) -> str:
    return path.read_text() if path.exists() else ""
