"""The sequential call path (MPS's, run here on the CPU with engine.calls: sequential): adjacent
regions share one call, each keeps its own segment, fewer calls, and per-region calls come back
with merge_length_s: 0. Tiny models: their words are noise, so the text difference against one call
per region is measured and printed, never assumed zero."""

from __future__ import annotations

import difflib

import pytest

from asrd import audio
from asrd.config import build_config
from asrd.engine.funasr import FunASREngine, Timings
from asrd.engine.merge import plan_calls
from tests.support.configs import model_section


def engine_for(preset: str, merge_length_s: float) -> FunASREngine:
    config = build_config({"engine": {"device": "cpu", "threads": 1, "calls": "sequential"},
                           "model": {**model_section(preset), "merge_length_s": merge_length_s}}, None)
    engine = FunASREngine(config)
    engine.load()
    return engine


def counted(engine: FunASREngine, monkeypatch) -> list[int]:
    sizes: list[int] = []
    original = engine.model.inference

    def inference(data, *args, **kwargs):
        if kwargs.get("model") is engine.model.model:
            sizes.append(len(data))
        return original(data, *args, **kwargs)

    monkeypatch.setattr(engine.model, "inference", inference)
    return sizes


@pytest.mark.parametrize("preset", ["sensevoice", "paraformer-zh"])
def test_merged_calls_keep_one_segment_per_region(preset, tiny_models, speech3, monkeypatch):
    samples = audio.decode(speech3[0] / "speech3.wav").samples
    merged = engine_for(preset, 15)
    regions = merged.detect_speech(samples)
    assert len(regions) == 3
    sizes = counted(merged, monkeypatch)
    results = merged.recognise(samples, regions, Timings())
    assert sizes == [1] * len(plan_calls(regions, 15000)) and len(sizes) < len(regions)  # batch_size 1, fewer
    assert [(r.start_ms, r.end_ms) for r in results] == regions  # each region its own segment again
    stamps = [ts for r in results for ts in r.timestamps]  # the words' times, file-relative, in order
    assert stamps and stamps == sorted(stamps) and regions[0][0] - 60 <= stamps[0][0]
    assert stamps[-1][1] <= regions[-1][1] + 60
    for result, (start, end) in zip(results, regions):  # a word goes to the region nearest to it
        for a, b in result.timestamps:
            middle = (a + b) // 2
            own = 0 if start <= middle < end else min(abs(middle - start), abs(middle - end))
            assert all(own <= (0 if s <= middle < e else min(abs(middle - s), abs(middle - e))) for s, e in regions)
    per_region = engine_for(preset, 0)
    sizes = counted(per_region, monkeypatch)
    alone = per_region.recognise(samples, regions, Timings())
    assert sizes == [1, 1, 1] and [(r.start_ms, r.end_ms) for r in alone] == regions
    words = " ".join(r.raw_text for r in results).split()
    alone_words = " ".join(r.raw_text for r in alone).split()
    same = difflib.SequenceMatcher(None, words, alone_words).ratio()
    print(f"\n{preset}: merged calls {len(plan_calls(regions, 15000))} vs 3, word similarity {same:.2f}")
    transcript = merged.transcribe(samples, merged_source())
    assert len(transcript.segments) >= 1 and transcript.stats["speech_regions"] == 3


def merged_source():
    from asrd.transcript import SourceInfo

    return SourceInfo("/x.wav", 1, "0" * 64)
