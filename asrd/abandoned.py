"""What a one-shot `asrd transcribe` leaves in the ledger for a job its caller abandoned.

Ctrl-C, a closed terminal, `kill` or models that cannot load end the job unfinished. Left queued,
the daemon would later transcribe a recording the user chose not to, outside the inbox, writing
files beside it. So the job goes back to what it was: a job this run created is dropped, an older one
(a done recording redone with --force, a failed one retried) is restored as it was. Only a new
recording inside the inbox stays queued: the daemon would transcribe it anyway.
"""

from __future__ import annotations

from pathlib import Path

from asrd.config import Config
from asrd.ledger import Job, Ledger
from asrd.logging import get_logger

log = get_logger("asrd.transcribe")


def release_abandoned(ledger: Ledger, config: Config, job_id: int, before: Job | None, path: Path) -> str:
    """Release the running job `job_id` (`before`: as it was read before this run claimed it, None if
    this run created it); returns the state it was left in ("dropped" if it is gone)."""
    if before is not None:
        left = ledger.restore(before).state
    elif inside(path, config.inbox):
        left = ledger.requeue(job_id, None).state
    else:
        ledger.drop(job_id)
        left = "dropped"
    log.info("job.abandoned", job_id=job_id, file=str(path), left=left)
    return left


def inside(path: Path, folder: Path) -> bool:
    """Is `path` in `folder` or below it (symlinks resolved on both sides)?"""
    return Path(path).resolve().is_relative_to(Path(folder).resolve())
