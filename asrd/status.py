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


def write_status(state_dir: Path, data: dict[str, Any]) -> None:
    write_atomic(status_path(state_dir), json.dumps({**data, "updated_at": time.time()}, indent=1))


def read_status(state_dir: Path) -> dict[str, Any] | None:
    try:
        return json.loads(status_path(state_dir).read_text())
    except (OSError, ValueError):
        return None
