"""Tight speech bounds inside a VAD region, for the times users see.

FSMN-VAD pads each region (~200 ms before speech, more after, and runs the last region to the end
of the file when less than ~1 s of silence follows). The model still gets FunASR's exact VAD slice;
only the reported start/end move in to where the sound really starts and stops, so subtitles
appear with the voice and speech statistics count speech, not padding. Never widens a region.
"""

from __future__ import annotations

import numpy as np

FRAME_MS = 10
MARGIN_MS = 50  # keep a little air around the voice
BELOW_PEAK_DB = 35.0  # quieter than this under the region's loudest frame is not voice
FLOOR_FACTOR = 3.0  # ...nor anything within 3x of the file's noise floor


RMS_CHUNK_FRAMES = 6000  # one minute of 10 ms frames at a time


def frame_rms(samples: np.ndarray, rate: int = 16000) -> np.ndarray:
    """RMS per 10 ms frame, a minute at a time: the whole file in float64 at once cost a 2-hour
    recording 1.7 GB of peak memory on top of its samples."""
    step = rate * FRAME_MS // 1000
    usable = len(samples) // step * step
    frames = samples[:usable].reshape(-1, step)
    rms = np.zeros(len(frames))
    for at in range(0, len(frames), RMS_CHUNK_FRAMES):
        chunk = frames[at:at + RMS_CHUNK_FRAMES].astype(np.float64)
        rms[at:at + len(chunk)] = np.sqrt((chunk**2).mean(axis=1))
    return rms


def noise_floor(rms: np.ndarray) -> float:
    return float(np.percentile(rms, 5)) if rms.size else 0.0


def tighten(rms: np.ndarray, floor: float, start_ms: int, end_ms: int) -> tuple[int, int]:
    """(start_ms, end_ms) moved in to the first and last voiced frame, plus a margin."""
    first, last = start_ms // FRAME_MS, min(end_ms // FRAME_MS, rms.size)
    region = rms[first:last]
    if region.size == 0:
        return start_ms, end_ms
    threshold = max(region.max() * 10 ** (-BELOW_PEAK_DB / 20), floor * FLOOR_FACTOR)
    voiced = np.flatnonzero(region > threshold)
    if voiced.size == 0:
        return start_ms, end_ms
    new_start = (first + voiced[0]) * FRAME_MS - MARGIN_MS
    new_end = (first + voiced[-1] + 1) * FRAME_MS + MARGIN_MS
    return max(start_ms, new_start), min(end_ms, new_end)
