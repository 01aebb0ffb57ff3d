"""The promises under every output and error record, checked on the real system calls: data fsynced
before the rename, the rename itself fsynced (its directory), and private from the first moment.
Wrappers count and inspect the real calls; they never replace them."""

from __future__ import annotations

import gc
import os
import sqlite3
import stat
from contextlib import closing

import pytest

import asrd.output as output
from asrd.ledger import Ledger
from asrd.manifest import Manifest
from asrd.status import read_status, write_status
from tests.support.written import recording


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


def test_a_set_of_outputs_is_all_on_the_disk_before_its_first_rename_then_the_folder_flushed_once(
        tmp_path, fsyncs, monkeypatch):
    """Four formats of one recording: every file's data reaches the disk before any of them is
    renamed into place, and one folder flush after the last rename makes all four renames durable."""
    events = []
    real_replace = output._replace
    monkeypatch.setattr(output, "_replace", lambda a, b: (events.append(("rename", len(fsyncs))), real_replace(a, b)))
    source, transcript = recording(tmp_path / "memo.m4a", b"recording")
    written = output.write_outputs(transcript, source, ["txt", "srt", "vtt", "json"], Manifest(tmp_path / "state"))
    assert len(written) == 4 and all(p.exists() for p in written)
    assert [n for _, n in events] == [4, 4, 4, 4]  # all four files' data flushed before the first rename
    assert fsyncs[:4] == [("file", p.stat().st_size) for p in written]  # each one whole
    assert fsyncs[4:] == [("dir", os.stat(tmp_path).st_size)]  # one flush of the folder, after the last rename


def test_on_a_mac_a_set_of_outputs_costs_one_full_flush_and_it_comes_before_every_rename(
        tmp_path, fsyncs, monkeypatch):
    """F_FULLFSYNC empties the drive's whole cache (milliseconds on a Mac): the first files are
    handed to the drive with plain fsyncs and the last one's full flush makes all of them durable,
    before any rename. One full flush a set, not one a file."""
    events: list[tuple[str, int]] = []

    def fcntl_on_a_mac(fd, cmd, *args):
        events.append(("full", os.fstat(fd).st_size))
        return 0

    monkeypatch.setattr(output.fcntl, "F_FULLFSYNC", 51, raising=False)
    monkeypatch.setattr(output.fcntl, "fcntl", fcntl_on_a_mac)
    real_replace = output._replace
    monkeypatch.setattr(output, "_replace", lambda a, b: (events.append(("rename", len(fsyncs))), real_replace(a, b)))
    source, transcript = recording(tmp_path / "memo.m4a", b"recording")
    written = output.write_outputs(transcript, source, ["txt", "srt", "vtt", "json"], Manifest(tmp_path / "state"))
    sizes = [p.stat().st_size for p in written]
    assert fsyncs[:3] == [("file", size) for size in sizes[:3]]  # the first three handed to the drive
    assert events == [("full", sizes[3])] + [("rename", 3)] * 4  # then the one full flush, then the renames
    assert fsyncs[3:] == [("dir", os.stat(tmp_path).st_size)]


def test_on_a_mac_the_manifests_claim_reaches_the_disk_with_the_sets_one_full_flush(tmp_path, monkeypatch):
    """On a Mac sqlite's commit is a plain fsync (into the drive's cache). The manifest's claim on
    the names (intend) is committed before the set's one F_FULLFSYNC, which empties that whole cache,
    so after a power cut no output can be on the disk without asrd knowing it as its own (a re-run
    would otherwise write a second set beside it). The commit after the renames needs no flush: the
    claim already marks the files as asrd's."""
    events: list[str] = []
    monkeypatch.setattr(output.fcntl, "F_FULLFSYNC", 51, raising=False)
    monkeypatch.setattr(output.fcntl, "fcntl", lambda fd, cmd, *args: events.append("full flush") or 0)
    real_replace = output._replace
    monkeypatch.setattr(output, "_replace", lambda a, b: (events.append("rename"), real_replace(a, b)))
    manifest = Manifest(tmp_path / "state")
    for name in ("intend", "commit"):
        method = getattr(manifest, name)
        monkeypatch.setattr(manifest, name, lambda *a, _m=method, _n=name: (_m(*a), events.append(_n))[0])
    source, transcript = recording(tmp_path / "memo.m4a", b"recording")
    output.write_outputs(transcript, source, ["txt", "srt"], manifest)
    assert events == ["intend", "full flush", "rename", "rename", "commit"]


def test_a_set_that_cannot_be_written_whole_leaves_no_temp_file_and_no_output(tmp_path, monkeypatch):
    """The disk fills up at the third file of the set: the two temps already written go, nothing
    was renamed into place, and the manifest keeps no claim on the names."""
    real_fsync = os.fsync
    calls = []

    def full_at_the_third(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 3:
            raise OSError(28, "No space left on device")
        real_fsync(fd)

    monkeypatch.setattr(output.os, "fsync", full_at_the_third)
    source, transcript = recording(tmp_path / "memo.m4a", b"recording")
    manifest = Manifest(tmp_path / "state")
    with pytest.raises(OSError, match="No space left"):
        output.write_outputs(transcript, source, ["txt", "srt", "vtt", "json"], manifest)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["memo.m4a", "state"]
    assert all(manifest.entry(tmp_path / f"memo.{fmt}") is None for fmt in ("txt", "srt", "vtt", "json"))


def test_the_transcript_store_is_a_cache_written_whole_without_a_flush(tmp_path, fsyncs):
    """Lost in a power cut, a stored transcript costs a recompute at most (the outputs and the
    ledger are what is durable), so it buys no full flush of its own; it is still replaced whole."""
    from asrd.transcript_store import TranscriptStore

    _source, transcript = recording(tmp_path / "memo.m4a", b"recording")
    store = TranscriptStore(tmp_path / "state")
    store.save(transcript)
    assert fsyncs == []
    assert store.load(transcript.source.sha256).to_dict() == transcript.to_dict()
    assert [p.suffix for p in store.folder.iterdir()] == [".json"]  # no temp file left behind


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


def test_a_temp_name_already_taken_is_passed_over_for_a_fresh_one(tmp_path, monkeypatch):
    """Another writer's temp file (or a left-over) under the name drawn first: asrd draws again."""
    draws = iter(["0a1b2c3d", "0a1b2c3d", "ffffffff"])
    monkeypatch.setattr(output.secrets, "token_hex", lambda _n: next(draws))
    taken = tmp_path / f".memo.txt.{os.getpid()}-0a1b2c3d{output.TEMP_SUFFIX}"
    output.write_atomic(tmp_path / "first.txt", "x")  # uses the first draw; its temp is renamed away
    taken.write_text("someone else's")
    output.write_atomic(tmp_path / "memo.txt", "mine\n")
    assert (tmp_path / "memo.txt").read_text() == "mine\n" and taken.read_text() == "someone else's"


def test_on_a_mac_the_data_is_flushed_to_the_drive_and_plain_fsync_is_the_fallback(tmp_path, fsyncs, monkeypatch):
    """macOS's fsync leaves data in the drive's cache; F_FULLFSYNC flushes it. A filesystem that
    refuses it (SMB) gets a plain fsync."""
    full = []

    def fcntl_on_a_mac(fd, cmd, *args):
        full.append(os.fstat(fd).st_size)
        if refuse:
            raise OSError(45, "Operation not supported")
        return 0

    monkeypatch.setattr(output.fcntl, "F_FULLFSYNC", 51, raising=False)
    monkeypatch.setattr(output.fcntl, "fcntl", fcntl_on_a_mac)
    refuse = False
    output.write_atomic(tmp_path / "memo.txt", "hello\n")
    assert full == [len("hello\n")] and [kind for kind, _ in fsyncs] == ["dir"]  # the data by F_FULLFSYNC
    refuse = True
    output.write_atomic(tmp_path / "talk.txt", "on a share\n")
    assert full[1:] == [len("on a share\n")] and [kind for kind, _ in fsyncs[1:]] == ["file", "dir"]


def test_writing_outputs_again_and_again_leaves_no_descriptor_open(tmp_path):
    source, transcript = recording(tmp_path / "memo.m4a", b"recording")
    manifest = Manifest(tmp_path / "state")
    output.write_outputs(transcript, source, ["txt", "srt"], manifest)  # first use opens what stays open
    gc.collect()  # earlier tests' ledgers and manifests close their held connections
    before = len(os.listdir("/proc/self/fd"))
    for _ in range(20):
        output.write_outputs(transcript, source, ["txt", "srt", "vtt", "json"], manifest)
    gc.collect()
    assert len(os.listdir("/proc/self/fd")) == before


def test_cleanup_of_a_folder_that_is_not_there_finds_nothing(tmp_path):
    assert output.cleanup_temp_files(tmp_path / "never-made") == []


def test_a_link_named_like_a_left_over_temp_file_is_not_asrds_and_stays(tmp_path):
    target = tmp_path / "notes.txt"
    target.write_text("mine")
    link = tmp_path / f".memo.txt.0a1b2c3d{output.TEMP_SUFFIX}"
    link.symlink_to(target)
    old = os.stat(target).st_mtime - 7200
    os.utime(target, (old, old))
    os.utime(link, (old, old), follow_symlinks=False)
    assert output.cleanup_temp_files(tmp_path) == [] and link.is_symlink() and target.read_text() == "mine"


def test_outputs_into_a_folder_of_their_own_made_private_or_used_as_it_is(tmp_path):
    """`asrd transcribe --out-dir`: a folder asrd makes is 0700 under a normal umask; one that is
    already there is written into."""
    source, transcript = recording(tmp_path / "memo.m4a", b"recording")
    manifest = Manifest(tmp_path / "state")
    old = os.umask(0o022)
    try:
        made = tmp_path / "made" / "transcripts"
        assert output.write_outputs(transcript, source, ["txt"], manifest, out_dir=made) == [made / "memo.txt"]
        assert stat.S_IMODE(made.stat().st_mode) == 0o700
        there = tmp_path / "there"
        there.mkdir()
        assert output.write_outputs(transcript, source, ["txt"], manifest, out_dir=there) == [there / "memo.txt"]
    finally:
        os.umask(old)


def test_names_taken_again_and_again_while_writing_give_up_after_three_tries_with_a_reason(tmp_path, monkeypatch):
    """Someone keeps putting files under the names asrd chose: three fresh choices, then an error
    that says so (the job fails with it) instead of looping."""
    tries = []
    monkeypatch.setattr(output, "_write_set", lambda *args: tries.append(args[1]))  # every name taken
    source, transcript = recording(tmp_path / "memo.m4a", b"recording")
    with pytest.raises(RuntimeError, match="kept being taken"):
        output.write_outputs(transcript, source, ["txt"], Manifest(tmp_path / "state"))
    assert len(tries) == 3
