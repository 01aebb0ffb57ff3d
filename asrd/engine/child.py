"""The engine process: loads the models once, then serves one job at a time over a Pipe.

Started by `asrd.engine.process` with multiprocessing's spawn context (fork is unsafe on macOS).
The only process that imports torch and funasr. Its log events go to the parent, which owns the
log file (two processes rotating one file corrupt it).
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import sys
import threading
import time
from typing import Any, NoReturn

import structlog

from asrd.config import Config
from asrd.engine import protocol
from asrd.logging import demote_library_chatter, shared_processors

EXIT_PARENT_GONE = 3


class _Channel:
    """Connection.send is not thread-safe; FunASR may log from other threads."""

    def __init__(self, conn: Any):
        self._conn = conn
        self._lock = threading.Lock()

    def send(self, message: Any) -> None:
        with self._lock:
            self._conn.send(message)


def _route_logs_to_parent(channel: _Channel, level: str) -> None:
    def forward(_: Any, method: str, event: dict[str, Any]) -> dict[str, Any]:
        fields = {k: v for k, v in event.items() if k not in ("event", "level", "timestamp", "_record",
                                                             "_from_structlog")}
        channel.send(protocol.LogEvent(event.get("level", method), str(event.get("event")), _plain(fields)))
        raise structlog.DropEvent

    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared_processors(), forward],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )

    class ToParent(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if isinstance(record.msg, dict):  # a structlog event on its way through stdlib
                return
            try:
                channel.send(protocol.LogEvent(record.levelname.lower(), f"{record.name}.log",
                                               {"message": record.getMessage()[:2000]}))
            except Exception:  # never let logging kill a job
                pass

    root = logging.getLogger()
    for handler in list(root.handlers):
        root.removeHandler(handler)
    to_parent = ToParent()
    to_parent.addFilter(demote_library_chatter)
    root.addHandler(to_parent)
    root.setLevel(level.upper())
    logging.captureWarnings(True)


def _plain(fields: dict[str, Any]) -> dict[str, Any]:
    """Only values that pickle cheaply and render as JSON cross the pipe."""
    return {k: v if isinstance(v, (str, int, float, bool, type(None), list, dict)) else repr(v)
            for k, v in fields.items()}


def _leave_stopping_to_the_parent() -> None:
    """Ctrl-C, `timeout -s TERM`, systemd and a logout signal the whole process group. Dying of that
    here would look like a crash to the daemon, blamed on the recording; the daemon, stopping,
    ends this process itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)


def _exit_with_parent() -> None:
    """A SIGKILLed daemon cannot stop its engine, and a busy or hung engine would never read the
    closed pipe: it would live on beside the next daemon's engine. Watch the parent instead."""
    parent = multiprocessing.parent_process()
    if parent is None:
        return

    def watch() -> None:
        multiprocessing.connection.wait([parent.sentinel])
        os._exit(EXIT_PARENT_GONE)  # no one is left to send a result to; skip the cleanup

    threading.Thread(target=watch, name="asrd-parent-watch", daemon=True).start()


def _leave(code: int) -> NoReturn:
    """Exit between jobs without the interpreter's teardown. Unloading the models (two full
    collections) and torch's exit-time finalizers took 2.1-2.7 s here, over 3 s on a loaded machine:
    longer than STOP_GRACE_S, so a stop could end in a kill. The OS frees the process's memory, CPU
    or GPU, at once; nothing is buffered (log events cross the pipe as they happen)."""
    try:
        sys.stdout.flush()
        sys.stderr.flush()
    finally:  # a flush into a pipe whose reader is gone raises: leave all the same
        os._exit(code)


def main(conn: Any, config: Config, pinned: str | None = None) -> None:
    """Entry point of the spawned engine process; `pinned`: the device the parent holds the engine
    to, whatever engine.device says (the CPU, after ops failed on the Apple GPU)."""
    _leave_stopping_to_the_parent()
    _exit_with_parent()
    channel = _Channel(conn)
    _route_logs_to_parent(channel, config.log_level)
    log = structlog.get_logger("asrd.engine")
    from asrd.engine import testhooks

    hooks = testhooks.install()
    from asrd.engine.device import memory_figures
    from asrd.engine.funasr import FunASREngine
    from asrd.engine.job import run_job

    if pinned:
        from asrd.engine.fallback import cpu_config

        config = cpu_config(config)
    engine = FunASREngine(config)
    engine.pinned = pinned
    try:
        hooks.before_load()
        engine.load()
        hooks.after_load(engine)
    except Exception as exc:  # any load problem is the model's, never the recording's
        channel.send(protocol.LoadFailed(f"{type(exc).__name__}: {exc}"))
        return
    channel.send(protocol.Ready(os.getpid(), engine.device, engine.load_s, engine.choice.reason if engine.choice else ""))
    while True:
        try:
            request = conn.recv()
        except EOFError:  # the parent went away
            _leave(0)
        if request == protocol.SHUTDOWN:
            _leave(0)
        _serve(channel, engine, request, run_job, memory_figures, hooks, log)


def _serve(channel, engine, request: protocol.JobRequest, run_job, memory_figures, hooks, log) -> None:
    from asrd.audio import AudioError

    structlog.contextvars.bind_contextvars(job_id=request.job_id, file=request.path)
    last_sent = 0.0

    def progress(p) -> None:
        nonlocal last_sent
        now = time.monotonic()
        if now - last_sent >= 0.5 or p.segments_done == p.segments_total:
            last_sent = now
            channel.send(protocol.JobProgress(request.job_id, p.fraction, p.done_s, p.segments_done,
                                              p.segments_total))

    def stage(name: str, audio_s: float | None = None) -> None:
        channel.send(protocol.JobStage(request.job_id, name, audio_s))
        hooks.at_stage(name, request)

    def fell_back(device: str, op: str | None, error: str) -> None:
        channel.send(protocol.DeviceFellBack(request.job_id, device, op, error))

    try:
        transcript = run_job(engine, request, progress, stage, fell_back)
        hooks.after_job(request)
        channel.send(protocol.JobDone(request.job_id, transcript, memory_figures(engine.device, engine._torch),
                                      len(engine.shapes)))
    except AudioError as exc:
        channel.send(protocol.JobFailed(request.job_id, exc.reason, bad_file=True,
                                        memory=memory_figures(engine.device, engine._torch), shapes=len(engine.shapes)))
    except Exception as exc:
        log.exception("engine.job_error", error=f"{type(exc).__name__}: {exc}")
        channel.send(protocol.JobFailed(request.job_id, f"{type(exc).__name__}: {exc}", bad_file=False,
                                        memory=memory_figures(engine.device, engine._torch), shapes=len(engine.shapes)))
    finally:
        structlog.contextvars.clear_contextvars()
