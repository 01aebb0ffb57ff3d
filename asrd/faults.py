"""Test-only crash points in the daemon, switched on by $ASRD_TEST_KILL_AT (a point's name), and a
disk that is full for the first $ASRD_TEST_FULL_WRITES output writes.

Crash tests must kill asrd at exact steps of a job's life (just after the claim, between two output
files, after the outputs but before the ledger says done) to show that a restart finishes the job
exactly once, with no partial output. A signal sent from outside cannot hit such a window; this
SIGKILLs the process itself when it reaches the named point. Without the variables they do nothing.
"""

from __future__ import annotations

import errno
import os
import signal

ENV = "ASRD_TEST_KILL_AT"


def crash_point(name: str) -> None:
    """SIGKILL this process here if the test asked for it (no cleanup, as a power cut)."""
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)


FULL_WRITES = "ASRD_TEST_FULL_WRITES"
_writes = 0


def disk_full_point(path: str) -> None:
    """Raise ENOSPC, as a full disk does, for this process's first $ASRD_TEST_FULL_WRITES writes."""
    global _writes
    limit = int(os.environ.get(FULL_WRITES) or 0)
    if _writes < limit:
        _writes += 1
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
