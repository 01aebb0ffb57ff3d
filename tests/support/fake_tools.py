"""Fake Mac tools (tests/fakes) first on PATH, and the processes they leave behind."""

from __future__ import annotations

import os
import time
from pathlib import Path

import psutil

FAKES = Path(__file__).resolve().parent.parent / "fakes"


def fake_path(bin_dir: Path, *tools: str) -> str:
    """A PATH whose first folder, `bin_dir`, holds only the named fakes."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for tool in tools:
        if not (bin_dir / tool).exists():
            (bin_dir / tool).symlink_to(FAKES / tool)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


def running(pid: int) -> bool:
    """The process exists and has not exited (a zombie waiting to be reaped has exited)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def wait_gone(pid: int, timeout: float = 10.0) -> bool:
    """Whether the process ended within `timeout` (a bounded wait, not a timing assertion)."""
    deadline = time.monotonic() + timeout
    while running(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def caffeinate_starts(record: Path) -> list[tuple[int, list[str]]]:
    """(pid, argv) of each fake caffeinate started, from its $FAKE_CAFFEINATE_LOG."""
    if not record.exists():
        return []
    return [(int(line.split()[0]), line.split()[1:]) for line in record.read_text().splitlines() if line.strip()]


def wait_caffeinate_starts(record: Path, n: int, timeout: float = 10.0) -> list[tuple[int, list[str]]]:
    """The first `n` starts, once that many are recorded (a started fake records itself a moment later)."""
    deadline = time.monotonic() + timeout
    while len(starts := caffeinate_starts(record)) < n:
        if time.monotonic() > deadline:
            raise AssertionError(f"{len(starts)} caffeinate starts recorded, expected {n}")
        time.sleep(0.05)
    return starts
