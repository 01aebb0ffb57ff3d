"""Copies of a recording asrd already has: each gets its own transcripts, from one transcription.

The ledger keeps one job per content, so a byte-identical copy (another folder, `Recording (1).m4a`)
is never transcribed again; but people look beside the file, so the copy gets the finished job's
outputs re-rendered under its own name (paths and titles inside are the copy's), written and owned
like any output. A copy of a recording still queued or running is served when that job finishes;
a copy of a failed recording gets the error record.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

from asrd.error_record import error_record_path, write_error_record
from asrd.ledger import Job
from asrd.logging import get_logger
from asrd.manifest import Manifest, on_disk, path_key
from asrd.output import write_outputs
from asrd.transcript import Transcript
from asrd.transcript_store import TranscriptStore

log = get_logger("asrd.copies")


class Copies:
    def __init__(self, manifest: Manifest, transcripts: TranscriptStore, formats: Sequence[str], errors_dir: Path):
        self.manifest = manifest
        self.transcripts = transcripts
        self.formats = list(formats)
        self.errors_dir = errors_dir
        self._waiting: dict[int, set[str]] = {}  # job id -> copies to serve when it ends (rebuilt by rescans)

    def offer(self, job: Job, copy: Path) -> None:
        """A copy of `job`'s recording was found at `copy`."""
        log.info("file.duplicate", job_id=job.id, file=str(copy), same_as=job.path, state=job.state)
        if job.state == "done":
            self._write(job, path_key(copy))
        elif job.state == "failed":
            self._fail(job, path_key(copy))
        else:
            self._waiting.setdefault(job.id, set()).add(path_key(copy))

    def job_done(self, job: Job) -> None:
        for copy in sorted(self._waiting.pop(job.id, ())):
            self._write(job, copy)

    def job_failed(self, job: Job) -> None:
        for copy in sorted(self._waiting.pop(job.id, ())):
            self._fail(job, copy)

    def _holds(self, job: Job, copy: str) -> bool:
        """Is `copy` still a copy (there, the same size, not the recording's own path)?"""
        try:
            return copy != job.path and on_disk(copy).stat().st_size == job.size
        except OSError:
            return False

    def _write(self, job: Job, copy: str) -> None:
        if not self._holds(job, copy) or self.manifest.outputs_of(copy, job.sha256):
            return  # gone, or it has its transcripts already (a rescan or a restart saw it again)
        where = on_disk(copy)  # the key is NFC; the folder may spell the name NFD
        transcript = self.transcripts.load(job.sha256, where) or _from_json_output(job, str(where))
        if transcript is None:
            log.warning("copy.not_written", job_id=job.id, file=copy, same_as=job.path,
                        reason="no stored transcript of this recording (made by an older asrd)",
                        hint="`asrd transcribe --force FILE` transcribes the copy too")
            return
        try:
            outputs = write_outputs(transcript, where, self.formats, self.manifest)
        except OSError as exc:  # the copy's folder is read-only or full: its original is unaffected
            log.warning("copy.not_written", job_id=job.id, file=copy, same_as=job.path, reason=str(exc))
            return
        log.info("copy.done", job_id=job.id, file=copy, same_as=job.path, outputs=[str(p) for p in outputs])

    def _fail(self, job: Job, copy: str) -> None:
        if not self._holds(job, copy) or error_record_path(on_disk(copy)).exists():
            return
        reason = f"{job.last_error or 'failed'} (the same recording as {job.path})"
        record = write_error_record(on_disk(copy), reason, job.attempts, job.crashes, fallback_dir=self.errors_dir)
        log.warning("copy.failed", job_id=job.id, file=copy, same_as=job.path,
                    error_record=str(record) if record else None)


def _from_json_output(job: Job, copy: str) -> Transcript | None:
    """The transcript from the original's json output, for a job done before transcripts were stored."""
    for output in job.outputs:
        if output.endswith(".json"):
            try:
                transcript = Transcript.from_dict(json.loads(Path(output).read_text(encoding="utf-8")))
            except (OSError, ValueError, KeyError, TypeError):
                continue
            if transcript.source.sha256 == job.sha256:
                transcript.source.path = copy
                return transcript
    return None
