"""The inbox watcher: backlog and new files found, only once completely written, ignore rules, and
surviving lost events and a vanishing inbox. Real files, a real watchdog observer where events
matter, a fake clock where timing matters."""

from __future__ import annotations

import os
import shutil
import stat
import threading
import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs
from watchdog.events import (
    DirCreatedEvent,
    DirDeletedEvent,
    DirModifiedEvent,
    DirMovedEvent,
    FileClosedEvent,
    FileClosedNoWriteEvent,
    FileCreatedEvent,
    FileDeletedEvent,
    FileModifiedEvent,
    FileMovedEvent,
    FileOpenedEvent,
)

import asrd.watcher as watcher_mod
from asrd.watcher import InboxWatcher, Ready, is_candidate
from tests.support.watching import wait_ready

SETTLE = 0.25  # exact in binary, so fake-clock sums land exactly on it


class FakeClock:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, dt: float) -> None:
        self.t += dt


@pytest.fixture
def inbox(tmp_path: Path) -> Path:
    return tmp_path / "Transcribe" / "inbox"


@pytest.fixture
def watchers():
    """Makes watchers and stops them all at the end, even when a test fails."""
    made: list[InboxWatcher] = []

    def make(inbox: Path, **kwargs) -> InboxWatcher:
        w = InboxWatcher(inbox, **{"settle_s": SETTLE, **kwargs})
        made.append(w)
        w.start()
        return w

    yield make
    for w in made:
        w.stop()


def write(path: Path, data: bytes = b"\x01" * 1000, mode: str = "wb") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, mode) as f:
        f.write(data)
    return path


# --------------------------------------------------------------------------- finding files


def test_backlog_found_at_start_including_subfolders_and_odd_names(inbox, watchers):
    names = ["a.m4a", "sub dir/Ünïcödé memo 録音.wav", "deep/er/MEMO.M4A"]
    for name in names:
        write(inbox / name)
    write(inbox / "notes.txt")
    write(inbox / ".hidden.m4a")
    clock = FakeClock()
    w = watchers(inbox, clock=clock, observe=False)
    assert w.poll() == []  # first sight: not yet known to hold still
    assert w.waiting() == sorted(inbox / n for n in names)
    clock.advance(SETTLE)
    ready = w.poll()
    assert sorted(r.path for r in ready) == sorted(inbox / n for n in names)
    assert all(r.size == 1000 for r in ready)
    assert w.waiting() == []
    assert w.poll() == []
    clock.advance(60)  # a rescan sees them unchanged: not handed on again
    assert w.poll() == [] and w.waiting() == []


def test_inbox_created_if_missing(inbox, watchers):
    assert not inbox.exists()
    w = watchers(inbox)
    assert inbox.is_dir() and w.inbox_available


def test_new_file_found_through_an_event(inbox, watchers):
    w = watchers(inbox, rescan_s=3600)  # only an event can find it
    assert w.poll() == []
    path = write(inbox / "new.m4a")
    assert w.wake().wait(5), "the observer should hint"
    ready = wait_ready(w)
    assert ready == [Ready(path, 1000, path.stat().st_mtime_ns)]


def test_new_file_found_by_rescan_when_events_are_lost(inbox, watchers):
    clock = FakeClock()
    w = watchers(inbox, clock=clock, observe=False, rescan_s=60)
    assert w.poll() == []
    path = write(inbox / "missed.wav")
    clock.advance(30)
    assert w.poll() == [] and w.waiting() == []  # no event, no rescan yet
    clock.advance(30)
    assert w.poll() == [] and w.waiting() == [path]
    clock.advance(SETTLE)
    assert [r.path for r in w.poll()] == [path]


def test_new_file_in_a_subfolder_found_through_an_event(inbox, watchers):
    write(inbox / "lectures" / "old.m4a")
    w = watchers(inbox, rescan_s=3600)  # only an event can find the new one: the watch covers subfolders
    assert [r.path for r in wait_ready(w)] == [inbox / "lectures" / "old.m4a"]
    path = write(inbox / "lectures" / "week2.m4a")
    assert [r.path for r in wait_ready(w)] == [path]


def test_a_subfolder_deleted_is_not_the_inbox_lost(inbox, watchers):
    write(inbox / "done" / "old.m4a")
    w = watchers(inbox, rescan_s=3600)
    w.poll()
    with capture_logs() as logs:
        shutil.rmtree(inbox / "done")
        path = write(inbox / "new.m4a")  # its events come after the deletion's
        assert [r.path for r in wait_ready(w)] == [path] and w.inbox_available
    assert [e["event"] for e in logs if e["event"].startswith("inbox.")] == []


def test_file_renamed_into_the_inbox_is_found(inbox, tmp_path, watchers):
    w = watchers(inbox, rescan_s=3600)
    w.poll()
    src = write(tmp_path / "elsewhere" / "Recording.m4a")
    os.rename(src, inbox / "Recording.m4a")
    assert [r.path for r in wait_ready(w)] == [inbox / "Recording.m4a"]


def test_folder_moved_into_the_inbox_is_scanned(inbox, tmp_path, watchers):
    w = watchers(inbox, rescan_s=3600)
    w.poll()
    folder = tmp_path / "trip"
    write(folder / "day1.m4a")
    write(folder / "day2.m4a")
    os.rename(folder, inbox / "trip")
    found: set[Path] = set()
    deadline = time.monotonic() + 5
    while len(found) < 2 and time.monotonic() < deadline:
        found |= {r.path for r in wait_ready(w, timeout=deadline - time.monotonic())}
    assert found == {inbox / "trip" / "day1.m4a", inbox / "trip" / "day2.m4a"}


# --------------------------------------------------------------------------- the stability gate


def test_file_written_in_chunks_with_short_pauses_is_ready_after_the_last_write(inbox, watchers):
    clock = FakeClock()
    path = write(inbox / "copying.m4a", b"x" * 100)  # before start: the backlog scan finds it
    w = watchers(inbox, clock=clock, observe=False)
    with capture_logs() as logs:
        assert w.poll() == []
        for _ in range(4):
            clock.advance(SETTLE / 2)  # shorter than settle_s
            write(path, b"x" * 100, "ab")
            assert w.poll() == [] and w.waiting() == [path]
        clock.advance(SETTLE - 0.0625)
        assert w.poll() == []
        clock.advance(0.0625)
        assert w.poll() == [Ready(path, 500, path.stat().st_mtime_ns)]
    events = [e["event"] for e in logs]
    assert events.count("file.seen") == 1
    assert events.count("file.waiting") == 1  # once while it grows, not every poll


def test_long_pause_may_hand_a_file_on_early_and_it_is_handed_on_again_when_it_grows(inbox, watchers):
    """Why the daemon re-checks the source before writing: a writer pausing longer than settle_s
    looks finished. When it grows again, the watcher hands it on again with the new size."""
    clock = FakeClock()
    path = write(inbox / "live.m4a", b"x" * 100)
    w = watchers(inbox, clock=clock, observe=False, rescan_s=10)
    w.poll()
    clock.advance(SETTLE + 0.125)  # the writer pauses longer than settle_s
    assert [r.size for r in w.poll()] == [100]  # early
    write(path, b"y" * 100, "ab")
    clock.advance(10)  # found again by the rescan (or an event)
    assert w.poll() == [] and w.waiting() == [path]
    clock.advance(SETTLE)
    assert w.poll() == [Ready(path, 200, path.stat().st_mtime_ns)]


def test_grown_file_is_handed_on_again_through_an_event(inbox, watchers):
    w = watchers(inbox, rescan_s=3600)
    path = write(inbox / "a.m4a", b"x" * 100)
    assert [r.size for r in wait_ready(w)] == [100]
    write(path, b"y" * 100, "ab")
    assert [r.size for r in wait_ready(w)] == [200]


def test_vanished_candidate_is_dropped(inbox, watchers):
    clock = FakeClock()
    path = write(inbox / "gone.m4a")
    w = watchers(inbox, clock=clock, observe=False)
    w.poll()
    path.unlink()
    clock.advance(SETTLE)
    assert w.poll() == [] and w.waiting() == []


def test_zero_byte_file_waits_the_readmes_30_s_then_is_handed_on(inbox, watchers):
    clock = FakeClock()
    empty = write(inbox / "empty.m4a", b"")
    w = watchers(inbox, clock=clock, observe=False)  # the default wait, as the README states it
    w.poll()
    clock.advance(SETTLE)
    assert w.poll() == [] and w.waiting() == [empty]  # a copy often starts at 0 bytes
    clock.advance(29.75 - SETTLE)
    assert w.poll() == [] and w.waiting() == [empty]
    clock.advance(0.25)
    assert w.poll() == [Ready(empty, 0, empty.stat().st_mtime_ns)]


def test_empty_file_that_starts_filling_is_treated_like_any_other(inbox, watchers):
    clock = FakeClock()
    path = write(inbox / "copy.m4a", b"")
    w = watchers(inbox, clock=clock, observe=False)
    w.poll()
    clock.advance(SETTLE)
    write(path, b"x" * 10, "ab")
    assert w.poll() == []
    clock.advance(SETTLE)
    assert [r.size for r in w.poll()] == [10]


def test_next_poll_in_says_when_a_candidate_could_settle(inbox, watchers):
    clock = FakeClock()
    w = watchers(inbox, clock=clock, observe=False, rescan_s=60)
    w.poll()
    assert w.next_poll_in() == pytest.approx(60)
    write(inbox / "a.m4a")
    clock.advance(60)
    w.poll()
    assert w.next_poll_in() == pytest.approx(SETTLE)


# --------------------------------------------------------------------------- ignore rules


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Recording.m4a", True),
        ("MEMO.M4A", True),
        ("interview.MOV", True),
        ("sub/dir/take 2.wav", True),
        ("failed/again.m4a", True),  # not a special folder: asrd never creates one
        ("日本語 メモ.flac", True),
        (".DS_Store", False),
        ("._Recording.m4a", False),  # AppleDouble
        (".hidden.m4a", False),
        (".dotdir/x.m4a", False),
        (".asrd/x.m4a", False),
        ("a/.git/x.m4a", False),
        ("x.m4a.part", False),
        ("x.crdownload", False),
        ("x.m4a.crdownload", False),
        ("x.m4a.download", False),
        ("x.m4a.download/x.m4a", False),  # Safari's download bundle
        ("x.m4a.tmp", False),
        ("x.m4a.partial", False),
        (".x.m4a.icloud", False),  # iCloud placeholder
        ("x.m4a.ICLOUD", False),
        (".x.m4a.1a2b3c4d.asrd-tmp", False),
        ("x.asrd-error.json", False),
        ("x.m4a.asrd-error.json", False),
        ("x.txt", False),
        ("x.srt", False),
        ("x.vtt", False),
        ("x.json", False),
        ("x.pdf", False),
        ("noextension", False),
    ],
)
def test_ignore_rules(tmp_path, name, expected):
    inbox = tmp_path / "inbox"
    assert is_candidate(inbox / name, inbox) is expected


def test_paths_outside_the_inbox_and_the_inbox_itself_are_not_candidates(tmp_path):
    inbox = tmp_path / "inbox"
    assert not is_candidate(tmp_path / "other" / "x.m4a", inbox)
    assert not is_candidate(inbox, inbox)


def test_ignored_files_are_never_reported(inbox, watchers):
    write(inbox / ".x.m4a.icloud")
    write(inbox / "x.m4a.part")
    write(inbox / "x.m4a.download" / "x.m4a")
    write(inbox / ".asrd" / "y.m4a")
    write(inbox / "x.txt")
    clock = FakeClock()
    w = watchers(inbox, clock=clock, observe=False)
    w.poll()
    clock.advance(60)
    assert w.poll() == [] and w.waiting() == []


# --------------------------------------------------------------------------- the inbox going away


def test_inbox_deleted_and_recreated_resumes_and_finds_new_files(inbox, watchers):
    w = watchers(inbox, rescan_s=3600)
    assert w.poll() == []
    shutil.rmtree(inbox)
    with capture_logs() as logs:
        assert w.poll() == []
        assert not w.inbox_available
        assert w.poll() == []
        inbox.mkdir()
        first = write(inbox / "first.m4a")
        assert [r.path for r in wait_ready(w)] == [first]  # the resume rescans
    assert w.inbox_available
    assert [e["event"] for e in logs if e["event"].startswith("inbox.")] == ["inbox.missing", "inbox.back"]
    second = write(inbox / "second.m4a")  # the observer was restarted on the new folder
    assert [r.path for r in wait_ready(w)] == [second]


def test_an_inbox_deleted_wakes_the_loop_at_once(inbox, watchers):
    w = watchers(inbox, rescan_s=3600)
    assert w.poll() == []
    with capture_logs() as logs:
        shutil.rmtree(inbox)
        assert w.wake().wait(5), "the loop should not learn of it only at the next rescan"
        assert w.poll() == [] and not w.inbox_available
    assert [e["event"] for e in logs if e["event"].startswith("inbox.")] == ["inbox.missing"]


def test_inbox_replaced_between_polls_is_noticed(inbox, watchers):
    w = watchers(inbox, rescan_s=3600)
    assert w.poll() == []
    shutil.rmtree(inbox)
    inbox.mkdir()
    path = write(inbox / "after.m4a")
    assert [r.path for r in wait_ready(w)] == [path]
    later = write(inbox / "later.m4a")
    assert [r.path for r in wait_ready(w)] == [later]


def test_inbox_renamed_away_and_made_anew_is_watched_anew(inbox, watchers):
    """Finder's rename sends no delete: the old watch follows the folder to its new name."""
    w = watchers(inbox, rescan_s=3600)
    assert w.poll() == []
    inbox.rename(inbox.parent / "inbox-old")
    inbox.mkdir()
    path = write(inbox / "after.m4a")
    assert [r.path for r in wait_ready(w)] == [path]
    later = write(inbox / "later.m4a")  # found through an event on the new folder: the rescan is an hour away
    assert [r.path for r in wait_ready(w)] == [later]


def test_a_backlog_found_at_start_is_looked_at_by_the_first_poll_at_once(inbox, watchers):
    write(inbox / "old.m4a")
    w = watchers(inbox, rescan_s=3600)
    assert w.next_poll_in() == 0.0  # not a settle time, not a rescan away: it has not even been statted


def test_events_spelled_through_the_inbox_resolved_path_are_hints(tmp_path, watchers):
    """FSEvents reports /private/var/... for an inbox under /var (a link): such a path is the inbox's."""
    (tmp_path / "real" / "inbox").mkdir(parents=True)
    (tmp_path / "link").symlink_to(tmp_path / "real", target_is_directory=True)
    inbox = tmp_path / "link" / "inbox"
    w = watchers(inbox, rescan_s=3600)
    assert w._reroot(str(tmp_path / "real" / "inbox" / "a" / "memo.m4a")) == inbox / "a" / "memo.m4a"
    assert w._reroot(str(inbox / "memo.m4a")) == inbox / "memo.m4a"
    assert w._reroot(str(tmp_path / "real" / "elsewhere.m4a")) is None


def test_a_poll_clears_the_wake_up_so_the_loop_sleeps_again(inbox, watchers):
    w = watchers(inbox, clock=FakeClock(), observe=False)
    w._hint(str(write(inbox / "new.m4a")), False)  # as the observer does for each event
    assert w.wake().is_set()
    w.poll()
    assert not w.wake().is_set()


def test_only_arrivals_and_writes_are_hints_never_reads_or_deletes(inbox):
    """asrd reads each recording (hash, decode) and deletes its own temp files: those events must not
    wake its loop, or every job would wake it again."""
    hints: list[tuple[str, bool]] = []
    handler = watcher_mod._HintHandler(lambda path, is_dir: hints.append((path, is_dir)), lambda path: None)
    memo, folder = str(inbox / "memo.m4a"), str(inbox / "trip")
    for event in [FileOpenedEvent(memo), FileClosedNoWriteEvent(memo), FileDeletedEvent(memo),
                  DirModifiedEvent(folder), DirDeletedEvent(folder)]:
        handler.on_any_event(event)
    assert hints == []
    for event in [FileCreatedEvent(memo), FileModifiedEvent(memo), FileClosedEvent(memo),
                  FileMovedEvent("/elsewhere/memo.m4a", memo), DirCreatedEvent(folder),
                  DirMovedEvent("/elsewhere/trip", folder)]:
        handler.on_any_event(event)
    assert hints == [(memo, False)] * 4 + [(folder, True)] * 2


def test_inbox_that_cannot_be_created_is_waited_for(inbox, watchers, monkeypatch):
    monkeypatch.setattr(watcher_mod, "_creatable", lambda path: False)
    clock = FakeClock()
    with capture_logs() as logs:
        w = watchers(inbox, clock=clock, observe=False)
        assert not inbox.exists() and not w.inbox_available
        assert w.poll() == []
        path = write(inbox / "a.m4a")
        assert w.poll() == [] and w.inbox_available and w.waiting() == [path]
    assert [e["event"] for e in logs if e["event"].startswith("inbox.")] == ["inbox.missing", "inbox.back"]
    clock.advance(SETTLE)
    assert [r.path for r in w.poll()] == [path]


def test_a_missing_inbox_is_looked_for_again_within_seconds_not_at_the_next_rescan(inbox, watchers, monkeypatch):
    monkeypatch.setattr(watcher_mod, "_creatable", lambda path: False)
    w = watchers(inbox, clock=FakeClock(), observe=False, rescan_s=3600)
    assert not w.inbox_available and w.next_poll_in() == 2.0  # the README: "tries again every 2 s"
    w.rescan_s = 1.0
    assert w.next_poll_in() == 1.0  # never later than a rescan would be


def test_an_inbox_asrd_creates_is_private_under_a_normal_umask(inbox, watchers):
    old = os.umask(0o022)
    try:
        with capture_logs() as logs:
            w = watchers(inbox, clock=FakeClock(), observe=False)
    finally:
        os.umask(old)
    assert w.inbox_available and stat.S_IMODE(inbox.stat().st_mode) == 0o700
    assert [e["event"] for e in logs if e["event"].startswith("inbox.")] == ["inbox.watching"]


def test_an_inbox_that_is_there_is_not_reported_missing(inbox, watchers):
    inbox.mkdir(parents=True)
    with capture_logs() as logs:
        w = watchers(inbox, clock=FakeClock(), observe=False)
        assert w.poll() == []
    assert w.inbox_available and [e["event"] for e in logs if e["event"].startswith("inbox.")] == ["inbox.watching"]


def test_a_watch_that_died_is_started_again_at_the_next_poll(inbox, watchers):
    """inotify and FSEvents end a watch by themselves (its folder deleted, replaced, unmounted): the
    next poll sees the observer's emitter gone and starts a new one, so events come back at once."""
    w = watchers(inbox, rescan_s=3600)
    assert w.poll() == []
    for emitter in list(w._observer.emitters):
        emitter.stop()
        emitter.join(5)
    assert w.poll() == []
    path = write(inbox / "after.m4a")
    assert [r.path for r in wait_ready(w)] == [path]


def test_a_broken_link_in_the_inbox_does_not_make_it_unreadable(inbox, watchers):
    """The readability probe looks at an entry without following it: a link to a deleted file (a
    moved original) is no reason to stop watching."""
    inbox.mkdir(parents=True)
    (inbox / "gone.m4a").symlink_to(inbox.parent / "deleted-original.m4a")
    w = watchers(inbox, clock=FakeClock(), observe=False)
    assert w.inbox_available and w.unreadable is None


def test_an_unmounted_volume_is_never_created():
    """Creating /Volumes/<disk>/... would fake the disk on the boot volume."""
    assert not watcher_mod._creatable(Path("/Volumes/NoSuchDisk-asrd-test/Transcribe/inbox"))
    assert not watcher_mod._creatable(Path("/Volumes/NoSuchDisk-asrd-test"))  # the disk itself as the inbox
    assert watcher_mod._creatable(Path("/Users/someone/Transcribe/inbox"))


def test_an_inbox_on_a_mounted_disk_is_created_even_where_its_folders_are_not_there_yet(monkeypatch):
    """Only the disk itself must be there: /Volumes/Disk mounted, Transcribe/inbox made on it."""
    mounted = Path("/Volumes/Disk")
    monkeypatch.setattr(Path, "is_dir", lambda self: self == mounted)
    assert watcher_mod._creatable(mounted / "Transcribe" / "inbox") is True
    assert watcher_mod._creatable(mounted / "inbox") is True


def test_stop_then_start_watches_again(inbox, watchers):
    threads_before = threading.active_count()
    w = watchers(inbox, rescan_s=3600)
    assert threading.active_count() > threads_before
    with capture_logs() as logs:
        w.stop()
        assert threading.active_count() == threads_before  # the observer's threads ended with the stop
        w.start()
    # the inbox never went away: watched again, not "back"
    assert [e["event"] for e in logs if e["event"].startswith("inbox.")] == ["inbox.watching"]
    path = write(inbox / "after-restart.m4a")
    assert [r.path for r in wait_ready(w)] == [path]


def test_an_inbox_that_cannot_be_made_says_why_and_is_waited_for(tmp_path, watchers):
    (tmp_path / "Transcribe").write_text("a file where the inbox's parent folder should be")
    inbox = tmp_path / "Transcribe" / "inbox"
    with capture_logs() as logs:
        w = watchers(inbox, clock=FakeClock(), observe=False)
    failed = [e for e in logs if e["event"] == "inbox.create_failed"]
    assert len(failed) == 1 and failed[0]["inbox"] == str(inbox) and "Not a directory" in failed[0]["error"]
    assert "inbox.missing" in [e["event"] for e in logs] and not w.inbox_available


def test_an_inbox_gone_between_its_stat_and_its_listing_is_missing_not_unreadable(inbox, watchers, monkeypatch):
    w = watchers(inbox, clock=FakeClock(), observe=False)
    monkeypatch.setattr(watcher_mod, "listing_error", lambda folder: FileNotFoundError(2, "gone", str(folder)))
    with capture_logs() as logs:
        assert w._readable() is False
    assert w.unreadable is None and [e for e in logs if e["event"] == "inbox.unreadable"] == []


def test_scans_only_means_no_observer_thread_ever(inbox, watchers):
    """observe=False means scans only: no observer may be started behind the scans' back."""
    import threading

    before = {t.ident for t in threading.enumerate()}
    w = watchers(inbox, clock=FakeClock(), observe=False)
    write(inbox / "a.m4a")
    w.poll()
    assert w._observer is None
    assert {t.ident for t in threading.enumerate()} <= before


def test_an_observer_that_failed_to_start_is_tried_again_at_the_next_rescan(inbox, watchers, monkeypatch):
    """Out of inotify watches (or a racing delete) at start: rescans carry on, and each one tries
    the observer again, so events come back once the cause is gone."""
    refusals = []

    class ShortOfWatches(watcher_mod.Observer):
        def schedule(self, *args, **kwargs):
            if len(refusals) < 2:  # at start, and at the start's own scan
                refusals.append("inotify watch limit reached")
                raise OSError(28, "inotify watch limit reached")
            return super().schedule(*args, **kwargs)

    monkeypatch.setattr(watcher_mod, "Observer", ShortOfWatches)
    clock = FakeClock()
    with capture_logs() as logs:
        w = watchers(inbox, clock=clock, rescan_s=60)
    assert w._observer is None and [e["event"] for e in logs if e["event"] == "observer.failed"] == ["observer.failed"] * 2
    clock.advance(60)
    w.poll()
    assert w._observer is not None
    path = write(inbox / "a.m4a")
    deadline = time.monotonic() + 5
    while w.waiting() != [path] and time.monotonic() < deadline:  # the fake clock is still: no rescan
        w.wake().wait(0.05)
        w.poll()
    assert w.waiting() == [path]  # found through an event
