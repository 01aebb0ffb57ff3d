"""iCloud dataless files (evicted: path and size kept, content in the cloud, SF_DATALESS in st_flags)
are never read while dataless: the watcher says `file.dataless` once and waits, the daemon does not
hash one or send it to the engine, and `asrd doctor` warns with the fix. Linux stat results have no
st_flags, so the tests patch os.stat to add them."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import asrd.daemon as daemon_mod
from asrd.config import load_config
from asrd.daemon import MISSING, Daemon
from asrd.doctor import check_dataless
from asrd.hashing import sha256_file
from asrd.macos.dataless import SF_DATALESS, is_dataless
from asrd.watcher import InboxWatcher, Ready
from tests.support.configs import write_config
from tests.support.watching import wait_ready


class _WithFlags:
    """A real stat result plus st_flags, as macOS reports them."""

    def __init__(self, st: os.stat_result, flags: int):
        self._st, self.st_flags = st, flags

    def __getattr__(self, name: str):
        return getattr(self._st, name)


@pytest.fixture
def evicted(monkeypatch):
    """The set of paths whose stat says dataless; add and remove paths to evict and download them."""
    paths: set[Path] = set()
    real_stat = os.stat

    def stat(path, *args, **kwargs):
        st = real_stat(path, *args, **kwargs)
        return _WithFlags(st, SF_DATALESS) if isinstance(path, (str, Path)) and Path(path) in paths else st

    monkeypatch.setattr(os, "stat", stat)
    return paths


class Clock:
    t = 1000.0

    def __call__(self) -> float:
        return self.t


def _watching_an_evicted_memo(tmp_path: Path, evicted: set[Path], rescan_s: float):
    """An inbox holding memo.m4a, evicted, and a scans-only watcher on a fake clock (not started)."""
    inbox = tmp_path / "inbox"
    memo = inbox / "memo.m4a"
    memo.parent.mkdir()
    memo.write_bytes(b"\x01" * 1000)
    evicted.add(memo)
    clock = Clock()
    return inbox, memo, clock, InboxWatcher(inbox, settle_s=1.0, rescan_s=rescan_s, clock=clock, observe=False)


def test_is_dataless_reads_only_the_flag():
    st = os.stat(__file__)
    assert not is_dataless(st) and is_dataless(_WithFlags(st, SF_DATALESS | 0x20))
    assert not is_dataless(_WithFlags(st, 0x20))  # UF_ARCHIVE and friends mean nothing here


def test_the_watcher_waits_for_a_dataless_file_says_so_once_and_hands_it_on_once_downloaded(tmp_path, evicted):
    inbox, memo, clock, watcher = _watching_an_evicted_memo(tmp_path, evicted, rescan_s=5.0)
    talk, handed = inbox / "talk.m4a", []
    with capture_logs() as logs:
        watcher.start()
        for second in range(20):  # 20 s: rescans and polls, well past the settle time
            if second == 2:
                talk.write_bytes(b"\x02" * 1000)  # found after the evicted one: it must not wait behind it
            handed += watcher.poll()
            clock.t += 1.0
        assert [r.path for r in handed] == [talk]
        assert watcher.waiting() == []  # not "still being written"
        evicted.discard(memo)  # downloaded
        ready = []
        for _ in range(3):
            ready += watcher.poll()
            clock.t += 1.0
    watcher.stop()
    dataless = [e for e in logs if e["event"] == "file.dataless"]
    assert len(dataless) == 1 and dataless[0]["file"] == str(memo) and "brctl download" in dataless[0]["fix"]
    assert [r.path for r in ready] == [memo]


def test_a_file_evicted_again_before_it_was_taken_is_said_again(tmp_path, evicted):
    """Downloaded, then evicted once more (storage optimisation) before it held still: the log must say
    that it waits again, not stay silent because it said so once before."""
    _, memo, clock, watcher = _watching_an_evicted_memo(tmp_path, evicted, rescan_s=60.0)
    with capture_logs() as logs:
        watcher.start()
        assert watcher.poll() == []
        evicted.discard(memo)  # downloaded: taken once it held still for the settle time
        clock.t += 0.5
        assert watcher.poll() == []
        evicted.add(memo)  # evicted again before that
        clock.t += 0.5
        assert watcher.poll() == []
        evicted.discard(memo)
        clock.t += 0.5
        assert watcher.poll() == []
        clock.t += 1.0
        ready = watcher.poll()
    watcher.stop()
    assert [e["event"] for e in logs if e["event"] == "file.dataless"] == ["file.dataless"] * 2
    assert [r.path for r in ready] == [memo]


def test_the_daemon_neither_hashes_nor_runs_a_dataless_recording(tmp_path, tiny_models, evicted, monkeypatch):
    memo = tmp_path / "inbox" / "memo.wav"
    memo.parent.mkdir()
    memo.write_bytes(b"\x02" * 4000)
    daemon = Daemon(load_config(write_config(tmp_path)))
    st = memo.stat()
    ready = Ready(memo, st.st_size, st.st_mtime_ns)
    evicted.add(memo)

    def no_reading(path):
        raise AssertionError(f"read {path} while it was dataless")

    monkeypatch.setattr(daemon_mod, "sha256_file", no_reading)
    daemon._offer(ready)  # evicted between the watcher's look and the hash
    assert daemon.ledger.by_path(memo) is None
    evicted.discard(memo)
    monkeypatch.setattr(daemon_mod, "sha256_file", sha256_file)
    daemon._offer(ready)
    job = daemon.ledger.by_path(memo)
    evicted.add(memo)  # evicted while queued: the job waits (no attempt), nothing reaches the engine
    monkeypatch.setattr(daemon_mod, "sha256_file", no_reading)
    with capture_logs() as logs:
        assert daemon._locate(job, thorough=True) == MISSING
    assert [e["reason"] for e in logs if e["event"] == "job.waiting"] == [
        f"{memo} is in iCloud only (not downloaded); it waits until it is"]
    assert daemon.ledger.get(job.id).attempts == 0


def test_doctor_warns_about_dataless_recordings_with_the_fix(tmp_path, tiny_models, evicted):
    config = load_config(write_config(tmp_path))
    inbox = config.inbox
    inbox.mkdir()
    memos = [inbox / "a.m4a", inbox / "sub" / "b.wav"]
    for memo in memos:
        memo.parent.mkdir(exist_ok=True)
        memo.write_bytes(b"\x03" * 100)
    (inbox / "notes.txt").write_text("not a recording")
    assert check_dataless(config).status == "ok"
    evicted.update([*memos, inbox / "notes.txt"])
    check = check_dataless(config)
    assert check.status == "warn" and check.detail.startswith("2 dataless files waiting in the inbox")
    assert "Finder" in check.fix and f"brctl download {inbox / 'a.m4a'}" in check.fix


def test_a_file_evicted_between_the_watchers_look_and_the_hash_is_handed_on_again_once_downloaded(
        tmp_path, tiny_models, evicted):
    memo = tmp_path / "inbox" / "memo.wav"
    memo.parent.mkdir()
    memo.write_bytes(b"\x02" * 4000)
    daemon = Daemon(load_config(write_config(tmp_path, watch={"settle_s": 0.1, "rescan_s": 1})))
    daemon.watcher.start()
    try:
        [ready] = wait_ready(daemon.watcher, timeout=10.0)
        evicted.add(memo)  # evicted just after the watcher's look
        daemon._offer(ready)
        assert daemon.ledger.by_path(memo) is None  # not read
        evicted.discard(memo)  # downloaded: the same size and mtime as before
        assert [r.path for r in wait_ready(daemon.watcher, timeout=10.0)] == [memo]  # at the next rescan, not at a restart
    finally:
        daemon.watcher.stop()

