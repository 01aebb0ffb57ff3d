"""Waiting on an inbox watcher the way the daemon's loop does."""

from __future__ import annotations

import time

from asrd.watcher import InboxWatcher, Ready


def wait_ready(watcher: InboxWatcher, timeout: float = 5.0) -> list[Ready]:
    """Poll like the daemon loop (sleeping on the wake event) until something is ready; [] at the timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready = watcher.poll()
        if ready:
            return ready
        watcher.wake().wait(min(0.05, watcher.next_poll_in()))
    return []
