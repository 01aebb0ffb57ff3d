"""The sqlite files in state_dir (the ledger, the output manifest): created private, in WAL mode so
the daemon and a one-shot `asrd transcribe` can use them at once, set up once by whichever process
comes first."""

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
