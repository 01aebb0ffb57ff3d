"""Inbox watching: notice recordings, and hand them on only once they are completely written.

Filesystem events are hints only: FSEvents coalesces them, events get lost, and no platform says
"copy finished". The truth is a scan of the inbox, at start (the backlog) and every rescan_s, plus a
stability gate: a file is ready once successive stats have seen the same size, mtime and inode for
settle_s. A writer that pauses longer than settle_s (a stalled network copy, a recorder writing
live) can still be handed on early; that is why the daemon re-checks the source's size and mtime
before it writes outputs, and why a file that changes after it was handed on is handed on again.

Threads: the daemon's loop calls start/poll/waiting/stop from one thread; watchdog's thread only
adds hints under a lock and sets the wake event.
"""

from __future__ import annotations

import os
import stat
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import NamedTuple

from watchdog.events import (
    EVENT_TYPE_CLOSED,
    EVENT_TYPE_CREATED,
    EVENT_TYPE_DELETED,
    EVENT_TYPE_MODIFIED,
    EVENT_TYPE_MOVED,
    FileSystemEvent,
    FileSystemEventHandler,
)
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver
from watchdog.observers.polling import PollingEmitter, PollingObserver

from asrd.audio import AUDIO_EXTENSIONS
from asrd.logging import get_logger
from asrd.macos.dataless import FIX as DATALESS_FIX
from asrd.macos.dataless import is_dataless
from asrd.macos.privacy import explain
from asrd.output import TEMP_SUFFIX
from asrd.volumes import volume_of

log = get_logger("asrd.watcher")

# Names a download or sync is still filling in (Safari's `.download` is a folder holding the file).
PARTIAL_SUFFIXES = (".part", ".crdownload", ".download", ".tmp", ".partial", ".icloud")
ERROR_SUFFIX = ".asrd-error.json"
OWN_SUFFIXES = (TEMP_SUFFIX, ERROR_SUFFIX)
EMPTY_SETTLE_S = 30.0  # a 0-byte file is usually a copy that has not started writing yet
MISSING_RECHECK_S = 2.0  # how often the daemon should poll while the inbox is missing or unreadable
POLLING_INTERVAL_S = 5.0  # the polling observer's period on a network volume (each poll lists the inbox)
_FILE_HINTS = frozenset({EVENT_TYPE_CREATED, EVENT_TYPE_MODIFIED, EVENT_TYPE_MOVED, EVENT_TYPE_CLOSED})
_DIR_HINTS = frozenset({EVENT_TYPE_CREATED, EVENT_TYPE_MOVED})  # a folder dropped in: scan it


@dataclass(frozen=True)
class Ready:
    """A file whose size and mtime held still for the settle time."""

    path: Path
    size: int
    mtime_ns: int


class _Sig(NamedTuple):
    """What a stat says about a file's content without reading it."""

    size: int
    mtime_ns: int
    ino: int


@dataclass
class _Candidate:
    sig: _Sig | None = None  # None until its first stat
    since: float = 0.0  # clock time when sig was first seen
    waiting_logged: bool = False
    dataless: bool = False  # its content is in iCloud only: never read until it is downloaded


def _skipped_part(name: str) -> bool:
    """Dot names (.DS_Store, ._AppleDouble, .asrd, iCloud stubs, asrd temp files), downloads in
    progress, and asrd's own error files."""
    lower = name.lower()
    return name.startswith(".") or lower.endswith(PARTIAL_SUFFIXES) or lower.endswith(OWN_SUFFIXES)


def is_candidate(path: Path, inbox: Path) -> bool:
    """Could this path under the inbox be a recording asrd should transcribe? (Names only, no I/O.)"""
    try:
        rel = Path(path).relative_to(inbox)
    except ValueError:
        return False
    if not rel.parts or any(_skipped_part(part) for part in rel.parts):
        return False
    return rel.suffix.lower() in AUDIO_EXTENSIONS


def _scannable_dir(path: Path, inbox: Path) -> bool:
    try:
        rel = path.relative_to(inbox)
    except ValueError:
        return False
    return not any(_skipped_part(part) for part in rel.parts)


def _stat(path: Path) -> os.stat_result | None:
    """The stat of what the path names (a link's target), or None if it is gone."""
    try:
        return os.stat(path)
    except OSError:
        return None


def _signature(st: os.stat_result | None) -> _Sig | None:
    """The file's (size, mtime, inode), or None if it is gone or not a regular file."""
    if st is None or not stat.S_ISREG(st.st_mode):
        return None
    return _Sig(st.st_size, st.st_mtime_ns, st.st_ino)


def _not_a_file(st: os.stat_result) -> str:
    """Why a path with a recording's name is never opened: a FIFO would block the reader for good."""
    mode = st.st_mode
    kind = ("a named pipe (FIFO)" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
            else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode) else "not a regular file")
    return f"{kind}, not a recording: never opened"


def _dir_identity(path: Path) -> tuple[int, int, float | None] | None:
    """(device, inode, birth time) of a directory, to tell a folder recreated under the same name.

    Linux may hand the new folder the old inode and has no st_birthtime; there the observer's
    root-deleted event catches the swap instead.
    """
    try:
        st = os.stat(path)
    except OSError:
        return None
    if not stat.S_ISDIR(st.st_mode):
        return None
    return (st.st_dev, st.st_ino, getattr(st, "st_birthtime", None))


def listing_error(folder: Path) -> OSError | None:
    """Why `folder` cannot be listed (and an entry of it looked at), or None if it can."""
    try:
        with os.scandir(folder) as entries:
            for entry in entries:
                entry.stat(follow_symlinks=False)  # needs search permission too
                break
    except OSError as exc:
        return exc
    return None


def _creatable(inbox: Path) -> bool:
    """Never create /Volumes/<name>/...: that would fake an unmounted disk on the boot volume."""
    parts = inbox.parts
    if len(parts) > 2 and parts[:2] == ("/", "Volumes"):
        return Path(*parts[:3]).is_dir()
    return True


class _LinkSafePollingObserver(PollingObserver):
    """watchdog's polling observer with snapshots that lstat, so folder links are not followed: with
    os.stat two links to the inbox inside it make 2^40 paths (only ELOOP, at 40 links deep, stops
    the walk), a first snapshot that never ends."""

    def __init__(self, *, timeout: float):
        BaseObserver.__init__(self, partial(PollingEmitter, stat=os.lstat, listdir=os.scandir), timeout=timeout)


class _HintHandler(FileSystemEventHandler):
    """Turns watchdog events into hints; filtering here keeps asrd's own writes from waking the loop."""

    def __init__(self, hint: Callable[[str | bytes, bool], None], deleted: Callable[[str | bytes], None]):
        self._hint = hint
        self._deleted = deleted

    def on_any_event(self, event: FileSystemEvent) -> None:
        if event.event_type == EVENT_TYPE_DELETED and event.is_directory:
            self._deleted(event.src_path)
            return
        kinds = _DIR_HINTS if event.is_directory else _FILE_HINTS
        if event.event_type not in kinds:
            return
        self._hint(event.dest_path if event.event_type == EVENT_TYPE_MOVED else event.src_path,
                   event.is_directory)  # fmt: skip


class InboxWatcher:
    """Finds recordings in the inbox and reports each once it is completely written."""

    def __init__(
        self,
        inbox: Path,
        settle_s: float = 2.0,
        rescan_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        *,
        empty_settle_s: float = EMPTY_SETTLE_S,
        observe: bool = True,
        polling: str = "auto",
    ):
        self.inbox = Path(inbox).expanduser().absolute()
        self.settle_s = settle_s
        self.rescan_s = rescan_s
        self.empty_settle_s = max(settle_s, empty_settle_s)
        self.observe = observe  # False: scans only, no observer at all
        self.polling = polling  # "auto": a polling observer on network volumes (no events); "true"/"false"
        self.polls = False  # the observer polls (decided when the inbox is found)
        self.inbox_available = False
        self.unreadable: str | None = None  # why the inbox cannot be listed, while it cannot
        self._unreadable_dirs: set[Path] = set()  # subfolders a rescan could not read
        self._clock = clock
        self._lock = threading.Lock()
        self._hints: set[Path] = set()
        self._wake = threading.Event()
        self._candidates: dict[Path, _Candidate] = {}
        self._reported: dict[Path, _Sig] = {}
        self._skipped: dict[Path, tuple[str, int, int]] = {}  # path -> (event, inode, type) said once
        self._observer: Observer | None = None  # type: ignore[valid-type]
        self._inbox_ident: tuple[int, int, float | None] | None = None
        self._root_deleted = False  # set by the observer: the folder it watched was deleted
        self._inbox_real = self.inbox
        self._last_scan = float("-inf")
        self._lost = False

    # -- lifecycle

    def start(self) -> None:
        """Create the inbox if missing, start the observer and scan the backlog."""
        if not _dir_identity(self.inbox) and _creatable(self.inbox):
            try:
                self.inbox.mkdir(parents=True, exist_ok=True, mode=0o700)
            except OSError as exc:
                log.warning("inbox.create_failed", inbox=str(self.inbox), error=str(exc),
                            **(explain(self.inbox.parent, exc) if isinstance(exc, PermissionError) else {}))
        if not self._check_inbox(self._clock()) and self.unreadable is None:
            log.warning("inbox.missing", inbox=str(self.inbox))
            self._lost = True

    def stop(self) -> None:
        """Stop the observer; a later start() watches and scans afresh."""
        self._stop_observer()
        self.inbox_available = False
        self._lost = False

    def wake(self) -> threading.Event:
        """Set when a hint arrives; poll() clears it, so wait on it between polls."""
        return self._wake

    # -- the daemon loop's calls

    def poll(self) -> list[Ready]:
        """Re-stat candidates and return those that held still for the settle time, oldest first.

        Each (path, size, mtime, inode) is returned once; runs the periodic rescan when due and
        notices the inbox going away and coming back.
        """
        self._wake.clear()
        now = self._clock()
        if not self._check_inbox(now):
            return []
        self._take_hints()
        if now - self._last_scan >= self.rescan_s:
            self._rescan(now)
        return self._settle(now)

    def forget(self, path: Path) -> None:
        """The daemon could not take a reported file (a read error while hashing it): hand it on
        again once a rescan finds it, instead of never until a restart."""
        self._reported.pop(Path(path), None)

    def waiting(self) -> list[Path]:
        """Candidates not yet handed on (still settling, or growing; not those only in iCloud)."""
        return sorted(path for path, cand in self._candidates.items() if not cand.dataless)

    def next_poll_in(self) -> float:
        """Seconds until a poll could have something to do without a hint (for the wake wait)."""
        now = self._clock()
        if not self.inbox_available:
            return min(self.rescan_s, MISSING_RECHECK_S)
        due = [self._last_scan + self.rescan_s]
        for cand in self._candidates.values():
            if cand.sig is None:
                return 0.0
            due.append(cand.since + self._settle_for(cand.sig.size))
        return max(0.0, min(due) - now)

    # -- inbox presence

    def _check_inbox(self, now: float) -> bool:
        """True while the inbox is there; restarts watching when it (or a new one) appears."""
        ident = _dir_identity(self.inbox)
        with self._lock:
            root_deleted, self._root_deleted = self._root_deleted, False
        same = ident is not None and ident == self._inbox_ident
        if self.inbox_available and same and not root_deleted and not self._observer_died():
            return True
        if self.inbox_available:  # gone, or replaced by a new folder of the same name
            self._lose_inbox()
        if ident is None or not self._readable():
            return False
        self._resume(ident, now)
        return self.inbox_available  # the resume's rescan may have found it unreadable after all

    def _readable(self) -> bool:
        """Can the inbox be listed? os.walk skips a folder it cannot read without a word, so an
        unreadable inbox (macOS privacy protection, permissions) would look empty."""
        error = listing_error(self.inbox)
        if isinstance(error, (FileNotFoundError, NotADirectoryError)):
            return False  # gone between the stat and the listing: the next poll says so
        if error is not None:
            self._say_unreadable(error)
            return False
        if self.unreadable is not None:
            log.info("inbox.readable", inbox=str(self.inbox))
            self.unreadable = None
        return True

    def _say_unreadable(self, exc: OSError) -> None:
        if self.unreadable is None:
            log.error("inbox.unreadable", inbox=str(self.inbox), error=exc.strerror or str(exc),
                      **explain(self.inbox, exc))
        self.unreadable = exc.strerror or str(exc)

    def _lose_inbox(self, unreadable: OSError | None = None) -> None:
        if unreadable is not None:
            self._say_unreadable(unreadable)
        else:
            log.warning("inbox.missing", inbox=str(self.inbox))
            self._lost = True
        self._stop_observer()
        self.inbox_available = False
        self._candidates.clear()
        self._reported.clear()

    def _resume(self, ident: tuple[int, int, float | None], now: float) -> None:
        self._inbox_ident = ident
        self.inbox_available = True
        volume = volume_of(self.inbox)
        network = volume is not None and volume.network
        self.polls = self.polling == "true" or (self.polling == "auto" and network)
        self._start_observer()
        observer = None if self._observer is None else "polling" if self.polls else "events"
        log.info("inbox.back" if self._lost else "inbox.watching", inbox=str(self.inbox),
                 events=self._observer is not None, observer=observer, network_volume=network,
                 filesystem=volume.fstype if volume else None)  # fmt: skip
        self._lost = False
        self._rescan(now)

    # -- the observer (hints only)

    def _start_observer(self) -> None:
        """Best effort: without events (inotify limits, a racing delete) the rescans still find files."""
        if not self.observe or self._observer is not None:
            return
        self._inbox_real = self.inbox.resolve()
        # a network volume sends no events for what other machines write: poll it
        observer = _LinkSafePollingObserver(timeout=POLLING_INTERVAL_S) if self.polls else Observer()
        try:
            handler = _HintHandler(self._hint, self._deleted)
            observer.schedule(handler, str(self.inbox), recursive=True)
            observer.start()
        except OSError as exc:
            log.warning("observer.failed", inbox=str(self.inbox), error=str(exc))
            return
        self._observer = observer

    def _stop_observer(self) -> None:
        observer, self._observer = self._observer, None
        if observer is not None:
            observer.stop()
            observer.join(timeout=5)

    def _observer_died(self) -> bool:
        """inotify and FSEvents stop watching once the watched folder is deleted."""
        observer = self._observer
        return observer is not None and not all(e.is_alive() for e in observer.emitters)

    def _deleted(self, raw: str | bytes) -> None:
        """Called on watchdog's thread: a deleted inbox means the watch is dead even if a new
        folder of the same name (and, on Linux, perhaps the same inode) is already there."""
        if self._reroot(os.fsdecode(raw)) == self.inbox:
            with self._lock:
                self._root_deleted = True
            self._wake.set()

    def _hint(self, raw: str | bytes, is_dir: bool) -> None:
        """Called on watchdog's thread."""
        path = self._reroot(os.fsdecode(raw))
        if path is None:
            return
        if not (_scannable_dir(path, self.inbox) if is_dir else is_candidate(path, self.inbox)):
            return
        with self._lock:
            self._hints.add(path)
        self._wake.set()

    def _reroot(self, raw: str) -> Path | None:
        """The event's path spelled under self.inbox (FSEvents reports /private/var for /var)."""
        p = Path(raw)
        for root in (self.inbox, self._inbox_real):
            try:
                return self.inbox / p.relative_to(root)
            except ValueError:
                continue
        return None

    def _take_hints(self) -> None:
        with self._lock:
            hints, self._hints = self._hints, set()
        for path in hints:
            if path.is_dir() and not path.is_symlink():  # scans never follow folder links either
                self._scan(path)
            else:
                self._candidates.setdefault(path, _Candidate())

    # -- scanning (the truth)

    def _scan(self, root: Path, errors: dict[Path, OSError] | None = None) -> set[Path]:
        """Make every candidate file under root a candidate; returns them. Folders that cannot be
        read go into `errors` (os.walk would skip them without a word)."""
        found: set[Path] = set()
        errors = {} if errors is None else errors
        for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: errors.setdefault(Path(e.filename), e)):
            dirnames[:] = [d for d in dirnames if not _skipped_part(d)]
            for name in dirnames:
                self._odd_folder(Path(dirpath, name))
            for name in filenames:
                path = Path(dirpath, name)
                if is_candidate(path, self.inbox):
                    found.add(path)
                    self._candidates.setdefault(path, _Candidate())
        return found

    def _odd_folder(self, path: Path) -> None:
        """Say once why a folder named like a recording, or a link to a folder, is not one.
        Folder links are never followed (a link to a parent would loop)."""
        try:
            st = os.lstat(path)
        except OSError:
            return
        if stat.S_ISLNK(st.st_mode):
            self._skip(path, st, "a link to a folder: not followed (a folder link could loop)")
        elif path.suffix.lower() in AUDIO_EXTENSIONS:
            self._skip(path, st, "a folder, not a recording (the files inside it are watched)")

    def _skip(self, path: Path, st: os.stat_result, reason: str, event: str = "file.skipped") -> None:
        """Log `event` once per path (and again only if another file takes its place)."""
        ident = (event, st.st_ino, stat.S_IFMT(st.st_mode))
        if self._skipped.get(path) == ident:
            return
        self._skipped[path] = ident
        if event == "file.dataless":
            log.warning(event, file=str(path), size=st.st_size, reason="its content is in iCloud only, "
                        "and reading it would start a download", fix=DATALESS_FIX)
        else:
            log.info(event, file=str(path), reason=reason)

    def _rescan(self, now: float) -> None:
        errors: dict[Path, OSError] = {}
        found = self._scan(self.inbox, errors)
        if self.inbox in errors and not isinstance(errors[self.inbox], FileNotFoundError):
            self._lose_inbox(unreadable=errors[self.inbox])  # retried every MISSING_RECHECK_S
            return
        self._note_unreadable_dirs(errors)
        for path in set(self._reported) - found:
            del self._reported[path]
        for path in [p for p in self._skipped if not os.path.lexists(p)]:
            del self._skipped[path]
        self._last_scan = now
        log.debug("watcher.rescanned", files=len(found))
        if self._observer is None:
            self._start_observer()

    def _note_unreadable_dirs(self, errors: dict[Path, OSError]) -> None:
        """Say once which subfolders cannot be read (their recordings wait), and when they can again."""
        now = {path for path, exc in errors.items() if not isinstance(exc, FileNotFoundError)}
        for path in sorted(now - self._unreadable_dirs):
            log.warning("folder.unreadable", folder=str(path), inbox=str(self.inbox),
                        error=errors[path].strerror or str(errors[path]), **explain(path, errors[path]))
        for path in sorted(self._unreadable_dirs - now):
            log.info("folder.readable", folder=str(path))
        self._unreadable_dirs = now

    # -- the stability gate

    def _settle_for(self, size: int) -> float:
        return self.settle_s if size > 0 else self.empty_settle_s

    def _settle(self, now: float) -> list[Ready]:
        ready: list[Ready] = []
        for path, cand in list(self._candidates.items()):
            st = _stat(path)
            sig = _signature(st)
            if sig is None or sig == self._reported.get(path):  # gone, or already handed on
                del self._candidates[path]
                if sig is None:
                    self._reported.pop(path, None)
                    if st is not None and stat.S_ISDIR(st.st_mode):  # a folder link's hint
                        self._odd_folder(path)
                    elif st is not None:  # a FIFO, socket or device under a recording's name
                        self._skip(path, st, _not_a_file(st))
                continue
            assert st is not None
            cand.dataless = is_dataless(st)
            if cand.dataless:  # never read while in iCloud only: checked again at each poll (a stat)
                self._skip(path, st, "", event="file.dataless")
                cand.sig, cand.since = sig, now
                continue
            self._skipped.pop(path, None)
            if sig != cand.sig:
                self._log_change(path, cand, sig)
                cand.sig, cand.since = sig, now
            elif now - cand.since >= self._settle_for(sig.size):
                del self._candidates[path]
                self._reported[path] = sig
                ready.append(Ready(path, sig.size, sig.mtime_ns))
        return sorted(ready, key=lambda r: (r.mtime_ns, str(r.path)))

    @staticmethod
    def _log_change(path: Path, cand: _Candidate, sig: _Sig) -> None:
        """file.seen on first sight; file.waiting once if it is then seen to change (still written)."""
        if cand.sig is None:
            log.info("file.seen", file=str(path), size=sig.size)
        elif not cand.waiting_logged:
            cand.waiting_logged = True
            log.info("file.waiting", file=str(path), size=sig.size)
