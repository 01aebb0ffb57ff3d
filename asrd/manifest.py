"""Ownership manifest: which output files asrd wrote, so it only ever overwrites its own unedited work.

A file is asrd's only while its content still hashes to what asrd wrote, for the same recording: the
same source path and, since rows carry it, the same recording *content* (a new recording saved under
an old name must not take over the old one's transcripts). A write first records the hash it is about
to put in place (`pending_sha256`) and commits it after the rename, so a crash between the two never
turns asrd's own file into a "user file". Stored in sqlite (WAL) so the daemon and a CLI process can
use it at once; every call is one short transaction on a fresh connection, which also makes a
Manifest safe to share between threads.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
import unicodedata
from collections.abc import Sequence
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path

from asrd.hashing import sha256_file
from asrd.logging import get_logger
from asrd.sqlite_files import BUSY_TIMEOUT_S, hold_open, open_db

log = get_logger("asrd.manifest")
DB_NAME = "outputs.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outputs (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    written_at REAL NOT NULL
)
"""
# Added later (ALTER TABLE on open); NULL in rows an older asrd wrote, which keep the path-only rule.
_ADDED_COLUMNS = ("content_sha256", "pending_sha256")
UNCOMMITTED = ""  # sha256 of a row whose first file is not in place yet: only its pending hash is asrd's


def path_key(path: str | os.PathLike[str]) -> str:
    """One spelling per file: absolute, parent symlinks resolved, NFC (macOS hands out NFD names).

    The final component is not resolved, so a symlink planted at an output path is judged as itself.
    os.path.realpath, not Path.resolve: the same answer at half the cost (called ~20 times a job),
    and a folder in a symlink loop gives a key rather than an exception that varies by Python version.
    """
    p = Path(path).expanduser()
    folder = os.path.realpath(p.parent)
    return unicodedata.normalize("NFC", os.path.join(folder, p.name) if p.name else folder)


def on_disk(key: str | os.PathLike[str]) -> Path:
    """The file a path key names, as its folder spells it: a key is NFC, and where the file system
    does not fold spellings (Linux, unlike APFS) an NFD name opens only as NFD. The key itself when
    it exists, or when no entry of its folder matches."""
    path = Path(key)
    if os.path.lexists(path):
        return path
    try:
        names = os.listdir(path.parent)
    except OSError:
        return path
    for name in names:
        if name != path.name and unicodedata.normalize("NFC", name) == path.name:
            return path.with_name(name)
    return path


@dataclass(frozen=True)
class OutputRow:
    """What the manifest knows of one output file."""

    path: str
    sha256: str  # the committed content ("" while the first write is not in place yet)
    source: str  # path_key of the recording
    content_sha256: str | None  # the recording's content; None in rows of an older asrd
    pending_sha256: str | None  # a content being renamed into place right now (or when asrd died)

    def belongs_to(self, source: str | os.PathLike[str], content_sha256: str | None) -> bool:
        """Same recording: same source path, and same content where both are known."""
        if self.source != path_key(source):
            return False
        return not (content_sha256 and self.content_sha256 and self.content_sha256 != content_sha256)

    def is_ours(self, file_sha256: str) -> bool:
        """Does a file with this hash hold what asrd wrote (committed, or renamed in before a crash)?"""
        return file_sha256 in (self.sha256, self.pending_sha256)


_ROW_COLUMNS = "path, sha256, source, content_sha256, pending_sha256"


def _migrate(conn: sqlite3.Connection) -> None:
    """Create the table, and add the columns a manifest of an older asrd lacks (one transaction, so
    two processes opening it at once cannot both add them)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        conn.execute(_SCHEMA)
        have = {row[1] for row in conn.execute("PRAGMA table_info(outputs)")}
        for column in _ADDED_COLUMNS:
            if column not in have:
                conn.execute(f"ALTER TABLE outputs ADD COLUMN {column} TEXT")
        conn.execute("CREATE INDEX IF NOT EXISTS outputs_by_recording ON outputs (source, content_sha256)")
        conn.commit()
    except BaseException:
        conn.rollback()
        raise


class Manifest:
    """The record of every output asrd wrote: path -> (sha256, source, content, pending, written_at)."""

    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.state_dir / DB_NAME
        self.set_aside = open_db(self.path, self._connect, _migrate)  # a corrupt manifest, moved out of the way
        if self.set_aside is not None:
            log.error("state.corrupt", file=str(self.path), set_aside=str(self.set_aside),
                      fix="nothing to do: asrd takes its outputs back from the transcripts beside the recordings")
        self._held = hold_open(self.path)  # no checkpoint and WAL deletion after every transaction

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)

    def record(
        self,
        path: str | os.PathLike[str],
        sha256: str,
        source: str | os.PathLike[str],
        content_sha256: str | None = None,
    ) -> None:
        """Claim `path` as asrd's output for `source` (recording content `content_sha256`), with the
        content hash just written."""
        row = (path_key(path), sha256, path_key(source), time.time(), content_sha256 or None)
        with closing(self._connect()) as conn, conn:
            conn.execute(
                "INSERT OR REPLACE INTO outputs (path, sha256, source, written_at, content_sha256, pending_sha256)"
                " VALUES (?, ?, ?, ?, ?, NULL)",
                row,
            )

    def intend(
        self,
        planned: Sequence[tuple[str | os.PathLike[str], str]],
        source: str | os.PathLike[str],
        content_sha256: str | None,
    ) -> None:
        """Before the renames: durably note that each path is about to hold content of this hash.

        A path this recording already owns keeps its committed hash until commit(); another
        recording's row is replaced by an uncommitted one only where its file is gone (where it is
        not, the write finds the path taken and gives it up).
        """
        now, src, content = time.time(), path_key(source), content_sha256 or None
        with closing(self._connect()) as conn, conn:
            for path, sha256 in planned:
                row = self._row(conn, path_key(path))
                if row is not None and row.belongs_to(source, content):
                    conn.execute("UPDATE outputs SET pending_sha256 = ?, content_sha256 = ? WHERE path = ?",
                                 (sha256, content or row.content_sha256, row.path))
                elif row is None or not os.path.lexists(path):
                    conn.execute(
                        "INSERT OR REPLACE INTO outputs (path, sha256, source, written_at, content_sha256,"
                        " pending_sha256) VALUES (?, ?, ?, ?, ?, ?)",
                        (path_key(path), UNCOMMITTED, src, now, content, sha256),
                    )

    def commit(self, paths: Sequence[str | os.PathLike[str]]) -> None:
        """After the renames: the pending hashes of `paths` are now what asrd wrote there.

        Not flushed to the disk (the WAL is, by the next intend()): a commit lost in a power cut
        leaves the pending hashes, which already mark those files as asrd's."""
        now = time.time()
        with closing(self._connect()) as conn, conn:
            conn.execute("PRAGMA synchronous = NORMAL")
            conn.executemany(
                "UPDATE outputs SET sha256 = pending_sha256, pending_sha256 = NULL, written_at = ?"
                " WHERE path = ? AND pending_sha256 IS NOT NULL",
                [(now, path_key(p)) for p in paths],
            )

    def abandon(self, planned: Sequence[tuple[str | os.PathLike[str], str]]) -> None:
        """Writes that did not happen: drop their pending hashes, and the rows intend() created."""
        rows = [(path_key(p), sha256) for p, sha256 in planned]
        with closing(self._connect()) as conn, conn:
            conn.executemany("DELETE FROM outputs WHERE path = ? AND pending_sha256 = ? AND sha256 = ''", rows)
            conn.executemany("UPDATE outputs SET pending_sha256 = NULL WHERE path = ? AND pending_sha256 = ?", rows)

    @staticmethod
    def _row(conn: sqlite3.Connection, key: str) -> OutputRow | None:
        found = conn.execute(f"SELECT {_ROW_COLUMNS} FROM outputs WHERE path = ?", (key,)).fetchone()
        return OutputRow(*found) if found else None

    def entry(self, path: str | os.PathLike[str]) -> OutputRow | None:
        """Everything recorded for `path`, or None if asrd never wrote it."""
        with closing(self._connect()) as conn:
            return self._row(conn, path_key(path))

    def lookup(self, path: str | os.PathLike[str]) -> tuple[str, str] | None:
        """(sha256, source) recorded for `path`, or None if asrd never wrote it."""
        row = self.entry(path)
        return (row.sha256, row.source) if row else None

    def outputs_of(self, source: str | os.PathLike[str], content_sha256: str) -> list[OutputRow]:
        """The rows of one recording (source path and content), oldest first."""
        with closing(self._connect()) as conn:
            found = conn.execute(
                f"SELECT {_ROW_COLUMNS} FROM outputs WHERE source = ? AND content_sha256 = ? ORDER BY written_at",
                (path_key(source), content_sha256),
            ).fetchall()
        return [OutputRow(*r) for r in found]

    def owns(
        self,
        path: str | os.PathLike[str],
        source: str | os.PathLike[str],
        content_sha256: str | None = None,
    ) -> bool:
        """True iff asrd wrote `path` for this recording and the file is unchanged (or gone).

        `content_sha256` is the recording's content hash: a row that knows another content belongs
        to another recording that was saved under the same name. Without it (or in old rows) only
        the source path is compared.
        """
        row = self.entry(path)
        if row is None or not row.belongs_to(source, content_sha256):
            return False
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return True
        if not stat.S_ISREG(st.st_mode):
            return False
        return row.is_ours(sha256_file(path))

    def forget(self, path: str | os.PathLike[str]) -> None:
        """Drop asrd's claim on `path` (e.g. after deleting it)."""
        with closing(self._connect()) as conn, conn:
            conn.execute("DELETE FROM outputs WHERE path = ?", (path_key(path),))
