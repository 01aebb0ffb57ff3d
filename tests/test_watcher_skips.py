"""What has a recording's name but is not a file asrd may open (a FIFO blocks its reader for good, a
folder link may loop) is never handed on, and is said once in the log, however often it is seen:
through events, at start and at every rescan."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

import asrd.watcher as watcher_mod
from asrd.hashing import sha256_file
from asrd.watcher import InboxWatcher


def _watch_for(watcher: InboxWatcher, seconds: float) -> list:
    """Poll like the daemon loop for a while (several rescans); everything handed on."""
    ready, deadline = [], time.monotonic() + seconds
    while time.monotonic() < deadline:
        ready += watcher.poll()
        watcher.wake().wait(0.05)
    return ready


def test_non_files_are_skipped_once_each_and_never_handed_on(tmp_path: Path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (tmp_path / "folder").mkdir()
    (tmp_path / "folder" / "inside.m4a").write_bytes(b"\x01" * 100)  # never reached through the link
    os.mkfifo(inbox / "before.wav")  # found by the first scan
    watcher = InboxWatcher(inbox, settle_s=0.05, rescan_s=0.3)
    sock = socket.socket(socket.AF_UNIX)
    with capture_logs() as logs:
        watcher.start()
        os.mkfifo(inbox / "pipe.m4a")  # found through an event
        sock.bind(str(inbox / "sock.wav"))
        (inbox / "link.wav").symlink_to(tmp_path / "folder", target_is_directory=True)
        (inbox / "folder.mp3").mkdir()
        (inbox / "null.wav").symlink_to(os.devnull)  # a character device
        ready = _watch_for(watcher, 1.5)  # five rescans
    watcher.stop()
    sock.close()
    skipped = {e["file"]: e["reason"] for e in logs if e["event"] == "file.skipped"}
    assert ready == []
    assert len([e for e in logs if e["event"] == "file.skipped"]) == len(skipped) == 6
    assert skipped[str(inbox / "before.wav")].startswith("a named pipe (FIFO)")
    assert skipped[str(inbox / "pipe.m4a")].startswith("a named pipe (FIFO)")
    assert skipped[str(inbox / "sock.wav")].startswith("a socket")
    assert skipped[str(inbox / "link.wav")].startswith("a link to a folder: not followed")
    assert skipped[str(inbox / "folder.mp3")].startswith("a folder, not a recording")
    assert skipped[str(inbox / "null.wav")].startswith("a device, not a recording")


def test_a_pipe_replaced_by_a_recording_is_taken(tmp_path: Path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    os.mkfifo(inbox / "memo.wav")
    watcher = InboxWatcher(inbox, settle_s=0.05, rescan_s=0.2)
    watcher.start()
    assert _watch_for(watcher, 0.5) == []
    (inbox / "memo.wav").unlink()
    (inbox / "memo.wav").write_bytes(b"\x01" * 100)
    ready = _watch_for(watcher, 1.0)
    watcher.stop()
    assert [r.path for r in ready] == [inbox / "memo.wav"]


def test_hashing_a_fifo_swapped_in_after_the_look_fails_instead_of_blocking(tmp_path: Path):
    """The daemon hashes what the watcher handed on; a FIFO put there in between would block a
    plain open() until a writer came. The guard thread only keeps a regression from hanging the run."""
    pipe = tmp_path / "memo.wav"
    os.mkfifo(pipe)
    outcome: list[BaseException | str] = []

    def hash_it() -> None:
        try:
            outcome.append(sha256_file(pipe))
        except OSError as exc:
            outcome.append(exc)

    worker = threading.Thread(target=hash_it, daemon=True)
    worker.start()
    worker.join(10)
    if worker.is_alive():  # release the blocked open so the thread ends
        os.close(os.open(pipe, os.O_WRONLY | os.O_NONBLOCK))
        pytest.fail("sha256_file blocked on a FIFO")
    assert isinstance(outcome[0], OSError) and "not a regular file" in str(outcome[0])


def test_a_polled_inbox_with_links_to_itself_still_notices_recordings(tmp_path: Path, monkeypatch):
    """Two links to the inbox inside it: a polling snapshot that followed them would never end (2^40
    paths), and watchdog takes the first one in start(), so `asrd run` would hang there."""
    monkeypatch.setattr(watcher_mod, "POLLING_INTERVAL_S", 0.2)
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name in ("a", "b"):
        (inbox / name).symlink_to(inbox, target_is_directory=True)
    watcher = InboxWatcher(inbox, settle_s=0.05, rescan_s=3600, polling="true")
    starter = threading.Thread(target=watcher.start, daemon=True)  # the first snapshot runs in start()
    starter.start()
    starter.join(10)
    if starter.is_alive():
        pytest.fail("start() never returned: the polling snapshot follows the folder links")
    try:
        memo = inbox / "memo.wav"
        memo.write_bytes(b"\x01" * 100)
        ready, deadline = [], time.monotonic() + 10
        while not ready and time.monotonic() < deadline:
            ready = watcher.poll()
            watcher.wake().wait(0.05)
    finally:
        watcher.stop()
    assert [r.path for r in ready] == [memo]


def test_a_folder_link_made_after_start_is_said_at_once_not_at_the_next_rescan(tmp_path: Path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    (tmp_path / "folder").mkdir()
    watcher = InboxWatcher(inbox, settle_s=0.05, rescan_s=3600)
    with capture_logs() as logs:
        watcher.start()
        (inbox / "link.wav").symlink_to(tmp_path / "folder", target_is_directory=True)  # its event: a file's
        deadline = time.monotonic() + 5
        while not any(e["event"] == "file.skipped" for e in logs) and time.monotonic() < deadline:
            watcher.poll()
            watcher.wake().wait(0.05)
    watcher.stop()
    [skipped] = [e for e in logs if e["event"] == "file.skipped"]
    assert skipped["file"] == str(inbox / "link.wav") and skipped["reason"].startswith("a link to a folder")
