"""`asrd transcribe PATH...`: transcribe recordings now and write the transcripts beside them.

Exit 0 when every file succeeded, 1 when any failed (one line each; nothing is written for it),
2 for bad usage or config.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import structlog

from asrd import audio
from asrd.abandoned import release_abandoned
from asrd.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from asrd.config import Config, load_config
from asrd.engine.process import LOAD_FAILED, EngineProcess
from asrd.engine.protocol import JobRequest
from asrd.hashing import sha256_file
from asrd.interrupt import signals_deferred, stop_on_signals
from asrd.ledger import IllegalTransition, Job, Ledger
from asrd.logging import get_logger, setup_logging
from asrd.manifest import Manifest, path_key
from asrd.output import FORMATS, write_outputs
from asrd.policy import FAIL, FINISHED, WAIT, decide
from asrd.progress import ProgressBar
from asrd.transcript_store import TranscriptStore

log = get_logger("asrd.transcribe")


def parse_formats(text: str | None, config: Config) -> list[str]:
    if not text:
        return list(config.outputs)
    formats = [f.strip().lower() for f in text.split(",") if f.strip()]
    unknown = [f for f in formats if f not in FORMATS]
    if unknown or not formats:
        raise ValueError(f"--format {text!r}: unknown format {', '.join(unknown) or '(none)'}; "
                         f"use a comma-separated list of: {', '.join(FORMATS)}")
    return formats


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        formats = parse_formats(args.format, config)
    except ValueError as exc:
        print(f"asrd: {exc}", file=sys.stderr)
        return EXIT_USAGE
    # the terminal shows problems, and a first-use model download's progress (it can take minutes)
    setup_logging(config.log_file, config.log_level, console=True, console_level="warning",
                  console_also=("models.",))
    engine = EngineProcess(config)
    manifest = Manifest(config.state_dir)
    ledger = Ledger(config.state_dir)
    failed = 0
    with stop_on_signals():  # a closed terminal or `kill` stops it as Ctrl-C does: engine ended, job released
        try:
            for name in args.paths:
                path = Path(name).expanduser().absolute()
                try:
                    if not _transcribe_one(engine, config, manifest, ledger, formats, path, args.force):
                        failed += 1
                except ModelsUnavailable as exc:
                    print(f"asrd: cannot load the models: {exc}", file=sys.stderr)
                    return EXIT_FAILED
        finally:
            engine.stop()
    return EXIT_FAILED if failed else EXIT_OK


class ModelsUnavailable(Exception):
    """The engine could not load its models: no file can be transcribed."""


def _transcribe_one(engine, config: Config, manifest: Manifest, ledger: Ledger, formats: list[str], path: Path,
                    force: bool) -> bool:
    try:
        if path.is_dir():
            raise audio.AudioError(path, "is a folder; give the recordings inside it")
        info = audio.probe(path)
        st = path.stat()
        sha = sha256_file(path)
    except audio.AudioError as exc:
        return _report_failure(path, exc.reason)
    if not force and _render_missing_formats(config, manifest, ledger, formats, path, st, sha):
        return True
    claimed = None
    try:
        with signals_deferred():  # a Ctrl-C lands before the claim or after we know we hold the job
            claimed = _claim(ledger, path, st, sha, force)
        if claimed is None:
            return True
        job = claimed[0]
        request = JobRequest(job_id=job.id, path=str(path), size=st.st_size, sha256=sha, audio_s=info.duration_s)
        with structlog.contextvars.bound_contextvars(job_id=job.id, file=str(path)):
            return _run(engine, config, manifest, ledger, formats, path, request)
    finally:
        if claimed is not None:
            _release_if_abandoned(ledger, config, *claimed, path)


def _render_missing_formats(config: Config, manifest: Manifest, ledger: Ledger, formats: list[str], path: Path,
                            st: os.stat_result, sha: str) -> bool:
    """A done recording asked for formats it lacks (`--format vtt`): render them from its stored
    transcript, with no recompute and no --force. True if that answered the request."""
    job = ledger.by_content(st.st_size, sha)
    if job is None or job.state != "done" or job.path != path_key(path):
        return False
    have = {Path(o).suffix.lstrip(".") for o in job.outputs if Path(o).exists()}
    missing = [fmt for fmt in formats if fmt not in have]
    transcript = TranscriptStore(config.state_dir).load(sha, path) if missing else None
    if transcript is None:
        return False
    written = write_outputs(transcript, path, missing, manifest)
    ledger.set_outputs(job.id, [*job.outputs, *(str(p) for p in written)])
    log.info("output.added", job_id=job.id, file=str(path), outputs=[str(p) for p in written])
    print(f"done    {path} -> {', '.join(p.name for p in written)}  (from its transcript; nothing recomputed)")
    return True


def _release_if_abandoned(ledger: Ledger, config: Config, job: Job, before: Job | None, path: Path) -> None:
    """A job still running here was abandoned (a signal, models that cannot load, a bug): release it."""
    if ledger.get(job.id).state == "running":
        release_abandoned(ledger, config, job.id, before, path)


def _claim(ledger: Ledger, path: Path, st: os.stat_result, sha: str, force: bool) -> tuple[Job, Job | None] | None:
    """(the ledger job for this content, claimed; the job as it was before, None if new this run);
    None (with a line saying why) to skip the file.

    A recording named on the command line is wanted now: one that failed before gets a fresh try,
    a done one is skipped unless --force, one a live daemon is working on is left to it.
    """
    job, created = ledger.offer(path, st.st_size, st.st_mtime_ns, sha)
    copy_of = f" (the same recording as {job.path})" if job.path != path_key(path) else ""
    if job.state == "done" and not force:
        written = f" ({', '.join(Path(o).name for o in job.outputs)})" if job.outputs else \
            ", but no transcripts were written"
        print(f"skipped {path}: already transcribed{copy_of}{written}; --force redoes it")
        return None
    if job.state == "running":
        ledger.recover_running()  # the job of an asrd that died mid-job goes back to queued
        job = ledger.get(job.id)
        if job.state == "running":
            print(f"skipped {path}: being transcribed by another asrd process right now{copy_of}")
            return None
    before = None if created else job
    if job.state in ("done", "failed"):
        ledger.retry_job(job.id)
    try:
        return ledger.claim(job.id), before
    except IllegalTransition:  # the daemon took it between our look and our claim
        print(f"skipped {path}: being transcribed by another asrd process right now{copy_of}")
        return None


def _run(engine, config: Config, manifest: Manifest, ledger: Ledger, formats: list[str], path: Path,
         request: JobRequest) -> bool:
    attempts = crashes = 0
    bar = ProgressBar(path.name)
    log.info("job.started", audio_s=round(request.audio_s, 2))
    while True:
        outcome = engine.run(request, lambda p: bar.update(p.fraction, f"{p.segments_done}/{p.segments_total} "
                                                                      "segments", p.done_s),
                             on_stage=lambda s: bar.stage(s.stage))
        bar.close()
        decision = decide(outcome.status, outcome.reason, attempts, crashes, config.engine)
        if decision.action == FINISHED:
            break
        if decision.action == WAIT:
            if outcome.status == LOAD_FAILED:
                raise ModelsUnavailable(outcome.reason)
            continue
        attempts += decision.count == "attempt"
        crashes += decision.count == "crash"
        if decision.action == FAIL:
            ledger.fail(request.job_id, decision.reason or "failed")
            return _report_failure(path, decision.reason or "failed")
        log.warning("job.retry", reason=decision.reason, attempts=attempts, crashes=crashes)
    transcript = outcome.transcript
    TranscriptStore(config.state_dir).save(transcript)  # later formats and moves need no recompute
    outputs = write_outputs(transcript, path, formats, manifest)
    ledger.complete(request.job_id, [str(p) for p in outputs], transcript.duration_s, transcript.processing_s,
                    transcript.rtf)
    log.info("job.done", audio_s=round(transcript.duration_s, 2), processing_s=round(transcript.processing_s, 2),
             rtf=round(transcript.rtf, 4), segments=len(transcript.segments), outputs=[str(p) for p in outputs],
             device=transcript.device)
    print(f"done    {path} -> {', '.join(p.name for p in outputs)}  "
          f"({transcript.duration_s:.1f} s audio, {transcript.processing_s:.1f} s, RTF {transcript.rtf:.3f})")
    return True


def _report_failure(path: Path, reason: str) -> bool:
    log.warning("job.failed", file=str(path), reason=reason)
    print(f"failed  {path}: {reason}", file=sys.stderr)
    return False
