"""`asrd bench`: asrd's pipeline against FunASR's own `AutoModel.generate()`, same audio, same run.

Speed targets are ratios against a baseline measured in the same run (never absolute times in unit
tests): `ratio` < 1 means asrd is faster than calling FunASR directly. Also checks that both give
the same words, and reports memory per device. Imports torch and funasr (engine-side only).
"""

from __future__ import annotations

import json
import statistics
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from asrd import audio
from asrd.config import Config
from asrd.engine.device import empty_cache, memory_figures
from asrd.engine.funasr import FunASREngine, Timings, automodel_kwargs
from asrd.engine.quiet import captured_output
from asrd.transcript import SourceInfo


@dataclass
class BenchResult:
    device: str
    audio_s: float
    runs: int
    asrd_s: list[float] = field(default_factory=list)
    funasr_s: list[float] = field(default_factory=list)
    same_words: bool = False
    segments: int = 0
    asr_calls: int = 0  # asrd's batched model calls over the file (FunASR's own batching differs per device)
    memory: dict[str, float] = field(default_factory=dict)
    peak_gpu_mb: dict[str, float] = field(default_factory=dict)  # cuda: each side's peak allocation

    @property
    def asrd_rtf(self) -> float:
        return statistics.median(self.asrd_s) / self.audio_s

    @property
    def funasr_rtf(self) -> float:
        return statistics.median(self.funasr_s) / self.audio_s

    @property
    def ratio(self) -> float:
        return statistics.median(self.asrd_s) / statistics.median(self.funasr_s)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "asrd_rtf": round(self.asrd_rtf, 5), "funasr_rtf": round(self.funasr_rtf, 5),
                "ratio": round(self.ratio, 3)}


def long_audio(path: Path, repeat: int) -> np.ndarray:
    """The recording repeated `repeat` times: a long file from a short committed clip."""
    samples = audio.decode(path).samples
    return np.tile(samples, repeat).astype(np.float32)


def run_bench(config: Config, clip: Path, repeat: int = 10, runs: int = 3) -> BenchResult:
    samples = long_audio(clip, repeat)
    engine = FunASREngine(config)
    engine.load()
    with captured_output():
        from funasr import AutoModel

        baseline = AutoModel(**automodel_kwargs(config, engine.device))
    options = engine._options()
    result = BenchResult(device=engine.device, audio_s=len(samples) / 16000, runs=runs)
    source = SourceInfo(str(clip), 0, "")
    torch = engine._torch
    for round_no in range(runs + 1):  # round 0 warms both up and is not counted
        _reset_peak(engine.device, torch)
        started = time.perf_counter()
        transcript = engine.transcribe(samples, source)
        asrd_s = time.perf_counter() - started
        _record_peak(result, "asrd", engine.device, torch)
        started = time.perf_counter()
        with captured_output():
            theirs = baseline.generate(input=samples, **options)[0]
        empty_cache(engine.device, torch)
        funasr_s = time.perf_counter() - started
        _record_peak(result, "funasr", engine.device, torch)
        if round_no:
            result.asrd_s.append(round(asrd_s, 4))
            result.funasr_s.append(round(funasr_s, 4))
    regions = engine.detect_speech(samples)
    result.asr_calls = len(engine.batches(regions))
    ours = engine.recognise(samples, regions, Timings())
    result.same_words = " ".join(r.raw_text for r in ours) == theirs.get("text")
    result.segments = len(transcript.segments)
    result.memory = memory_figures(engine.device, engine._torch)
    return result


def _reset_peak(device: str, torch: Any) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _record_peak(result: BenchResult, side: str, device: str, torch: Any) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
        peak = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        result.peak_gpu_mb[side] = max(result.peak_gpu_mb.get(side, 0.0), peak)
        torch.cuda.reset_peak_memory_stats()


def main(config: Config, clip: Path, repeat: int, runs: int, as_json: bool) -> int:
    result = run_bench(config, clip, repeat, runs)
    if as_json:
        print(json.dumps(result.to_dict(), indent=2))
    else:
        print(f"device {result.device}: {result.audio_s:.0f} s of audio, {result.segments} segments, {runs} runs")
        print(f"asrd    RTF {result.asrd_rtf:.4f}  (median {statistics.median(result.asrd_s):.2f} s)")
        print(f"funasr  RTF {result.funasr_rtf:.4f}  (median {statistics.median(result.funasr_s):.2f} s)")
        print(f"ratio asrd/funasr {result.ratio:.3f}; same words: {result.same_words}; "
              f"asrd ASR calls {result.asr_calls}; memory {result.memory}"
              + (f"; peak GPU MB {result.peak_gpu_mb}" if result.peak_gpu_mb else ""))
    return 0 if result.same_words else 1
