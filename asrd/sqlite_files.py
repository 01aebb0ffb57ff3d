"""The sqlite files in state_dir (the ledger, the output manifest): created private, in WAL mode so
the daemon and a one-shot `asrd transcribe` can use them at once, set up once by whichever process
comes first. A file sqlite cannot read (a disk error, a bad copy from a backup, something else
written over it) is set aside, never deleted, and a new one started: the caller rebuilds what it can
from the outputs on disk, so asrd keeps working instead of failing at every start."""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

BUSY_TIMEOUT_S = 30.0


def create_private(path: Path) -> None:
    """Make the db file exist with mode 0600 before sqlite opens it (sqlite copies it to -wal/-shm)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)


def open_db(path: Path, connect: Callable[[], sqlite3.Connection],
            set_up: Callable[[sqlite3.Connection], object]) -> Path | None:
    """Create (0600) and set up the db at `path`; if what is there is not a sound sqlite database,
    move it (and its -wal/-shm) aside as `<name>.corrupt-<unix time>` and start a new one. Returns
    the set-aside path, or None when the file was sound."""
    create_private(path)
    try:
        init_wal(connect, lambda conn: (_check(conn), set_up(conn)))
        return None
    except sqlite3.DatabaseError as exc:
        if isinstance(exc, sqlite3.OperationalError):  # locked, busy, read-only: not the file's fault
            raise
    aside = path.with_name(f"{path.name}.corrupt-{int(time.time())}")
    for suffix in ("", "-wal", "-shm"):
        try:
            os.replace(f"{path}{suffix}", f"{aside}{suffix}")
        except FileNotFoundError:
            pass
    create_private(path)
    init_wal(connect, set_up)
    return aside


def hold_open(path: Path) -> sqlite3.Connection:
    """An idle connection kept for the life of its owner (the Ledger, the Manifest).

    Why: when the last connection to a WAL database closes, sqlite checkpoints the WAL into the
    database and deletes it. asrd opens a connection per transaction, so without one held open every
    transaction paid that too: five flushes instead of two (measured with strace), about twelve
    more a job. The read attaches it to the WAL; it holds no lock between transactions."""
    conn = sqlite3.connect(path, timeout=BUSY_TIMEOUT_S, check_same_thread=False)
    conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
    return conn


def _check(conn: sqlite3.Connection) -> None:
    """sqlite's own quick check (milliseconds for asrd's small files): it reads every page."""
    verdict = conn.execute("PRAGMA quick_check").fetchone()[0]
    if verdict != "ok":
        raise sqlite3.DatabaseError(f"quick_check: {verdict}")


def init_wal(connect: Callable[[], sqlite3.Connection], set_up: Callable[[sqlite3.Connection], object]) -> None:
    """Switch to WAL and run `set_up` (schema, migrations), retrying while another process does the same.

    Changing the journal mode can fail with "database is locked" without waiting on the busy
    timeout, so two processes starting together need this retry.
    """
    deadline = time.monotonic() + BUSY_TIMEOUT_S
    while True:
        try:
            with closing(connect()) as conn:
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    conn.execute("PRAGMA journal_mode=WAL")
                set_up(conn)
            return
        except sqlite3.OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.05)
