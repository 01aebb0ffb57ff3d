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
import stat
import threading
import time
from dataclasses import fields, is_dataclass, replace
from pathlib import Path
from typing import Any

import structlog

from asrd.abandoned import inside
from asrd.config import Config, ConfigError, load_config
from asrd.copies import Copies
from asrd.engine.process import DONE, ERROR, LOAD_FAILED, EngineProcess, JobOutcome
from asrd.engine.protocol import JobProgress, JobRequest, JobStage
from asrd.error_record import remove_error_record, write_error_record
from asrd.faults import crash_point
from asrd.hashing import sha256_file
from asrd.ledger import IllegalTransition, Job, Ledger, backoff_s
from asrd.lock import StateLock
from asrd.lock_wait import acquire_or_wait
from asrd.logging import get_logger
from asrd.macos.dataless import is_dataless
from asrd.macos.power import KeepAwake
from asrd.macos.privacy import explain
from asrd.manifest import Manifest, on_disk, path_key
from asrd.notify import Notifier
from asrd.output import cleanup_temp_files, write_outputs
from asrd.output_move import move_outputs
from asrd.plural import count
from asrd.policy import FAIL, FINISHED, RETRY, decide
from asrd.recover import recover_outputs
from asrd.stats import summary
from asrd.status import write_status
from asrd.transcript_store import TranscriptStore
from asrd.watcher import InboxWatcher, Ready

log = get_logger("asrd.daemon")
IDLE_WAIT_S = 1.0
STATUS_EVERY_S = 1.0
HOUSEKEEPING_S = 5.0  # how often jobs of dead owners and recordings that went missing are looked at


HERE, MISSING, CHANGED = "here", "missing", "changed"  # where a job's recording is, seen from its path
RESTART_ONLY = ("state_dir", "log_file", "log_level")  # a reload cannot move the ledger or the log


def changed_settings(old: Config, new: Config) -> list[str]:
    """Dotted names of the settings that differ (`engine.threads`, `outputs`, …)."""
    def flat(value: Any, prefix: str = "") -> dict[str, Any]:
        if is_dataclass(value):
            out: dict[str, Any] = {}
            for f in fields(value):
                if f.compare:
                    out |= flat(getattr(value, f.name), f"{prefix}{f.name}.")
            return out
        return {prefix.rstrip("."): value}

    before, after = flat(old), flat(new)
    changed = sorted(key for key in before.keys() | after.keys() if before.get(key) != after.get(key))
    if old.models() != new.models():
        changed.append("model.resolved")  # a `model` change: the engine loads again
    return changed


class Daemon:
    def __init__(self, config: Config, config_arg: str | None = None):
        self.config = config
        self.config_arg = config_arg  # `--config` as given, so a reload (SIGHUP) reads the same file
        self._reload = threading.Event()
        self.ledger = Ledger(config.state_dir)
        self.manifest = Manifest(config.state_dir)
        self.transcripts = TranscriptStore(config.state_dir)
        self.watcher = InboxWatcher(config.inbox, settle_s=config.watch.settle_s, rescan_s=config.watch.rescan_s,
                                    polling=config.watch.polling)
        self.engine = EngineProcess(config)
        self.stopping = threading.Event()
        self.started_at = time.time()
        self._current: dict[str, Any] | None = None
        self._status_written = 0.0
        self._housekept = 0.0
        self._errors_dir = config.state_dir / "errors"  # error records that cannot go beside their recording
        self.copies = Copies(self.manifest, self.transcripts, config.outputs, self._errors_dir)
        self.power = KeepAwake(lambda: self.config.power.keep_awake)  # no idle sleep while there is work
        self.notifier = Notifier(lambda: self.config.notify)
        self._unreadable: dict[Path, tuple[int, int]] = {}  # files a read error kept from the ledger (not their fault)
        self._inbox_problem: str | None = None  # the unreadable inbox's error last announced

    # --- lifecycle -------------------------------------------------------------------------

    def run(self) -> int:
        self._install_signal_handlers()  # first: SIGTERM must end a wait for the lock too
        lock = StateLock(self.config.state_dir)
        # another asrd holding it is waited out, not exited on (launchd would respawn us forever);
        # a daemon that died holding the lock left its pid there: its running jobs count a crash
        acquired, previous_pid = acquire_or_wait(lock, self.stopping)
        if not acquired:
            return 0  # stopped while waiting: no status file written, it is the holder's
        try:
            self._start(previous_pid)
            errors = 0
            while not self.stopping.is_set():
                try:
                    self._step()
                    errors = 0
                except Exception:  # a bug or a passing I/O error (a busy database): never a respawn loop
                    errors += 1
                    log.exception("daemon.error", consecutive=errors)
                    self.stopping.wait(backoff_s(errors, base=1.0, cap=60.0))
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

        def reload(_signum: int, _frame: Any) -> None:
            self._reload.set()
            self.watcher.wake().set()

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        signal.signal(signal.SIGHUP, reload)

    def _start(self, previous_pid: int | None) -> None:
        models = self.config.models()
        log.info("daemon.started", pid=os.getpid(), inbox=str(self.config.inbox), outputs=list(self.config.outputs),
                 preset=self.config.model.preset, models=models, device=self.config.engine.device,
                 state_dir=str(self.config.state_dir))
        self._recover_orphans(crashed_pid=previous_pid)
        for folder in (self.config.state_dir, self.config.inbox):  # errors/ is inside state_dir
            for leftover in cleanup_temp_files_under(folder):
                log.info("output.temp_removed", file=str(leftover))
        self.watcher.start()
        self._housekept = time.monotonic()
        self._write_status(force=True)

    def _recover_orphans(self, crashed_pid: int | None = None) -> None:
        """Jobs left running by a process that is gone. The daemon's own (it died: a crash counted,
        so a recording that kills asrd ends failed, not in a respawn loop) and inbox recordings of a
        killed `asrd transcribe` are queued again; a killed `asrd transcribe` of a file outside the
        inbox is dropped (its caller abandoned it), back to done if it was a redo."""
        for job in self.ledger.recover_running(crashed_pid=crashed_pid):
            if not self._in_inbox(job.path):
                self.ledger.abandon(job.id)
                log.info("job.dropped", job_id=job.id, file=job.path,
                         reason="the asrd transcribe that started it ended; not in the inbox")
                continue
            if job.crashes >= self.config.engine.max_crashes:
                self._fail(job, Path(job.path), f"asrd stopped abruptly during this recording "
                                                f"{count(job.crashes, 'time')}; not trying it again", None)
                continue
            log.info("job.requeued", job_id=job.id, file=job.path, reason="asrd stopped during the job",
                     crashes=job.crashes)

    def _in_inbox(self, path: str) -> bool:
        return inside(Path(path), self.config.inbox)

    def _shutdown(self) -> None:
        log.info("daemon.stopping", queued=self.ledger.counts()["queued"])
        self.watcher.stop()
        self.engine.stop(reason="daemon stopping")
        self.power.release("daemon stopping")
        self.notifier.close()
        self._current = None
        self._write_status(force=True, running=False)
        log.info("daemon.stopped")

    def _step(self) -> None:
        if self._reload.is_set():  # between jobs: a job runs to its end on the config it started with
            self._reload.clear()
            self._reload_config()
        for ready in self.watcher.poll():
            self._offer(ready)
        self._announce_unreadable_inbox()
        if time.monotonic() - self._housekept >= HOUSEKEEPING_S:
            self._housekeeping()
        # nothing is handed out while the inbox is away: its recordings would only look missing
        job = self.ledger.next_due(time.time(), under=self.config.inbox) if self.watcher.inbox_available else None
        if job is not None:
            self.power.hold("a job is due")
            self._work(job)
            return
        self._power_when_idle()
        self.engine.unload_if_idle()
        self._write_status()
        self.watcher.wake().wait(max(0.05, min(IDLE_WAIT_S, self.watcher.next_poll_in())))

    def _power_when_idle(self) -> None:
        """Jobs waiting out a retry's backoff still keep the Mac awake; an empty queue lets it sleep."""
        if self.watcher.inbox_available and self.ledger.has_pending(self.config.inbox):
            self.power.hold("jobs wait for a retry")
        else:
            self.power.release("the queue is empty")

    def _announce_unreadable_inbox(self) -> None:
        """Once per episode: asrd waits for the user to let it read the inbox (the log says how)."""
        problem = self.watcher.unreadable
        if problem and problem != self._inbox_problem:
            self.notifier.problem("inbox.unreadable", str(self.config.inbox),
                                  f"it may not read {self.config.inbox} ({problem}); `asrd logs` says how to fix it")
        self._inbox_problem = problem

    def _reload_config(self) -> None:
        """SIGHUP: read the config again. A broken one is said and the running one kept; inbox, outputs
        and watch settings apply now; a model or engine change restarts the engine (at its next job)."""
        try:
            new = load_config(self.config_arg)
        except ConfigError as exc:
            log.error("config.invalid", problems=exc.problems, kept="the running configuration",
                      fix="fix the file and send SIGHUP again")
            return
        changed = changed_settings(self.config, new)
        later = [key for key in changed if key.split(".")[0] in RESTART_ONLY]
        self.config = replace(new, **{key: getattr(self.config, key) for key in RESTART_ONLY})
        if any(key.split(".")[0] in ("inbox", "watch") for key in changed):
            self.watcher.stop()
            self.watcher = InboxWatcher(self.config.inbox, settle_s=self.config.watch.settle_s,
                                        rescan_s=self.config.watch.rescan_s, polling=self.config.watch.polling)
            self.watcher.start()
        if any(key.split(".")[0] in ("engine", "model", "limits") for key in changed):
            self.engine.stop(reason="configuration reloaded")
            self.engine = EngineProcess(self.config)
        self.copies.formats = list(self.config.outputs)
        log.info("config.reloaded", changed=[k for k in changed if k not in later],
                 needs_restart=later or None)

    # --- noticing ---------------------------------------------------------------------------

    def _housekeeping(self) -> None:
        self._housekept = time.monotonic()
        self._recover_orphans()
        for job in self.ledger.missing():
            if self._locate(job) == HERE:
                log.info("job.resumed", job_id=job.id, file=job.path)

    def _offer(self, ready: Ready) -> None:
        """Hash a settled file (unless its size+mtime were hashed before) and queue new content."""
        sha = self.ledger.cached_hash(ready.path, ready.size, ready.mtime_ns)
        if sha is None:
            if _dataless(ready.path):  # evicted to iCloud since the watcher looked: reading would download it
                self.watcher.forget(ready.path)  # the watcher's gate says file.dataless and waits for it
                return
            try:
                sha = sha256_file(ready.path)
            except FileNotFoundError:  # moved or deleted since the watcher's look: nothing to say or do
                self.watcher.forget(ready.path)
                return
            except OSError as exc:  # offered again at the next rescan, not forgotten until a restart
                if self._unreadable.get(ready.path) != (ready.size, ready.mtime_ns):  # said once, not per rescan
                    self._unreadable[ready.path] = (ready.size, ready.mtime_ns)
                    fix = explain(ready.path, exc) if isinstance(exc, PermissionError) else {}
                    log.warning("file.unreadable", file=str(ready.path), reason=str(exc), **fix)
                self.watcher.forget(ready.path)
                return
            self._unreadable.pop(ready.path, None)
            self.ledger.remember_hash(ready.path, ready.size, ready.mtime_ns, sha)
        before = self.ledger.by_content(ready.size, sha)
        job, created = self.ledger.offer(ready.path, ready.size, ready.mtime_ns, sha)
        if created and self._take_back(job, ready.path):
            return
        if created:
            log.info("job.queued", job_id=job.id, file=str(ready.path), size=ready.size)
        elif before is not None and before.path != job.path:
            self._moved(job, before)
        elif job.path != path_key(ready.path):  # a copy: not transcribed again, but answered beside it
            self.copies.offer(job, ready.path)

    def _take_back(self, job: Job, path: Path) -> bool:
        """New to the ledger, yet transcribed before (asrd's state was lost): done again from the
        JSON output beside it, with no second transcription and no `memo (2).txt` (asrd.recover)."""
        found = recover_outputs(path, job.sha256, list(self.config.outputs), self.manifest)
        if found is None:
            return False
        transcript = found.transcript
        self.transcripts.save(transcript)
        self.ledger.claim(job.id)
        self.ledger.complete(job.id, [str(p) for p in found.outputs], transcript.duration_s,
                             transcript.processing_s, transcript.rtf)
        log.info("job.recovered", job_id=job.id, file=job.path, outputs=[str(p) for p in found.outputs],
                 edited=[str(p) for p in found.edited] or None,
                 reason="its outputs are beside it: transcribed before asrd's state was lost")
        return True

    def _moved(self, job: Job, before: Job) -> None:
        """The recording was renamed or moved: its job follows it, and a done one's own unedited
        outputs move along beside it (so a new recording under the old name costs no transcript)."""
        if before.missing_since is not None:
            log.info("job.resumed", job_id=job.id, file=job.path, moved_from=before.path)
        else:
            log.info("job.moved", job_id=job.id, file=job.path, moved_from=before.path, state=job.state)
        if job.state == "done" and job.outputs:
            outputs = move_outputs(self.manifest, job.outputs, before.path, job.path, job.sha256)
            self.ledger.set_outputs(job.id, [str(p) for p in outputs])
            log.info("output.moved", job_id=job.id, file=job.path, outputs=[str(p) for p in outputs])

    # --- working ----------------------------------------------------------------------------

    def _locate(self, job: Job, thorough: bool = False) -> str:
        """Is the job's recording at its path? HERE, MISSING (the job waits; not an attempt) or
        CHANGED (the path holds other content: the job follows its content to another known path,
        or, if none holds it any more, is retired). thorough: hash it even if its mtime is unchanged."""
        state, why = self._source_state(job, thorough=thorough)
        if state == MISSING:
            if job.missing_since is None:
                self.ledger.mark_missing(job.id, why)
                log.warning("job.waiting", job_id=job.id, file=job.path, reason=why)
            return MISSING
        if job.missing_since is not None:
            self.ledger.found(job.id)
        if state == HERE:
            return HERE
        for other in self.ledger.paths_with_content(job.size, job.sha256):
            if other != job.path and self._source_state(job, other)[0] == HERE:
                self.ledger.found(job.id, other)
                log.info("job.moved", job_id=job.id, file=other, moved_from=job.path, state=job.state)
                return HERE
        self.ledger.retire(job.id, f"superseded: {why}")
        log.info("job.retired", job_id=job.id, file=job.path, reason=why)
        return CHANGED

    def _source_state(self, job: Job, path: str | None = None, thorough: bool = False) -> tuple[str, str]:
        """(HERE | MISSING | CHANGED, why) for the job's content at `path` (default: its own)."""
        path = str(on_disk(path or job.path))  # the ledger's NFC key, as the folder spells it
        try:
            st = os.stat(path)
            if not stat.S_ISREG(st.st_mode) or st.st_size != job.size:
                return CHANGED, f"{path} now holds another recording"
            if is_dataless(st):
                return MISSING, f"{path} is in iCloud only (not downloaded); it waits until it is"
            if (st.st_mtime_ns == job.mtime_ns and not thorough) or sha256_file(path) == job.sha256:
                return HERE, ""
            return CHANGED, f"{path} now holds another recording"
        except PermissionError:
            return MISSING, f"asrd may not read {path} (permissions); it waits until it can"
        except OSError:
            return MISSING, f"the recording is no longer at {path} (moved away, or its volume is gone); " \
                            "it resumes when the file is back in the inbox"

    def _work(self, job: Job) -> None:
        try:
            job = self.ledger.claim(job.id)  # first: atomic, so nothing below races an `asrd transcribe`
        except IllegalTransition:
            return  # another asrd process took it between our look and our claim
        crash_point("claimed")
        if self._locate(job) != HERE:
            return
        job = self.ledger.get(job.id)  # _locate may have followed the content to another path
        path = on_disk(job.path)
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
        stored = self.transcripts.load(job.sha256, path)
        if stored is not None:  # transcribed before its recording moved away: no need to recompute
            log.info("job.reused", reason="the transcript of this recording was already made")
            return JobOutcome(DONE, stored)
        # Never opened here: a recording that crashes or hangs its decoder would take the daemon
        # with it. The engine probes it, reports its length and turns a bad header into BAD_FILE.
        request = JobRequest(job.id, str(path), job.size, job.sha256)
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
        if decision.action in (RETRY, FAIL) and self._locate(job, thorough=True) != HERE:
            return  # the recording went away or changed under the job: that is no fault of the file
        if decision.action == FINISHED:
            self._finish(job, path, outcome)
            return
        if decision.action == RETRY:
            tries = job.attempts + job.crashes + 1
            delay = backoff_s(tries, base=self.config.engine.retry_delay_s)
            self.ledger.requeue(job.id, decision.reason, decision.count, delay_s=delay)
            log.warning("job.failed", job_id=job.id, file=job.path, reason=decision.reason, attempt=tries,
                        will_retry=True, retry_in_s=round(delay, 1))
            return
        if decision.action == FAIL:
            self._fail(job, path, decision.reason or "failed", decision.count)
            return
        # WAIT: not the recording's fault (models not loadable, or we are stopping)
        delay = 0.0 if outcome.status != LOAD_FAILED else backoff_s(self.engine.info.restarts, base=2.0, cap=300.0)
        self.ledger.requeue(job.id, outcome.reason if outcome.status == LOAD_FAILED else None, None, delay_s=delay)
        log.info("job.requeued", job_id=job.id, file=job.path, reason=outcome.reason)

    def _fail(self, job: Job, path: Path, reason: str, count: str | None) -> None:
        """Failed for good, with a record beside the recording (or in state_dir/errors when it
        cannot go there): a failure is never silent, and never kills the daemon."""
        failed = self.ledger.fail(job.id, reason, count=count)
        record = write_error_record(path, reason, failed.attempts, failed.crashes, fallback_dir=self._errors_dir)
        log.error("job.failed", job_id=job.id, file=job.path, reason=reason,
                  attempt=failed.attempts + failed.crashes, will_retry=False,
                  error_record=str(record) if record else None)
        self.copies.job_failed(failed)
        self.notifier.job_finished(failed)

    def _finish(self, job: Job, path: Path, outcome: JobOutcome) -> None:
        transcript = outcome.transcript
        assert transcript is not None
        self.transcripts.save(transcript)  # before the source check: a moved recording costs no recompute
        where = self._locate(self.ledger.get(job.id), thorough=True)  # no transcript of half a recording
        if where != HERE:
            return
        job = self.ledger.get(job.id)
        if job.path != path_key(path):  # the recording moved while it was transcribed: outputs go beside it
            path = on_disk(job.path)
            transcript = self.transcripts.load(job.sha256, path) or transcript
        started = time.perf_counter()
        outputs = write_outputs(transcript, path, self.config.outputs, self.manifest)
        crash_point("before_commit")
        write_s = time.perf_counter() - started
        remove_error_record(path, fallback_dir=self._errors_dir)
        done = self.ledger.complete(job.id, [str(p) for p in outputs], transcript.duration_s,
                                    transcript.processing_s, transcript.rtf)
        timings = transcript.stats.get("timings", {})
        log.info("job.done", job_id=job.id, file=job.path, audio_s=round(transcript.duration_s, 2),
                 processing_s=round(transcript.processing_s, 2), rtf=round(transcript.rtf, 4),
                 segments=len(transcript.segments), outputs=[str(p) for p in outputs], device=transcript.device,
                 load_s=round(self.engine.info.load_s or 0.0, 2), write_s=round(write_s, 3), **timings,
                 memory=outcome.memory, speech=summary(transcript.stats.get("speech", {})))
        self.copies.job_done(done)
        self.notifier.job_finished(done)

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
            "inbox_unreadable": self.watcher.unreadable,  # why it cannot be listed (privacy protection, permissions)
            "waiting_files": [str(p) for p in self.watcher.waiting()],
            "engine": {"state": engine.state, "pid": engine.pid, "device": engine.device,
                       "load_s": None if engine.load_s is None else round(engine.load_s, 2),
                       "jobs_served": engine.jobs_served, "restarts": engine.restarts,
                       "last_error": engine.last_error, "preset": self.config.model.preset,
                       "models": self.config.models(), "memory_mb": engine.memory_mb,
                       "memory_limit_mb": engine.memory_limit_mb, "shapes": engine.shapes,
                       "device_fallbacks": engine.device_fallbacks, "device_note": engine.device_note},
            "job": self._current,
        })


def _dataless(path: Path) -> bool:
    try:
        return is_dataless(os.stat(path))
    except OSError:
        return False


def cleanup_temp_files_under(folder: Path) -> list[Path]:
    """Temp files whose writer died mid-write (a SIGKILL), anywhere under `folder`."""
    removed: list[Path] = []
    for dirpath, _dirs, _files in os.walk(folder):
        removed.extend(cleanup_temp_files(dirpath))
    return removed
