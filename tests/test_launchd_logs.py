"""launchd's stdout/stderr files stay bounded: `asrd run` trims them at each start."""

from __future__ import annotations

import os
import subprocess
import sys

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
    lock = StateLock(tmp_path / "state")  # another asrd holds the lock: `asrd run` starts and stops at once
    lock.acquire()
    try:
        result = subprocess.run([sys.executable, "-m", "asrd", "run", "--config", str(config)],
                                capture_output=True, text=True, timeout=60, env=os.environ.copy())
    finally:
        lock.release()
    assert result.returncode == 1 and "already" in result.stderr.lower(), result.stderr
    assert (logs / "launchd.err.log").stat().st_size == 0 and (logs / "launchd.err.log.1").exists()
