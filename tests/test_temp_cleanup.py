"""Start-up temp cleanup removes only what a dead writer left: never the temp file of a process that
is writing right now (a one-shot `asrd transcribe` beside the daemon)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from asrd.output import cleanup_temp_files, is_temp_file
from tests.support.written import temp_files

REPO = Path(__file__).resolve().parents[1]
CHILD_ENV = {**os.environ, "PYTHONPATH": str(REPO)}


def test_cleanup_spares_the_temp_file_of_a_live_writer(tmp_path: Path) -> None:
    target = tmp_path / "memo.txt"
    child = textwrap.dedent(
        f"""
        import sys
        import asrd.output as output
        real_fsync = output._full_fsync

        def fsync_when_told(fd):
            print("writing", flush=True)
            sys.stdin.readline()  # the parent cleans up meanwhile
            real_fsync(fd)

        output._full_fsync = fsync_when_told
        output.write_atomic({str(target)!r}, "the transcript")
        """
    )
    proc = subprocess.Popen([sys.executable, "-c", child], env=CHILD_ENV, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline() == "writing\n"
        (live,) = temp_files(tmp_path)
        assert cleanup_temp_files(tmp_path) == []
        assert f".{proc.pid}-" in live.name and is_temp_file(live.name)
        proc.stdin.write("go\n")
        proc.stdin.flush()
        assert proc.wait(timeout=60) == 0
    finally:
        proc.kill()
    assert target.read_text() == "the transcript" and temp_files(tmp_path) == []


def test_temp_file_of_a_killed_status_write_is_cleaned(tmp_path: Path) -> None:
    state = tmp_path / "state"
    child = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        import asrd.output as output
        from asrd.status import write_status
        output._replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)
        Path({str(state)!r}).mkdir()
        write_status(Path({str(state)!r}), {{"running": True}})
        """
    )
    assert subprocess.run([sys.executable, "-c", child], env=CHILD_ENV, timeout=60).returncode == -signal.SIGKILL
    (left,) = temp_files(state)
    assert cleanup_temp_files(state) == [left]
    assert temp_files(state) == []


def test_old_format_temp_files_are_removed_only_when_old(tmp_path: Path) -> None:
    young, old = tmp_path / ".memo.txt.1a2b3c4d.asrd-tmp", tmp_path / ".memo.srt.5e6f7a8b.asrd-tmp"
    young.write_text("maybe an older asrd writing right now")
    old.write_text("left by a crash long ago")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    assert is_temp_file(young.name) and is_temp_file(old.name)
    assert cleanup_temp_files(tmp_path) == [old]
    assert young.exists()


def test_cleanup_as_a_user_spares_the_temp_file_of_another_users_live_process(unprivileged_user) -> None:
    """The user's asrd may not signal another user's process (EPERM): alive all the same, its
    temp file kept. Run as the unprivileged user: root may signal anyone."""
    user = unprivileged_user
    other = os.getpid() if user.switch else 1  # this root test process, or init
    folder = user.home / "inbox"
    folder.mkdir()
    theirs = folder / f".memo.txt.{other}-0a1b2c3d.asrd-tmp"
    theirs.write_text("being written")
    user.own(folder)
    child = textwrap.dedent(
        f"""
        import os, sys
        from asrd.output import cleanup_temp_files
        try:
            os.kill({other}, 0)
            sys.exit("precondition: this user may signal pid {other}")
        except PermissionError:
            pass
        print(cleanup_temp_files({str(folder)!r}))
        """
    )
    proc = subprocess.run([sys.executable, "-c", child], env=user.env(CHILD_ENV), capture_output=True, text=True,
                          check=False, timeout=60, **user.popen_kwargs())
    assert (proc.returncode, proc.stdout.strip()) == (0, "[]"), proc.stderr
    assert theirs.exists()
