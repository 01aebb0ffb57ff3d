"""The small status file the daemon refreshes, so `asrd status` can show the job in flight.

Everything durable is in the ledger; this holds only what lives in the daemon's memory (engine
state, progress of the current job), written atomically so a reader never sees half a file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from asrd.output import write_atomic

STATUS_NAME = "status.json"


def status_path(state_dir: Path) -> Path:
    return Path(state_dir) / STATUS_NAME


def write_status(state_dir: Path, data: dict[str, Any]) -> bool:
    """Write `data` (stamped with `updated_at`) unless the file already says the same; True if written.

    An idle daemon refreshes its status every second: rewriting an unchanged file each time costs a
    rename and two fsyncs (full flushes on macOS) around the clock. So `updated_at` is when the
    content last changed, not a heartbeat: `asrd status` tells a running daemon by its lock.
    """
    if _content(data) == _content(read_status(state_dir)):
        return False
    # not flushed: rewritten at every stage of every job; after a power cut a live daemon rewrites it
    write_atomic(status_path(state_dir), json.dumps({**data, "updated_at": time.time()}, indent=1), durable=False)
    return True


def _content(data: dict[str, Any] | None) -> str | None:
    """`data` as JSON without its timestamp, in one canonical form (tuples and lists alike)."""
    if data is None:
        return None
    return json.dumps({k: v for k, v in data.items() if k != "updated_at"}, sort_keys=True, default=str)


def read_status(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads(status_path(state_dir).read_text())
    except (OSError, ValueError):
        return None
