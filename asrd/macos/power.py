"""Keep the Mac awake while there is work: `caffeinate -i -w <daemon pid>` runs as a child.

macOS idle sleep would stall a long job for hours. `caffeinate -i` holds an assertion against idle
sleep for as long as it runs, and `-w <pid>` ends it when the daemon exits, so even a SIGKILLed
daemon never leaves the Mac unable to sleep. It is started when work appears and terminated when
the queue is empty. Where there is no `caffeinate` (Linux) this does nothing. Nothing here ever
raises into the daemon: a caffeinate that fails is logged, and tried again a minute later at most.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from collections.abc import Callable

from asrd.logging import get_logger

log = get_logger("asrd.power")
TOOL = "caffeinate"
RETRY_S = 60.0  # after caffeinate failed to start or died, wait this long before starting another
STOP_WAIT_S = 2.0


class KeepAwake:
    """hold()/release(), both idempotent: at most one caffeinate, started on hold, ended on release."""

    def __init__(self, enabled: Callable[[], bool] = lambda: True, pid: int | None = None,
                 which: Callable[[str], str | None] = shutil.which,
                 clock: Callable[[], float] = time.monotonic):
        self._enabled = enabled  # read at each hold, so a reloaded config (SIGHUP) applies
        self._pid = os.getpid() if pid is None else pid
        self._which = which
        self._clock = clock
        self._proc: subprocess.Popen | None = None
        self._held_at = 0.0
        self._retry_at = float("-inf")
        self._said_unavailable = False

    @property
    def held(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    @property
    def child_pid(self) -> int | None:
        return self._proc.pid if self.held else None

    def hold(self, reason: str) -> None:
        """Make sure an assertion is held (start caffeinate unless it runs)."""
        try:
            if not self._enabled():
                self.release("power.keep_awake is off")
                return
            if self._proc is not None:
                if self._proc.poll() is None:
                    return
                self._lost()
            if self._clock() < self._retry_at:
                return
            self._start(reason)
        except Exception as exc:  # noqa: BLE001 -- never the daemon's end: a machine that sleeps only makes jobs slower
            self._proc = None
            self._retry_at = self._clock() + RETRY_S
            log.warning("power.failed", reason=f"{type(exc).__name__}: {exc}", retry_in_s=RETRY_S)

    def release(self, reason: str) -> None:
        """Let the Mac sleep again (end caffeinate if it runs)."""
        proc, self._proc = self._proc, None
        if proc is None:
            return
        try:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(STOP_WAIT_S)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait(STOP_WAIT_S)
            if proc.stderr is not None:
                proc.stderr.close()
            log.info("power.released", reason=reason, held_s=round(self._clock() - self._held_at, 1))
        except Exception as exc:  # noqa: BLE001 -- logged, never raised into the daemon
            log.warning("power.failed", reason=f"could not end {TOOL} (pid {proc.pid}): {type(exc).__name__}: {exc}")

    def _start(self, reason: str) -> None:
        exe = self._which(TOOL)
        if exe is None:
            if not self._said_unavailable:
                self._said_unavailable = True
                log.debug("power.unavailable", reason=f"no {TOOL} on PATH (not a Mac): the machine may sleep mid-job")
            return
        try:
            self._proc = subprocess.Popen([exe, "-i", "-w", str(self._pid)], stdin=subprocess.DEVNULL,
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        except OSError as exc:
            self._retry_at = self._clock() + RETRY_S
            log.warning("power.failed", reason=f"cannot start {exe}: {exc}", retry_in_s=RETRY_S)
            return
        self._held_at = self._clock()
        log.info("power.held", reason=reason, pid=self._proc.pid, command=f"{TOOL} -i -w {self._pid}")

    def _lost(self) -> None:
        """caffeinate ended by itself (it failed, or someone killed it): say so, retry later."""
        proc, self._proc = self._proc, None
        assert proc is not None
        said = _said(proc)
        self._retry_at = self._clock() + RETRY_S
        log.warning("power.failed", reason=f"{TOOL} exited with code {proc.returncode}"
                    + (f": {said}" if said else ""), retry_in_s=RETRY_S)


def _said(proc: subprocess.Popen) -> str:
    """What an ended caffeinate said on stderr (a little of it), its pipe closed."""
    if proc.stderr is None:
        return ""
    try:
        return proc.stderr.read(500).decode(errors="replace").strip()
    finally:
        proc.stderr.close()
