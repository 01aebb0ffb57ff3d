"""The promises under every output and error record, checked on the real system calls: data fsynced
before the rename, the rename itself fsynced (its directory), and private from the first moment.
Wrappers count and inspect the real calls; they never replace them."""

from __future__ import annotations

import os
import sqlite3
import stat
from contextlib import closing

import pytest

import asrd.output as output
from asrd.ledger import Ledger


@pytest.fixture
def fsyncs(monkeypatch):
    """Every os.fsync: (the fd's file type, the file's size then), calling the real fsync."""
    seen: list[tuple[str, int]] = []
    real = os.fsync

    def counting(fd: int) -> None:
        st = os.fstat(fd)
        seen.append(("dir" if stat.S_ISDIR(st.st_mode) else "file", st.st_size))
        real(fd)

    monkeypatch.setattr(output.os, "fsync", counting)
    return seen


def test_an_output_is_fsynced_before_its_rename_and_the_rename_is_fsynced(tmp_path, fsyncs, monkeypatch):
    renames = []
    real_replace = output._replace
    monkeypatch.setattr(output, "_replace", lambda a, b: (renames.append(len(fsyncs)), real_replace(a, b)))
    output.write_atomic(tmp_path / "memo.txt", "hello world\n")
    assert (tmp_path / "memo.txt").read_text() == "hello world\n"
    [fsyncs_before_rename] = renames
    assert fsyncs[:fsyncs_before_rename] == [("file", len("hello world\n"))]  # the data, full, then rename
    assert fsyncs[fsyncs_before_rename:] == [("dir", os.stat(tmp_path).st_size)]  # then the directory


def test_an_output_is_private_from_its_first_moment_whatever_the_umask(tmp_path, monkeypatch):
    modes = []
    real_fchmod = os.fchmod

    def inspecting(fd: int, mode: int) -> None:
        modes.append(stat.S_IMODE(os.fstat(fd).st_mode))  # what the file was before asrd made it exact
        real_fchmod(fd, mode)

    monkeypatch.setattr(output.os, "fchmod", inspecting)
    for umask in (0o022, 0o277):  # a normal one, and one that takes the owner's own write bit
        old = os.umask(umask)
        try:
            target = tmp_path / f"memo-{umask:o}.txt"
            output.write_atomic(target, "private\n")
        finally:
            os.umask(old)
        assert stat.S_IMODE(target.stat().st_mode) == 0o600
    assert all(mode & 0o077 == 0 for mode in modes) and modes  # never readable by others, even briefly


def test_the_ledger_refuses_a_second_job_for_the_same_content_at_the_database_level(tmp_path):
    """Exactly once, second line of defence: even a writer that skips offer() cannot add a twin."""
    ledger = Ledger(tmp_path / "state")
    ledger.offer(tmp_path / "a.wav", 10, 1, "a" * 64)
    with closing(sqlite3.connect(ledger.path)) as conn, pytest.raises(sqlite3.IntegrityError):
        conn.execute("INSERT INTO jobs (path, size, mtime_ns, sha256, state, queued_at)"
                     " VALUES ('/x/b.wav', 10, 2, ?, 'queued', 0)", ("a" * 64,))
