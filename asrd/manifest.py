"""Ownership manifest: which output files asrd wrote, so it only ever overwrites its own unedited work.

A file is asrd's only while its content still hashes to what asrd wrote, for the same source.
Stored in sqlite (WAL) so the daemon and a CLI process can use it at once; every call is one short
transaction on a fresh connection, which also makes a Manifest safe to share between threads.
"""

from __future__ import annotations

import os
import sqlite3
import stat
import time
import unicodedata
from contextlib import closing
from pathlib import Path

from asrd.hashing import sha256_file
from asrd.sqlite_files import BUSY_TIMEOUT_S, create_private, init_wal

DB_NAME = "outputs.sqlite3"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS outputs (
    path TEXT PRIMARY KEY,
    sha256 TEXT NOT NULL,
    source TEXT NOT NULL,
    written_at REAL NOT NULL
)
"""


def path_key(path: str | os.PathLike[str]) -> str:
    """One spelling per file: absolute, parent symlinks resolved, NFC (macOS hands out NFD names).

    The final component is not resolved, so a symlink planted at an output path is judged as itself.
    """
    p = Path(path).expanduser()
    absolute = p.parent.resolve() / p.name
    return unicodedata.normalize("NFC", str(absolute))


class Manifest:
    """The record of every output asrd wrote: path -> (sha256, source, written_at)."""

    def __init__(self, state_dir: Path):
        self.state_dir = Path(state_dir)
        self.state_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        self.path = self.state_dir / DB_NAME
        create_private(self.path)
        self._init_db()

    def _init_db(self) -> None:
        def create(conn: sqlite3.Connection) -> None:
            with conn:
                conn.execute(_SCHEMA)

        init_wal(self._connect, create)

    def _connect(self) -> sqlite3.Connection:
        return sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S)

    def record(self, path: str | os.PathLike[str], sha256: str, source: str | os.PathLike[str]) -> None:
        """Claim `path` as asrd's output for `source`, with the content hash just written."""
        row = (path_key(path), sha256, path_key(source), time.time())
        with closing(self._connect()) as conn, conn:
            conn.execute(
                "INSERT OR REPLACE INTO outputs (path, sha256, source, written_at) VALUES (?, ?, ?, ?)",
                row,
            )

    def lookup(self, path: str | os.PathLike[str]) -> tuple[str, str] | None:
        """(sha256, source) recorded for `path`, or None if asrd never wrote it."""
        with closing(self._connect()) as conn:
            row = conn.execute(
                "SELECT sha256, source FROM outputs WHERE path = ?", (path_key(path),)
            ).fetchone()
        return (row[0], row[1]) if row else None

    def owns(self, path: str | os.PathLike[str], source: str | os.PathLike[str]) -> bool:
        """True iff asrd wrote `path` for this same `source` and the file is unchanged (or gone)."""
        entry = self.lookup(path)
        if entry is None or entry[1] != path_key(source):
            return False
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return True
        if not stat.S_ISREG(st.st_mode):
            return False
        return sha256_file(path) == entry[0]

    def forget(self, path: str | os.PathLike[str]) -> None:
        """Drop asrd's claim on `path` (e.g. after deleting it)."""
        with closing(self._connect()) as conn, conn:
            conn.execute("DELETE FROM outputs WHERE path = ?", (path_key(path),))
