"""`asrd bench`: every FunASR configuration and asrd's run in one process, with the same words where
they feed the model the same segments (tiny models: the figures are not the point, the structure is)."""

from __future__ import annotations

import json

from asrd.bench import ASRD, FUNASR, render, run_bench
from asrd.config import build_config
from tests.support.configs import model_section


def test_bench_runs_every_configuration_and_checks_words(tiny_models, speech3):
    config = build_config({"engine": {"device": "cpu", "threads": 1}, "model": model_section("sensevoice")}, None)
    result = run_bench(config, speech3[0] / "speech3.wav", repeat=2, runs=1)
    names = [v.name for v in result.variants]
    assert [v.side for v in result.variants].count(FUNASR) == 3  # on the CPU, defaults already has the VAD there
    assert any("README" in n for n in names) and any("one segment per call" in n for n in names)
    assert all(len(v.wall_s) == 1 and v.median_s > 0 for v in result.variants)
    batched, one_each, merged, longer = (v for v in result.variants if v.side == ASRD)
    assert batched.same_words is True and one_each.same_words is True and result.same_words
    assert one_each.asr_calls == result.regions == 6  # the clip's 3 utterances, twice
    assert batched.asr_calls < one_each.asr_calls and merged.asr_calls < one_each.asr_calls
    assert merged.compare_with == one_each.name and 0 <= merged.word_similarity <= 1
    assert "merged up to 30 s" in longer.name and longer.asr_calls <= merged.asr_calls
    assert set(batched.stages[0]) >= {"vad_s", "asr_s"}
    report = json.loads(json.dumps(result.to_dict()))
    fastest = next(r for r in report["variants"] if r["name"] == report["fastest_funasr"])
    assert fastest["ratio_to_fastest_funasr"] == 1.0
    assert report["write_s"] > 0 and report["audio_s"] == round(result.audio_s, 1)
    assert "merged up to 15 s (the MPS path)" in render(result)
