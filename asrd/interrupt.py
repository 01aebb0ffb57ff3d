"""A one-shot command stops on a closed terminal (SIGHUP) or `kill` (SIGTERM) as it does on Ctrl-C.

Left to their default, SIGHUP and SIGTERM end the process on the spot: no `finally` runs, so the
job it holds stays "running" and its engine child lives on. Here each of them raises `Interrupted`
(a KeyboardInterrupt, so code that cleans up after Ctrl-C cleans up after these too). Only the first
signal raises: a second Ctrl-C while the command releases its job must not cut that short.
"""

from __future__ import annotations

import signal
from contextlib import contextmanager
from typing import Any, Iterator

SIGNALS = (signal.SIGINT, signal.SIGHUP, signal.SIGTERM)


class Interrupted(KeyboardInterrupt):
    """The user (or the system) stopped the command with a signal."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        """The shell's convention for a death by this signal: 130 for Ctrl-C, 129 for SIGHUP, 143 for SIGTERM."""
        return 128 + self.signum


@contextmanager
def stop_on_signals() -> Iterator[None]:
    """Within the block, SIGINT, SIGHUP and SIGTERM raise Interrupted (once); handlers restored after."""
    raised = False

    def interrupt(signum: int, _frame: Any) -> None:
        nonlocal raised
        if not raised:
            raised = True
            raise Interrupted(signum)

    previous = {sig: signal.signal(sig, interrupt) for sig in SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextmanager
def signals_deferred() -> Iterator[None]:
    """Those signals, arriving within the block, are handled just after it: a step such as "claim the
    job and remember that we hold it" is never cut in half (a claimed job nobody knows to release)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
