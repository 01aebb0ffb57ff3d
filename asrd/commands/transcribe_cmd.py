"""`asrd transcribe PATH...`: transcribe recordings now and write the transcripts beside them.

Exit 0 when every file succeeded, 1 when any failed (one line each; nothing is written for it),
2 for bad usage or config.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asrd import audio
from asrd.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from asrd.config import Config, load_config
from asrd.hashing import sha256_file
from asrd.logging import get_logger, setup_logging
from asrd.manifest import Manifest
from asrd.output import FORMATS, write_outputs
from asrd.progress import ProgressBar

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
    setup_logging(config.log_file, config.log_level, console=True, console_level="warning")
    from asrd.engine.funasr import FunASREngine
    from asrd.engine.job import JobRequest, run_job

    engine = FunASREngine(config)
    manifest = Manifest(config.state_dir)
    failed = 0
    for index, name in enumerate(args.paths, 1):
        path = Path(name).expanduser().absolute()
        bar = ProgressBar(path.name)
        try:
            if path.is_dir():
                raise audio.AudioError(path, "is a folder; give the recordings inside it")
            info = audio.probe(path)
            if not engine.loaded:
                engine.load()
            request = JobRequest(job_id=f"cli-{index}", path=str(path), size=path.stat().st_size,
                                 sha256=sha256_file(path))
            log.info("job.started", job_id=request.job_id, file=str(path), audio_s=round(info.duration_s, 2))
            transcript = run_job(engine, request, lambda p: bar.update(
                p.fraction, f"{p.segments_done}/{p.segments_total} segments", p.done_s))
            outputs = write_outputs(transcript, path, formats, manifest)
        except audio.AudioError as exc:
            bar.close()
            failed += 1
            log.warning("job.failed", file=str(path), reason=exc.reason)
            print(f"failed  {path}: {exc.reason}", file=sys.stderr)
            continue
        bar.close()
        log.info("job.done", job_id=request.job_id, file=str(path), audio_s=round(transcript.duration_s, 2),
                 processing_s=round(transcript.processing_s, 2), rtf=round(transcript.rtf, 4),
                 segments=len(transcript.segments), outputs=[str(p) for p in outputs], device=transcript.device)
        print(f"done    {path} -> {', '.join(p.name for p in outputs)}  "
              f"({transcript.duration_s:.1f} s audio, {transcript.processing_s:.1f} s, RTF {transcript.rtf:.3f})")
    return EXIT_FAILED if failed else EXIT_OK
