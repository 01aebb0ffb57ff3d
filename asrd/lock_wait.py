"""`asrd run` while another asrd holds the state dir's lock waits its turn instead of exiting.

launchd restarts a job that exits non-zero forever, and a second daemon (the login agent plus one
started by hand, or an old agent left after an upgrade) would exit every time it is restarted. So it
logs one `daemon.already_running` event naming the holder and the fix, tries the lock every couple
of seconds, and takes over as soon as the holder exits. SIGTERM/SIGINT end the wait (exit 0).
"""

from __future__ import annotations

import sys
import threading

from asrd.lock import AlreadyRunning, StateLock
from asrd.logging import get_logger

RETRY_S = 2.0
log = get_logger("asrd.daemon")


def acquire_or_wait(lock: StateLock, stop: threading.Event, retry_s: float = RETRY_S) -> tuple[bool, int | None]:
    """(True, the previous holder's pid) once the lock is ours; (False, None) if `stop` came first."""
    said: int | None | bool = False  # the holder last reported (False: none yet)
    while True:
        try:
            previous = lock.acquire()
        except AlreadyRunning as exc:
            if exc.pid != said:
                said = exc.pid
                _report(exc, lock)
        else:
            if said is not False:
                log.info("daemon.lock_acquired", state_dir=str(lock.path.parent), previous_pid=said)
            return True, previous
        if stop.wait(retry_s):
            return False, None


def _report(exc: AlreadyRunning, lock: StateLock) -> None:
    who = f"pid {exc.pid}" if exc.pid else "another process"
    log.warning("daemon.already_running", holder_pid=exc.pid, state_dir=str(lock.path.parent), lock=str(lock.path),
                fix=f"this asrd takes over when {who} exits; to run only one, stop the other "
                    f"(`asrd agent status` shows the login agent's) or stop this one")
    if sys.stderr.isatty():
        print(f"asrd: {exc}\nasrd: waiting for it to exit (Ctrl-C to quit)", file=sys.stderr)
