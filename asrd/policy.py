"""What an engine outcome means for a job: done, try again (counting what), wait, or give up.

One rule set for the daemon and `asrd transcribe`, so both treat a poison file, a hang or a model
problem alike: a file error or timeout costs an attempt, an engine crash costs a crash, a model
that will not load or a stopping daemon costs nothing (never the recording's fault).
"""

from __future__ import annotations

from dataclasses import dataclass

from asrd.config import EngineConfig
from asrd.engine.process import BAD_FILE, CRASHED, DONE, ERROR, LOAD_FAILED, STOPPED, TIMEOUT
from asrd.plural import count

RETRY, FAIL, WAIT, FINISHED = "retry", "fail", "wait", "finished"


@dataclass(frozen=True)
class Decision:
    action: str  # FINISHED | RETRY | FAIL | WAIT
    count: str | None = None  # "attempt" | "crash" | None: what the outcome costs the job
    reason: str | None = None


def decide(status: str, reason: str | None, attempts: int, crashes: int, engine: EngineConfig) -> Decision:
    """attempts/crashes: what the job had used before this outcome."""
    if status == DONE:
        return Decision(FINISHED)
    if status in (LOAD_FAILED, STOPPED):
        return Decision(WAIT, None, reason)
    if status == CRASHED:
        if crashes + 1 >= engine.max_crashes:
            return Decision(FAIL, "crash", f"crashed the engine {count(crashes + 1, 'time')}; last: {reason}")
        return Decision(RETRY, "crash", reason)
    if status in (BAD_FILE, ERROR, TIMEOUT):
        if attempts + 1 >= engine.max_attempts:
            return Decision(FAIL, "attempt", reason if attempts == 0 else f"{reason} (after {attempts + 1} attempts)")
        return Decision(RETRY, "attempt", reason)
    raise ValueError(f"unknown engine outcome {status!r}")
