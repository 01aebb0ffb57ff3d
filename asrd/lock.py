"""One daemon per state dir: an flock on `state_dir/asrd.lock`, holding the owner's pid.

The kernel drops an flock when its process dies (even by SIGKILL), so a stale lock never blocks a
restart; the pid inside is only for the message.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

LOCK_NAME = "asrd.lock"


class AlreadyRunning(Exception):
    def __init__(self, pid: int | None, path: Path):
        self.pid = pid
        self.path = path
        who = f"pid {pid}" if pid else "another process"
        super().__init__(f"asrd is already running ({who} holds {path})")


class StateLock:
    def __init__(self, state_dir: Path):
        self.path = Path(state_dir) / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> int | None:
        """Take the lock; returns the pid the previous holder left in the file (None if none)."""
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AlreadyRunning(holder_pid(self.path), self.path) from None
        previous = holder_pid(self.path)  # read under the lock: the last holder's, not a racing waiter's
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd
        return previous

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the flock
            self._fd = None


def holder_pid(path: Path) -> int | None:
    try:
        return int(Path(path).read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


def is_held(state_dir: Path) -> bool:
    """Is a daemon running on this state dir right now? (Checked by trying the lock.)"""
    path = Path(state_dir) / LOCK_NAME
    if not path.exists():
        return False
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False
