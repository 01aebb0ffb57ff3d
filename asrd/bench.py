"""`asrd bench`: asrd against every way of running FunASR, same audio, same process, same run.

Speed targets are ratios against baselines measured in the same run (never absolute times in unit
tests). The baselines are the FunASR configurations people use: `generate()` with its defaults (VAD
on the ASR device), with the settings FunASR's README gives for SenseVoice, with the VAD on the CPU
(the fastest), and one speech segment per call (what a one-call-at-a-time GPU path costs). asrd runs
with the given config, and one call at a time (the MPS path) where that differs. Runs alternate
between configurations (round 0 warms up and is not counted); medians are reported, with each
configuration's ratio to the fastest FunASR one, asrd's stage times and ASR calls, peak GPU memory,
and whether asrd's words equal those of the FunASR configuration that feeds the model the same
segments. Imports torch and funasr (engine-side only).
"""

from __future__ import annotations

import difflib
import json
import statistics
import tempfile
import time
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from asrd import audio
from asrd.config import Config
from asrd.engine.compat import funasr_own
from asrd.engine.device import empty_cache, memory_figures
from asrd.engine.funasr import FunASREngine, Timings, automodel_kwargs
from asrd.engine.quiet import captured_output
from asrd.transcript import SourceInfo

FUNASR, ASRD = "funasr", "asrd"
LONGEST_MERGE_S = 30.0
README_SETTINGS = {"batch_size_s": 60, "merge_vad": True, "merge_length_s": 15}  # FunASR's SenseVoice README
ONE_PER_CALL = {"batch_size_s": 0}  # FunASR flushes a batch once it would pass max(0 s, 1 ms)


@dataclass
class Variant:
    """One configuration: how to run it once over the samples, and its results."""

    name: str
    side: str  # FUNASR or ASRD
    run: Callable[[np.ndarray], dict[str, float]] = field(repr=False)  # returns stage times (asrd)
    words: Callable[[np.ndarray], str] = field(repr=False)  # the raw text, for the same-words check
    compare_with: str | None = None  # the FunASR variant that feeds the model the same segments
    count_calls: Callable[[list[tuple[int, int]]], int] | None = field(default=None, repr=False)  # asrd
    word_similarity: float | None = None  # difflib ratio of the words against compare_with's
    wall_s: list[float] = field(default_factory=list)
    stages: list[dict[str, float]] = field(default_factory=list)
    peak_gpu_mb: float | None = None
    asr_calls: int | None = None
    same_words: bool | None = None

    @property
    def median_s(self) -> float:
        return statistics.median(self.wall_s)


@dataclass
class BenchResult:
    device: str
    audio_s: float
    runs: int
    regions: int
    variants: list[Variant]
    decode_s: float = 0.0  # asrd decoding the long file from a wav (both sides get the samples)
    write_s: float = 0.0  # asrd writing the configured outputs once
    memory: dict[str, float] = field(default_factory=dict)

    def fastest_funasr(self) -> Variant:
        return min((v for v in self.variants if v.side == FUNASR), key=lambda v: v.median_s)

    def variant(self, name: str) -> Variant:
        return next(v for v in self.variants if v.name == name)

    def to_dict(self) -> dict[str, Any]:
        fastest = self.fastest_funasr()
        rows = []
        for v in self.variants:
            stages = {k: round(statistics.median(s[k] for s in v.stages), 4) for k in v.stages[0]} if v.stages else {}
            rows.append({"name": v.name, "side": v.side, "median_s": round(v.median_s, 4), "wall_s": v.wall_s,
                         "rtf": round(v.median_s / self.audio_s, 5),
                         "ratio_to_fastest_funasr": round(v.median_s / fastest.median_s, 3),
                         "stages_s": stages, "asr_calls": v.asr_calls, "peak_gpu_mb": v.peak_gpu_mb,
                         "compare_with": v.compare_with, "same_words": v.same_words,
                         "word_similarity": v.word_similarity})
        return {"device": self.device, "audio_s": round(self.audio_s, 1), "runs": self.runs,
                "speech_regions": self.regions, "fastest_funasr": fastest.name, "decode_s": round(self.decode_s, 3),
                "write_s": round(self.write_s, 3), "memory": self.memory, "variants": rows}

    @property
    def same_words(self) -> bool:
        """asrd's words equal FunASR's wherever both feed the model the same segments (a merged call
        is compared with asrd's own per-region calls, and only reported)."""
        funasr = {v.name for v in self.variants if v.side == FUNASR}
        return all(v.same_words is not False for v in self.variants if v.compare_with in funasr)


def long_audio(path: Path, repeat: int) -> np.ndarray:
    """The recording repeated `repeat` times: a long file from a short committed clip."""
    samples = audio.decode(path).samples
    return np.tile(samples, repeat).astype(np.float32)


def funasr_variants(config: Config, device: str, options: dict[str, Any]) -> list[Variant]:
    """FunASR's own generate(), as people run it. On the CPU "defaults" already has the VAD there."""
    with captured_output():
        from funasr import AutoModel

        on_device = dict(automodel_kwargs(config, device))
        for key in ("vad_kwargs", "punc_kwargs", "spk_kwargs"):  # as people run it: all on the ASR device
            on_device[key] = {k: v for k, v in on_device.get(key, {}).items() if k != "device"}
        default = AutoModel(**on_device)
        vad_cpu = default
        if device != "cpu":
            vad_cpu = AutoModel(**{**on_device, "vad_kwargs": {**on_device["vad_kwargs"], "device": "cpu"}})

    def generate(model: Any, extra: dict[str, Any]) -> tuple[Callable, Callable]:
        def text(samples: np.ndarray) -> str:
            with captured_output(), funasr_own():  # FunASR's own per-frame loops, not asrd's drop-ins
                return str(model.generate(input=samples, **{**options, **extra})[0].get("text", ""))

        def run(samples: np.ndarray) -> dict[str, float]:
            text(samples)
            return {}

        return run, text

    variants = [Variant("funasr generate() defaults", FUNASR, *generate(default, {})),
                Variant("funasr README settings (batch_size_s=60, merge_vad, merge_length_s=15)", FUNASR,
                        *generate(default, README_SETTINGS))]
    if device != "cpu":
        variants.append(Variant("funasr VAD on the CPU", FUNASR, *generate(vad_cpu, {})))
    variants.append(Variant("funasr one segment per call (VAD on the CPU)", FUNASR, *generate(vad_cpu, ONE_PER_CALL)))
    return variants


def asrd_variants(engine: FunASREngine, same_segments: str, per_call: str) -> list[Variant]:
    """asrd as configured, and its one-call-at-a-time path (MPS's): one region per call, and adjacent
    regions merged up to model.merge_length_s, whose words are compared with the per-region calls."""
    source = SourceInfo("bench.wav", 0, "")
    config = engine.config

    def mode(calls: str | None, merge_length_s: float | None) -> dict[str, Any]:
        def enter() -> None:
            engine.calls = calls
            if merge_length_s is not None:
                engine.config = replace(config, model=replace(config.model, merge_length_s=merge_length_s))

        def leave() -> None:
            engine.calls, engine.config = None, config

        def run(samples: np.ndarray) -> dict[str, float]:
            enter()
            try:
                return dict(engine.transcribe(samples, source).stats.get("timings", {}))
            finally:
                leave()

        def words(samples: np.ndarray) -> str:
            enter()
            try:
                regions = engine.detect_speech(samples)
                return " ".join(r.raw_text for r in engine.recognise(samples, regions, Timings()))
            finally:
                leave()
                empty_cache(engine.device, engine._torch)

        def calls_for(regions: list[tuple[int, int]]) -> int:
            enter()
            try:
                return engine.asr_calls(regions)
            finally:
                leave()

        return {"run": run, "words": words, "count_calls": calls_for}

    merge_s = config.model.merge_length_s
    one_each = "asrd one call at a time, one region per call"
    variants = [Variant("asrd (this config)", ASRD, **mode(None, None), compare_with=same_segments),
                Variant(one_each, ASRD, **mode("sequential", 0), compare_with=per_call),
                Variant(f"asrd one call at a time, merged up to {merge_s:g} s (the MPS path)", ASRD,
                        **mode("sequential", None), compare_with=one_each)]
    if merge_s < LONGEST_MERGE_S:  # what a longer model.merge_length_s would give (SenseVoice is trained on <= 30 s)
        variants.append(Variant(f"asrd one call at a time, merged up to {LONGEST_MERGE_S:g} s", ASRD,
                                **mode("sequential", LONGEST_MERGE_S), compare_with=one_each))
    return variants


def run_bench(config: Config, clip: Path, repeat: int = 10, runs: int = 3) -> BenchResult:
    samples = long_audio(clip, repeat)
    engine = FunASREngine(config)
    engine.load()
    device = engine.device
    torch = engine._torch
    options = engine._options()
    baselines = funasr_variants(config, device, options)
    same_segments = baselines[2].name if device != "cpu" else baselines[0].name
    variants = baselines + asrd_variants(engine, same_segments, baselines[-1].name)
    for round_no in range(runs + 1):  # round 0 warms every configuration up and is not counted
        for variant in variants:
            _reset_peak(device, torch)
            started = time.perf_counter()
            stages = variant.run(samples)
            wall = time.perf_counter() - started
            if variant.side == FUNASR:
                empty_cache(device, torch)  # asrd does this inside its job; the same work for both
                wall = time.perf_counter() - started
            peak = _peak_mb(device, torch)
            if round_no:
                variant.wall_s.append(round(wall, 4))
                variant.stages.append(stages)
                variant.peak_gpu_mb = peak if variant.peak_gpu_mb is None else max(variant.peak_gpu_mb, peak or 0)
    regions = engine.detect_speech(samples)
    texts = {v.name: v.words(samples) for v in variants}
    for variant in variants:
        if variant.compare_with:
            variant.same_words = _words(texts[variant.name]) == _words(texts[variant.compare_with])
            variant.word_similarity = round(difflib.SequenceMatcher(
                None, texts[variant.name].split(), texts[variant.compare_with].split(), autojunk=False).ratio(), 4)
    for variant in variants:
        if variant.count_calls is not None:
            variant.asr_calls = variant.count_calls(regions)
    result = BenchResult(device, len(samples) / 16000, runs, len(regions), variants)
    result.decode_s, result.write_s = _decode_and_write(config, engine, samples)
    result.memory = memory_figures(device, torch)
    return result


def _words(text: str) -> str:
    """The words without spacing and punctuation: FunASR's text is punctuated (with a punc model)
    where asrd's raw region texts are not yet; the punctuation model adds marks, never words."""
    return "".join(ch for ch in text if not ch.isspace() and not unicodedata.category(ch).startswith("P"))


def _decode_and_write(config: Config, engine: FunASREngine, samples: np.ndarray) -> tuple[float, float]:
    """What asrd adds around the models: decoding the file, and writing the outputs."""
    import soundfile

    from asrd.manifest import Manifest
    from asrd.output import write_outputs

    with tempfile.TemporaryDirectory() as tmp:
        wav = Path(tmp) / "bench.wav"
        soundfile.write(wav, samples, 16000, subtype="PCM_16")
        started = time.perf_counter()
        decoded = audio.decode(wav).samples
        decode_s = time.perf_counter() - started
        transcript = engine.transcribe(decoded, SourceInfo(str(wav), wav.stat().st_size, ""))
        started = time.perf_counter()
        write_outputs(transcript, wav, config.outputs, Manifest(Path(tmp) / "state"))
        return decode_s, time.perf_counter() - started


def _reset_peak(device: str, torch: Any) -> None:
    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()


def _peak_mb(device: str, torch: Any) -> float | None:
    if device != "cuda":
        return None
    torch.cuda.synchronize()
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def render(result: BenchResult) -> str:
    report = result.to_dict()
    head = (f"device {result.device}: {result.audio_s:.0f} s of audio, {result.regions} speech regions, "
            f"median of {result.runs} runs; ratios against the fastest FunASR configuration "
            f"({report['fastest_funasr']})")
    lines = [head, ""]
    for row in report["variants"]:
        extra = []
        if row["asr_calls"] is not None:
            extra.append(f"{row['asr_calls']} ASR calls")
        if row["stages_s"]:
            extra.append(" ".join(f"{k.removesuffix('_s')} {v:.2f}s" for k, v in row["stages_s"].items()))
        if row["peak_gpu_mb"] is not None:
            extra.append(f"peak GPU {row['peak_gpu_mb']:.0f} MB")
        if row["same_words"] is not None:
            extra.append(f"same words as '{row['compare_with']}': "
                         f"{'yes' if row['same_words'] else 'no, similarity ' + str(row['word_similarity'])}")
        lines.append(f"{row['median_s']:8.2f} s  RTF {row['rtf']:.5f}  x{row['ratio_to_fastest_funasr']:.3f}  "
                     f"{row['name']}")
        if extra:
            lines.append(" " * 12 + "; ".join(extra))
    lines.append(f"decode {report['decode_s']:.2f} s, write {report['write_s']:.3f} s, memory {report['memory']}")
    return "\n".join(lines)


def main(config: Config, clip: Path, repeat: int, runs: int, as_json: bool) -> int:
    result = run_bench(config, clip, repeat, runs)
    print(json.dumps(result.to_dict(), indent=2) if as_json else render(result))
    return 0 if result.same_words else 1

