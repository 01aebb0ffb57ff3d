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
from asrd.manifest import Manifest
from asrd.status import read_status, write_status
from asrd.transcript import Segment
from tests.test_output import make_transcript


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


def test_a_set_of_outputs_each_fsynced_before_its_rename_then_the_folder_once(tmp_path, fsyncs, monkeypatch):
    """Four formats of one recording: each file's data reaches the disk before its rename, and one
    folder flush after the last rename makes all four renames durable (not one flush per file)."""
    events = []
    real_replace = output._replace
    monkeypatch.setattr(output, "_replace", lambda a, b: (events.append(("rename", len(fsyncs))), real_replace(a, b)))
    source = tmp_path / "memo.m4a"
    source.write_bytes(b"recording")
    transcript = make_transcript([Segment(0.0, 2.0, "hello there")], path=str(source))
    written = output.write_outputs(transcript, source, ["txt", "srt", "vtt", "json"], Manifest(tmp_path / "state"))
    assert len(written) == 4 and all(p.exists() for p in written)
    renames_at = [n for _, n in events]
    assert renames_at == [1, 2, 3, 4]  # before each rename, exactly one more fsync: that file's data
    assert fsyncs[:4] == [("file", p.stat().st_size) for p in written]  # each one whole
    assert fsyncs[4:] == [("dir", os.stat(tmp_path).st_size)]  # one flush of the folder, after the last rename


def test_status_json_is_replaced_whole_without_a_flush(tmp_path, fsyncs):
    """status.json is rewritten at every stage of every job and rebuilt by a live daemon: a full
    flush each time (milliseconds on a Mac) would buy nothing. It is still replaced atomically."""
    state = tmp_path / "state"
    state.mkdir()
    assert write_status(state, {"running": True, "job": {"stage": "vad"}})
    assert write_status(state, {"running": True, "job": {"stage": "asr"}})
    assert read_status(state)["job"] == {"stage": "asr"}
    assert fsyncs == []
    assert [p.name for p in state.iterdir()] == ["status.json"]  # no temp file left behind
    assert stat.S_IMODE((state / "status.json").stat().st_mode) == 0o600


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


def test_a_transaction_leaves_the_wal_in_place_instead_of_checkpointing_it_away(tmp_path):
    """When the last connection to a WAL database closes, sqlite checkpoints and deletes the WAL:
    three more flushes a transaction. The Ledger and the Manifest each hold one idle connection, so
    their per-transaction connections never are the last."""
    state = tmp_path / "state"
    ledger, manifest = Ledger(state), Manifest(state)
    job, _ = ledger.offer(tmp_path / "a.wav", 10, 1, "a" * 64)
    manifest.record(tmp_path / "a.txt", "b" * 64, tmp_path / "a.wav")
    wal = {name: os.stat(state / f"{name}-wal").st_ino for name in (ledger.path.name, manifest.path.name)}
    ledger.claim(job.id)
    manifest.record(tmp_path / "a.srt", "c" * 64, tmp_path / "a.wav")
    assert {name: os.stat(state / f"{name}-wal").st_ino for name in wal} == wal  # the same files, never removed
    assert ledger.get(job.id).state == "running" and manifest.entry(tmp_path / "a.srt") is not None
