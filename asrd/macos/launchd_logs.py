"""Keep launchd's StandardOut/StandardError files bounded.

launchd appends the daemon's stdout/stderr to launchd.out.log/launchd.err.log and never rotates
them; a crash loop would grow them forever. `asrd run` calls `trim` at start (each launchd
respawn is a start): a file over the limit keeps its tail in `<name>.1` and is emptied in place,
which is safe because launchd opened it for appending.
"""

from __future__ import annotations

import os
from pathlib import Path

NAMES = ("launchd.out.log", "launchd.err.log")
MAX_BYTES = 1024 * 1024
KEEP_BYTES = 256 * 1024


def trim(log_dir: Path, max_bytes: int = MAX_BYTES, keep_bytes: int = KEEP_BYTES) -> list[Path]:
    """Trim each launchd log in log_dir that is over max_bytes; returns the files trimmed. Never raises."""
    trimmed = []
    for name in NAMES:
        path = Path(log_dir) / name
        try:
            size = path.stat().st_size
            if size <= max_bytes:
                continue
            with open(path, "rb") as handle:
                handle.seek(max(size - keep_bytes, 0))
                tail = handle.read()
            backup = path.with_name(name + ".1")
            backup.write_bytes(tail)
            os.chmod(backup, 0o600)
            os.truncate(path, 0)
            trimmed.append(path)
        except OSError:
            continue  # a log we cannot trim must never stop asrd from starting
    return trimmed
