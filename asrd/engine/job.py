"""One job inside the engine: open the recording, decode it, transcribe it, time every stage.

Everything that opens the recording runs here, beside the models: the header probe and the
decoder are libsndfile/FFmpeg parsing an untrusted file, so their crash or hang costs this process
(which the parent restarts or kills at the job's time limit), never the daemon.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Protocol

from asrd import audio
from asrd.engine import fallback
from asrd.engine.funasr import FunASREngine, ProgressCallback
from asrd.engine.protocol import DECODING, DETECTING_SPEECH, OPENING, JobRequest
from asrd.transcript import SourceInfo, Transcript


class StageCallback(Protocol):
    def __call__(self, stage: str, audio_s: float | None = None) -> None: ...


def _no_stages(stage: str, audio_s: float | None = None) -> None:
    pass


def run_job(engine: FunASREngine, request: JobRequest, on_progress: ProgressCallback | None = None,
            on_stage: StageCallback = _no_stages, on_fallback: fallback.FallbackCallback | None = None) -> Transcript:
    """Probe + decode + transcribe; raises audio.AudioError for a recording that cannot be decoded or
    is over `limits` (refused from its size and header, before a sample is decoded).
    on_stage hears each stage as it starts, with the length once the header, then the samples, tell it;
    on_fallback hears an op failing on the Apple GPU before the job is re-run on the CPU."""
    started = time.perf_counter()
    on_stage(OPENING)
    limits = engine.config.limits
    if request.size > limits.max_bytes:
        raise audio.AudioError(request.path, f"too large: {request.size} bytes, over limits.max_bytes "
                                             f"({limits.max_bytes})")
    header = audio.probe(request.path)
    if header.duration_s > limits.max_duration_s:
        raise audio.AudioError(request.path, f"too long: its header says {audio.hours(header.duration_s)}, over "
                                             f"limits.max_duration_s ({audio.hours(limits.max_duration_s)})")
    on_stage(DECODING, header.duration_s or None)  # 0: the container does not say (a streamed webm)
    decoded = audio.decode(request.path, max_duration_s=limits.max_duration_s)
    decode_s = time.perf_counter() - started
    on_stage(DETECTING_SPEECH, decoded.duration_s)
    source = SourceInfo(str(Path(request.path).absolute()), request.size, request.sha256)
    transcript = fallback.transcribe(engine, decoded.samples, source, on_progress, on_stage, on_fallback)
    transcript.processing_s = time.perf_counter() - started
    transcript.stats.setdefault("timings", {})["decode_s"] = round(decode_s, 3)
    return transcript
