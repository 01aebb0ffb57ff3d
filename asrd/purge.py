"""What `asrd agent uninstall --purge` removes: asrd's own state and logs, nothing shared.

The state folder (ledger, stored transcripts, status) and the log file with its rotated copies and
launchd's two files go. Kept: the config (the user wrote it), transcripts beside recordings, and any
folder that holds something asrd does not own: the model caches other programs share, the inbox, HOME.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from asrd.logview import log_files
from asrd.macos.launchd_logs import NAMES as LAUNCHD_LOGS


def shared_folders(config) -> list[Path]:
    """Folders purge must never remove, nor any folder that contains one of them."""
    from asrd.models import cache_root

    found = [Path.home(), cache_root(), Path(config.inbox)]
    for var in ("HF_HOME", "TORCH_HOME", "XDG_CACHE_HOME"):
        if os.environ.get(var):
            found.append(Path(os.environ[var]))
    found.append(Path.home() / ".cache" / "huggingface")
    return [p.expanduser().absolute() for p in found]


def _holds(folder: Path, other: Path) -> bool:
    return other == folder or folder in other.parents


def plan(config) -> tuple[list[Path], list[str]]:
    """(paths to remove, reasons for what is kept)."""
    remove: list[Path] = []
    kept: list[str] = []
    state = Path(config.state_dir).expanduser().absolute()
    shared = [s for s in shared_folders(config) if _holds(state, s)]
    if shared:
        kept.append(f"kept {state}: it holds {shared[0]}, which is not asrd's alone")
    elif state.exists():
        remove.append(state)
    log = Path(config.log_file).expanduser().absolute()
    remove += log_files(log)
    names = [n for name in LAUNCHD_LOGS for n in (name, f"{name}.1")]
    remove += [log.parent / n for n in names if (log.parent / n).exists()]
    return remove, kept


def purge(paths: list[Path]) -> None:
    folders = set()
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
        else:
            path.unlink(missing_ok=True)
            folders.add(path.parent)
    for folder in folders:  # the log folder goes only when nothing else is in it
        try:
            folder.rmdir()
        except OSError:
            pass
