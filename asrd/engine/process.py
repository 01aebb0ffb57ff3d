"""The parent's handle on the engine process: start, serve one job, supervise, recycle, unload.

The engine child owns torch, FunASR and the decoded audio, so a segfault, an OOM kill, a hang or a
leak in the model costs a restart, never the daemon. The parent never imports torch. Every
outcome is a `JobOutcome`; deciding what it means for the job (retry, fail) is the caller's,
because the ledger, not the engine, owns job state.
"""

from __future__ import annotations

import atexit
import multiprocessing
import signal
import time
import weakref
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any, Callable

from asrd.config import Config
from asrd.engine import protocol
from asrd.engine.deadline import JobDeadline, LoadDeadline
from asrd.engine.device import engine_memory_mb
from asrd.logging import get_logger
from asrd.transcript import Transcript

log = get_logger("asrd.engine")
POLL_S = 0.1
STOP_GRACE_S = 3.0
RESTART_BACKOFF_S = (1.0, 60.0)  # first delay, cap: doubled after each consecutive failure
FALLBACKS_TO_MOVE = 2  # jobs whose ops failed on the GPU before the engine moves to the CPU for good

# JobOutcome.status values
DONE = "done"  # transcript ready
BAD_FILE = "bad_file"  # the recording cannot be decoded
ERROR = "error"  # the job raised something else inside the engine
CRASHED = "crashed"  # the engine process died during the job
TIMEOUT = "timeout"  # the job ran past its time limit; the engine was killed
LOAD_FAILED = "load_failed"  # the models could not be loaded: the job never ran
STOPPED = "stopped"  # the caller is stopping, or the engine was stopped by a signal: never the job's fault
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)  # a terminal (closed: SIGHUP), `timeout`, systemd, a logout


@dataclass
class JobOutcome:
    status: str
    transcript: Transcript | None = None
    reason: str | None = None
    memory: dict[str, float] = field(default_factory=dict)


@dataclass
class EngineState:
    """What `asrd status` shows about the engine."""

    state: str = "stopped"  # stopped | loading | ready | busy
    pid: int | None = None
    device: str | None = None
    load_s: float | None = None
    jobs_served: int = 0
    restarts: int = 0
    last_error: str | None = None
    memory_mb: int | None = None  # the figure engine.max_memory_mb is compared with, after the last job
    memory_limit_mb: int | None = None
    shapes: int = 0  # distinct input shapes the engine process has run on MPS
    device_fallbacks: int = 0  # jobs re-run on the CPU after an op failed on the GPU
    device_note: str | None = None  # why the engine is not on the device it chose (held on the CPU)


ProgressFn = Callable[[protocol.JobProgress], None]
StageFn = Callable[[protocol.JobStage], None]
StopFn = Callable[[], bool]


class EngineProcess:
    def __init__(self, config: Config):
        self.config = config
        self.info = EngineState()
        self._ctx = multiprocessing.get_context("spawn")  # fork is unsafe on macOS (and with torch)
        self._proc: Any = None
        self._conn: Connection | None = None
        self._failures = 0  # consecutive crashes/load failures, for the restart backoff
        self._not_before = 0.0
        self._last_used = time.monotonic()
        self._pinned: str | None = None  # the CPU, after a second job's op failed on the GPU
        atexit.register(_kill_at_exit, weakref.ref(self))

    # --- lifecycle -------------------------------------------------------------------------

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.is_alive()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None else None

    def start(self, should_stop: StopFn = lambda: False) -> JobOutcome | None:
        """Start the child and wait until its models are loaded; an outcome only on failure."""
        while time.monotonic() < self._not_before:
            if should_stop():
                return JobOutcome(STOPPED, reason="stopping")
            time.sleep(POLL_S)
        parent_conn, child_conn = self._ctx.Pipe()
        from asrd.engine.child import main as child_main

        self._proc = self._ctx.Process(target=child_main, args=(child_conn, self.config, self._pinned),
                                       name="asrd-engine", daemon=True)
        started = time.monotonic()
        self.info.state, self.info.last_error = "loading", None
        self._proc.start()
        child_conn.close()
        self._conn = parent_conn
        self.info.pid = self._proc.pid
        log.info("engine.starting", pid=self._proc.pid)
        deadline = LoadDeadline(self.config.engine.load_timeout_s)
        while True:
            message = self._receive(should_stop, deadline)
            if isinstance(message, protocol.Ready):
                self.info.state, self.info.device, self.info.load_s = "ready", message.device, message.load_s
                self._failures = 0
                self._last_used = time.monotonic()
                log.info("engine.ready", pid=message.pid, device=message.device, load_s=round(message.load_s, 2),
                         cold_start_s=round(time.monotonic() - started, 2), reason=message.reason)
                return None
            exitcode = self._proc.exitcode if self._proc is not None else None
            self._kill()
            if _interrupted(message, exitcode, should_stop):
                return JobOutcome(STOPPED, reason="stopping")
            if isinstance(message, protocol.LoadFailed):
                reason = message.reason
            elif message == TIMEOUT:
                reason = (f"the models did not load: nothing from the engine for engine.load_timeout_s "
                          f"({deadline.limit_s:g} s); engine killed")
            else:
                reason = f"engine process died while loading ({_describe_exit(exitcode)})"
            self._backoff()
            self.info.last_error = reason
            log.error("engine.load_failed", reason=reason, retry_in_s=round(self._not_before - time.monotonic(), 1))
            return JobOutcome(LOAD_FAILED, reason=reason)

    def stop(self, reason: str = "shutdown") -> None:
        """Ask the child to exit between jobs; kill it if it does not within STOP_GRACE_S."""
        if self._proc is None:
            return
        if self.alive and self._conn is not None:
            try:
                self._conn.send(protocol.SHUTDOWN)
            except (OSError, ValueError):
                pass
            self._proc.join(STOP_GRACE_S)
        self._kill()
        log.info("engine.stopped", reason=reason)

    def _kill(self) -> None:
        if self._proc is not None and self._proc.is_alive():
            self._proc.kill()
        if self._proc is not None:
            self._proc.join(5)
        if self._conn is not None:
            self._conn.close()
        self._proc, self._conn = None, None
        self.info.state, self.info.pid = "stopped", None

    def _backoff(self) -> None:
        first, cap = RESTART_BACKOFF_S
        self._failures += 1
        self.info.restarts += 1
        self._not_before = time.monotonic() + min(cap, first * 2 ** (self._failures - 1))

    # --- one job ---------------------------------------------------------------------------

    def run(self, request: protocol.JobRequest, on_progress: ProgressFn | None = None,
            should_stop: StopFn = lambda: False, on_stage: StageFn | None = None) -> JobOutcome:
        """Run one job in the child (starting it if needed) and say how it ended; on_stage hears
        what the engine is doing (loading models, decoding, detecting speech, recognising...)."""
        if not self.alive:
            if on_stage:
                on_stage(protocol.JobStage(request.job_id, protocol.LOADING_MODELS))
            failure = self.start(should_stop)
            if failure is not None:
                return failure
        assert self._conn is not None
        deadline = JobDeadline(self.config.engine, request.size, request.audio_s)
        self.info.state = "busy"
        self._conn.send(request)
        try:
            while True:
                message = self._receive(should_stop, deadline)
                if isinstance(message, protocol.JobStage):
                    deadline.learn_length(message.audio_s)
                    if on_stage:
                        on_stage(message)
                    continue
                if isinstance(message, protocol.JobProgress):
                    if on_progress:
                        on_progress(message)
                    continue
                if isinstance(message, protocol.DeviceFellBack):
                    self._fell_back(message)
                    continue
                if isinstance(message, protocol.JobDone):
                    return self._finished(JobOutcome(DONE, message.transcript, memory=message.memory), message.shapes)
                if isinstance(message, protocol.JobFailed):
                    status = BAD_FILE if message.bad_file else ERROR
                    return self._finished(JobOutcome(status, reason=message.reason, memory=message.memory),
                                          message.shapes)
                return self._lost(message, deadline, should_stop)
        finally:
            self._last_used = time.monotonic()
            if self.info.state == "busy":
                self.info.state = "ready"

    def _finished(self, outcome: JobOutcome, shapes: int = 0) -> JobOutcome:
        self.info.jobs_served += 1
        self._recycle_if_due(outcome.memory, shapes)
        return outcome

    def _fell_back(self, message: protocol.DeviceFellBack) -> None:
        """An op failed on the GPU and the child re-runs the job on the CPU. The first time the
        engine stays on the GPU; the second, it moves to the CPU (after this job) until asrd restarts."""
        self.info.device_fallbacks += 1
        if self.info.device_fallbacks < FALLBACKS_TO_MOVE or self._pinned:
            return
        self._pinned = "cpu"
        self.info.device_note = (f"on the CPU until asrd restarts: {self.info.device_fallbacks} jobs hit ops "
                                 f"{message.device} cannot run (last: {message.op or message.error})")
        log.warning("engine.device_fallback", scope="engine", requested=message.device, device="cpu", op=message.op,
                    error=message.error, fallbacks=self.info.device_fallbacks, reason=self.info.device_note)

    def _lost(self, why: str, deadline: JobDeadline, should_stop: StopFn) -> JobOutcome:
        """The child stopped answering this job: died, timed out, or we are stopping."""
        exitcode = self._proc.exitcode if self._proc is not None else None
        self._kill()
        if _interrupted(why, exitcode, should_stop):
            if why == STOPPED or should_stop():
                return JobOutcome(STOPPED, reason="daemon stopping")
            reason = f"engine process stopped ({_describe_exit(exitcode)}); not the recording's fault"
            log.warning("engine.interrupted", reason=reason)
            return JobOutcome(STOPPED, reason=reason)
        self._backoff()
        if why == TIMEOUT:
            reason = f"job took longer than its {deadline.limit_s:.0f} s limit; engine killed"
            log.error("engine.timeout", timeout_s=round(deadline.limit_s, 1),
                      audio_s=round(deadline.audio_s, 2) if deadline.audio_s else None)
            return JobOutcome(TIMEOUT, reason=reason)
        reason = f"engine process died ({_describe_exit(exitcode)})"
        log.error("engine.crashed", reason=reason, restarts=self.info.restarts)
        return JobOutcome(CRASHED, reason=reason)

    def _receive(self, should_stop: StopFn, deadline: JobDeadline | LoadDeadline) -> Any:
        """Next message from the child, logging LogEvents on the way; or why there is none:
        STOPPED, TIMEOUT, or CRASHED (the child died)."""
        assert self._conn is not None and self._proc is not None
        while True:
            if should_stop():
                return STOPPED
            if deadline.passed():
                return TIMEOUT
            try:
                ready = self._conn.poll(POLL_S)
                message = self._conn.recv() if ready else None
            except (EOFError, OSError):
                self._proc.join(5)
                return CRASHED
            if message is None:
                if not self._proc.is_alive():
                    return CRASHED
                continue
            deadline.heard_from_child()
            if isinstance(message, protocol.LogEvent):
                log_child_event(message)
                continue
            return message

    # --- memory hygiene --------------------------------------------------------------------

    def _recycle_if_due(self, memory: dict[str, float], shapes: int) -> None:
        engine = self.config.engine
        used = engine_memory_mb(memory)
        limit_mb = engine.memory_limit_mb()
        self.info.memory_mb, self.info.memory_limit_mb, self.info.shapes = round(used), limit_mb, shapes
        if self._pinned and self.info.device != self._pinned:
            self.stop(reason=f"moving to the {self._pinned}: {self.info.device_note}")
        elif engine.recycle_after_jobs and self.info.jobs_served % engine.recycle_after_jobs == 0:
            self.stop(reason=f"recycled after {engine.recycle_after_jobs} jobs")
            log.info("engine.recycled", reason="jobs", jobs=engine.recycle_after_jobs)
        elif limit_mb and used > limit_mb:
            self.stop(reason=f"memory {used:.0f} MB over engine.max_memory_mb {limit_mb}")
            log.info("engine.recycled", reason="memory", memory_mb=round(used), limit_mb=limit_mb)
        elif engine.max_shapes and shapes > engine.max_shapes:
            self.stop(reason=f"{shapes} distinct input shapes, over engine.max_shapes {engine.max_shapes}")
            log.info("engine.recycled", reason="shapes", shapes=shapes, limit=engine.max_shapes)

    def unload_if_idle(self) -> bool:
        """Stop the child after engine.idle_unload_s without jobs; its memory returns to the system."""
        idle_s = self.config.engine.idle_unload_s
        if idle_s and self.alive and time.monotonic() - self._last_used >= idle_s:
            self.stop(reason=f"idle for {idle_s:.0f} s")
            log.info("engine.unloaded", idle_s=idle_s)
            return True
        return False


def _kill_at_exit(engine_ref: weakref.ref) -> None:
    """A parent that exits without stop() (an uncaught error, a plain script) would hang: multiprocessing's
    own exit handler, which runs after this one, SIGTERMs the child (which ignores it) and joins it for good."""
    engine = engine_ref()
    if engine is not None:
        engine._kill()


def log_child_event(message: protocol.LogEvent) -> None:
    """Re-emit an engine event into this process's log (the one writer of the log file)."""
    level = message.level if message.level in ("debug", "info", "warning", "error", "critical") else "info"
    fields = {k: v for k, v in message.fields.items() if k not in ("logger", "logger_name")}
    getattr(get_logger("asrd.engine.child"), level)(message.event, **fields)


def _interrupted(why: Any, exitcode: int | None, should_stop: StopFn) -> bool:
    """The child went away because we are stopping, or by a stop signal (the group's SIGTERM may
    reach the child before the parent knows it is stopping): never the job's fault, never counted."""
    if why == STOPPED:
        return True
    return why == CRASHED and (should_stop() or exitcode in [-s for s in STOP_SIGNALS])


def _describe_exit(exitcode: int | None) -> str:
    if exitcode is None:
        return "exit status unknown"
    if exitcode < 0:
        try:
            return f"killed by {signal.Signals(-exitcode).name}"
        except ValueError:
            return f"killed by signal {-exitcode}"
    return f"exit code {exitcode}"
