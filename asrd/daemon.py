"""`asrd run`: watch the inbox and transcribe every finished recording exactly once.

The loop: stable files from the watcher are hashed and offered to the ledger (content-keyed, so a
restart redoes nothing and a new recording under an old name is new work); the oldest due job is
claimed, run in the engine process, checked against its source again, written, and recorded. The
ledger owns job state, so a stop or a crash at any moment loses nothing: a running job goes back to
queued. Runs in the foreground (launchd runs it); SIGTERM/SIGINT stop it within seconds.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

import structlog

from asrd.config import Config
from asrd.engine.process import BAD_FILE, ERROR, LOAD_FAILED, EngineProcess, JobOutcome
from asrd.engine.protocol import JobProgress, JobRequest, JobStage
from asrd.error_record import remove_error_record, write_error_record
from asrd.hashing import sha256_file
from asrd.ledger import Job, Ledger, backoff_s
from asrd.lock import StateLock
from asrd.logging import get_logger
from asrd.manifest import Manifest, path_key
from asrd.output import cleanup_temp_files, write_outputs
from asrd.policy import FAIL, FINISHED, RETRY, decide
from asrd.stats import summary
from asrd.status import write_status
from asrd.watcher import InboxWatcher, Ready

log = get_logger("asrd.daemon")
IDLE_WAIT_S = 1.0
STATUS_EVERY_S = 1.0


class SourceChanged(Exception):
    """The recording changed while it was being transcribed: the result is for old content."""


class Daemon:
    def __init__(self, config: Config):
        self.config = config
        self.ledger = Ledger(config.state_dir)
        self.manifest = Manifest(config.state_dir)
        self.watcher = InboxWatcher(config.inbox, settle_s=config.watch.settle_s, rescan_s=config.watch.rescan_s)
        self.engine = EngineProcess(config)
        self.stopping = threading.Event()
        self.started_at = time.time()
        self._current: dict[str, Any] | None = None
        self._status_written = 0.0

    # --- lifecycle -------------------------------------------------------------------------

    def run(self) -> int:
        lock = StateLock(self.config.state_dir)
        lock.acquire()  # AlreadyRunning propagates to the CLI: exit 1 naming the holder
        self._install_signal_handlers()
        try:
            self._start()
            while not self.stopping.is_set():
                self._step()
        finally:
            self._shutdown()
            lock.release()
        return 0

    def _install_signal_handlers(self) -> None:
        def stop(signum: int, _frame: Any) -> None:
            if not self.stopping.is_set():
                log.info("daemon.signal", signal=signal.Signals(signum).name)
            self.stopping.set()
            self.watcher.wake().set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)

    def _start(self) -> None:
        models = self.config.models()
        log.info("daemon.started", pid=os.getpid(), inbox=str(self.config.inbox), outputs=list(self.config.outputs),
                 preset=self.config.model.preset, models=models, device=self.config.engine.device,
                 state_dir=str(self.config.state_dir))
        for job in self.ledger.recover_running():
            log.info("job.requeued", job_id=job.id, file=job.path, reason="asrd stopped during the job")
        self.config.inbox.mkdir(parents=True, exist_ok=True)
        for leftover in cleanup_temp_files_under(self.config.inbox):
            log.info("output.temp_removed", file=str(leftover))
        self.watcher.start()
        self._write_status(force=True)

    def _shutdown(self) -> None:
        log.info("daemon.stopping", queued=self.ledger.counts()["queued"])
        self.watcher.stop()
        self.engine.stop(reason="daemon stopping")
        self._current = None
        self._write_status(force=True, running=False)
        log.info("daemon.stopped")

    def _step(self) -> None:
        for ready in self.watcher.poll():
            self._offer(ready)
        job = self.ledger.next_due(time.time())
        if job is not None:
            self._work(job)
            return
        self.engine.unload_if_idle()
        self._write_status()
        self.watcher.wake().wait(max(0.05, min(IDLE_WAIT_S, self.watcher.next_poll_in())))

    # --- noticing ---------------------------------------------------------------------------

    def _offer(self, ready: Ready) -> None:
        """Hash a settled file (unless its size+mtime were hashed before) and queue new content."""
        sha = self.ledger.cached_hash(ready.path, ready.size, ready.mtime_ns)
        if sha is None:
            try:
                sha = sha256_file(ready.path)
            except OSError as exc:
                log.warning("file.unreadable", file=str(ready.path), reason=str(exc))
                return
            self.ledger.remember_hash(ready.path, ready.size, ready.mtime_ns, sha)
        job, created = self.ledger.offer(ready.path, ready.size, ready.mtime_ns, sha)
        if created:
            log.info("job.queued", job_id=job.id, file=str(ready.path), size=ready.size)
        elif job.path != path_key(ready.path):
            # exactly once per content: a copy is not transcribed again, but it is never skipped silently
            log.info("file.duplicate", job_id=job.id, file=str(ready.path), same_as=job.path, state=job.state,
                     outputs=job.outputs, hint="`asrd transcribe --force FILE` transcribes the copy too")

    # --- working ----------------------------------------------------------------------------

    def _work(self, job: Job) -> None:
        job = self.ledger.claim(job.id)
        path = Path(job.path)
        log.info("job.started", job_id=job.id, file=job.path, attempt=job.attempts + 1)
        self._current = {"job_id": job.id, "file": job.path, "started_at": time.time(), "fraction": 0.0}
        self._write_status(force=True)
        try:
            with structlog.contextvars.bound_contextvars(job_id=job.id, file=job.path):
                try:
                    outcome = self._transcribe(job, path)
                    self._settle(job, path, outcome)
                except Exception as exc:  # a bug or an I/O error must cost this job, not the daemon
                    self._unexpected(job, path, exc)
        finally:
            self._current = None
            self._write_status(force=True)

    def _unexpected(self, job: Job, path: Path, exc: Exception) -> None:
        """Count an attempt, so that even a file that trips a bug in asrd ends as failed, never as a
        crash loop of the daemon under launchd."""
        log.exception("job.error", error=f"{type(exc).__name__}: {exc}")
        if self.ledger.get(job.id).state == "running":
            self._settle(job, path, JobOutcome(ERROR, reason=f"internal error: {type(exc).__name__}: {exc}"))

    def _transcribe(self, job: Job, path: Path) -> JobOutcome:
        if not path.exists():
            return JobOutcome(BAD_FILE, reason="the file disappeared before it could be transcribed")
        # Never opened here: a recording that crashes or hangs its decoder would take the daemon
        # with it. The engine probes it, reports its length and turns a bad header into BAD_FILE.
        request = JobRequest(job.id, job.path, job.size, job.sha256)
        return self.engine.run(request, self._progress, self.stopping.is_set, on_stage=self._stage)

    def _stage(self, stage: JobStage) -> None:
        """Say what the engine is doing: VAD over an hour-long file takes minutes without progress."""
        if self._current is not None:
            self._current["stage"] = stage.stage
        audio_s = {"audio_s": round(stage.audio_s, 2)} if stage.audio_s else {}
        log.info("job.stage", stage=stage.stage, **audio_s)
        self._write_status(force=True)

    def _progress(self, progress: JobProgress) -> None:
        if self._current is not None:
            self._current.update(fraction=round(progress.fraction, 4), segments_done=progress.segments_done,
                                 segments_total=progress.segments_total)
        log.info("job.progress", fraction=round(progress.fraction, 3),
                 segments=f"{progress.segments_done}/{progress.segments_total}")
        self._write_status()

    def _settle(self, job: Job, path: Path, outcome: JobOutcome) -> None:
        """Record what the outcome means for the job: written and done, retried, failed or waiting."""
        decision = decide(outcome.status, outcome.reason, job.attempts, job.crashes, self.config.engine)
        if decision.action == FINISHED:
            try:
                self._finish(job, path, outcome)
            except SourceChanged as exc:
                self._requeue_new_content(job, path, str(exc))
            return
        if decision.action == RETRY:
            tries = job.attempts + job.crashes + 1
            delay = backoff_s(tries, base=self.config.engine.retry_delay_s)
            self.ledger.requeue(job.id, decision.reason, decision.count, delay_s=delay)
            log.warning("job.failed", job_id=job.id, file=job.path, reason=decision.reason, attempt=tries,
                        will_retry=True, retry_in_s=round(delay, 1))
            return
        if decision.action == FAIL:
            failed = self.ledger.fail(job.id, decision.reason or "failed", count=decision.count)
            record = write_error_record(path, decision.reason or "failed", failed.attempts, failed.crashes) \
                if path.parent.is_dir() else None
            log.error("job.failed", job_id=job.id, file=job.path, reason=decision.reason,
                      attempt=failed.attempts + failed.crashes, will_retry=False,
                      error_record=str(record) if record else None)
            return
        # WAIT: not the recording's fault (models not loadable, or we are stopping)
        delay = 0.0 if outcome.status != LOAD_FAILED else backoff_s(self.engine.info.restarts, base=2.0, cap=300.0)
        self.ledger.requeue(job.id, outcome.reason if outcome.status == LOAD_FAILED else None, None, delay_s=delay)
        log.info("job.requeued", job_id=job.id, file=job.path, reason=outcome.reason)

    def _finish(self, job: Job, path: Path, outcome: JobOutcome) -> None:
        transcript = outcome.transcript
        assert transcript is not None
        self._check_source(job, path)
        started = time.perf_counter()
        outputs = write_outputs(transcript, path, self.config.outputs, self.manifest)
        write_s = time.perf_counter() - started
        remove_error_record(path)
        self.ledger.complete(job.id, [str(p) for p in outputs], transcript.duration_s, transcript.processing_s,
                             transcript.rtf)
        timings = transcript.stats.get("timings", {})
        log.info("job.done", job_id=job.id, file=job.path, audio_s=round(transcript.duration_s, 2),
                 processing_s=round(transcript.processing_s, 2), rtf=round(transcript.rtf, 4),
                 segments=len(transcript.segments), outputs=[str(p) for p in outputs], device=transcript.device,
                 load_s=self.engine.info.load_s, write_s=round(write_s, 3), **timings, memory=outcome.memory,
                 speech=summary(transcript.stats.get("speech", {})))

    def _check_source(self, job: Job, path: Path) -> None:
        """The recording must still be what was transcribed: no transcript of half a recording."""
        try:
            st = path.stat()
        except OSError:
            raise SourceChanged("the file disappeared while it was being transcribed") from None
        if st.st_size != job.size or sha256_file(path) != job.sha256:
            raise SourceChanged("the file changed while it was being transcribed")

    def _requeue_new_content(self, job: Job, path: Path, reason: str) -> None:
        """Discard the result. The job is for content that is gone, so it ends; the file's new content
        has a new mtime, so the watcher hands it over again once it settles, as a new job."""
        self.ledger.fail(job.id, f"superseded: {reason}")
        log.warning("job.discarded", job_id=job.id, file=job.path, reason=reason)

    # --- status -----------------------------------------------------------------------------

    def _write_status(self, force: bool = False, running: bool = True) -> None:
        now = time.monotonic()
        if not force and now - self._status_written < STATUS_EVERY_S:
            return
        self._status_written = now
        engine = self.engine.info
        write_status(self.config.state_dir, {
            "running": running,
            "pid": os.getpid(),
            "started_at": self.started_at,
            "inbox": str(self.config.inbox),
            "inbox_available": self.config.inbox.is_dir(),
            "waiting_files": [str(p) for p in self.watcher.waiting()],
            "engine": {"state": engine.state, "pid": engine.pid, "device": engine.device, "load_s": engine.load_s,
                       "jobs_served": engine.jobs_served, "restarts": engine.restarts,
                       "last_error": engine.last_error, "preset": self.config.model.preset,
                       "models": self.config.models()},
            "job": self._current,
        })


def cleanup_temp_files_under(folder: Path) -> list[Path]:
    """Temp files a SIGKILL left mid-write anywhere in the inbox (no writer is active: we hold the lock)."""
    removed: list[Path] = []
    for dirpath, _dirs, _files in os.walk(folder):
        removed.extend(cleanup_temp_files(dirpath))
    return removed
