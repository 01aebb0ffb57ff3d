"""One job inside the engine: decode the recording, transcribe it, time every stage.

The decoder runs here, beside the models, so a decoder crash or a 3-hour file's samples stay in
the engine process; the daemon only probes headers.
"""

from __future__ import annotations

import time
from pathlib import Path

from asrd import audio
from asrd.engine.funasr import FunASREngine, ProgressCallback
from asrd.engine.protocol import JobRequest
from asrd.transcript import SourceInfo, Transcript


def run_job(engine: FunASREngine, request: JobRequest, on_progress: ProgressCallback | None = None) -> Transcript:
    """Decode + transcribe; raises audio.AudioError for a recording that cannot be decoded."""
    started = time.perf_counter()
    decoded = audio.decode(request.path)
    decode_s = time.perf_counter() - started
    source = SourceInfo(str(Path(request.path).absolute()), request.size, request.sha256)
    transcript = engine.transcribe(decoded.samples, source, on_progress)
    transcript.processing_s = time.perf_counter() - started
    transcript.stats.setdefault("timings", {})["decode_s"] = round(decode_s, 3)
    return transcript
