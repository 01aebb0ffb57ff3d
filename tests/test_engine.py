"""The FunASR engine with tiny random-weight models and the real FSMN-VAD: structure, timing,
parity with FunASR's own generate(), speakers, and one cache emptying per job."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from asrd import audio
from asrd.config import build_config
from asrd.engine.funasr import FunASREngine, Timings
from asrd.transcript import SourceInfo
from tests.support.configs import model_section
from tests.support.tiny_models import speech_bursts

CLIPS = ["speech3.wav", "speech3.flac", "speech3.mp3", "speech3.m4a", "speech3.mp4"]
SOURCE = SourceInfo("/x.wav", 1, "0" * 64)


def make_engine(preset: str, **model: object) -> FunASREngine:
    config = build_config({"engine": {"threads": 1, "device": "cpu"}, "model": {**model_section(preset), **model}},
                          None)  # cpu also on a GPU machine: parity is with FunASR on the cpu
    engine = FunASREngine(config)
    engine.load()
    return engine


@pytest.fixture(scope="module")
def sensevoice(tiny_models):
    return make_engine("sensevoice")


@pytest.fixture(scope="module")
def paraformer(tiny_models):
    return make_engine("paraformer-zh", hotwords=["阿里巴巴", "达摩院"])


def funasr_automodel(engine: FunASREngine, **extra):
    """FunASR's own pipeline on the same folders and settings asrd uses."""
    from funasr import AutoModel

    models = engine.config.models()
    return AutoModel(model=models["asr"], vad_model=models["vad"], device="cpu", ncpu=1, disable_update=True,
                     disable_pbar=True, vad_kwargs={"max_single_segment_time": 30000}, **extra)


@pytest.mark.parametrize("clip", CLIPS)
def test_three_segments_at_the_known_speech(sensevoice, speech3, clip):
    folder, known = speech3
    decoded = audio.decode(folder / clip)
    progress = []
    transcript = sensevoice.transcribe(decoded.samples, SOURCE, progress.append)
    assert len(transcript.segments) == 3
    for segment, (start, end) in zip(transcript.segments, known["speech"]):
        assert abs(segment.start - start) <= 0.3 and abs(segment.end - end) <= 0.3, (segment, start, end)
        assert segment.text and "<|" not in segment.text
        assert segment.emotion == "NEUTRAL" and segment.language == "en"
    assert transcript.language == "en" and transcript.device == "cpu"
    assert [p.segments_done for p in progress] == [3]  # cpu: the three short regions share one batched call
    assert progress[-1].fraction == pytest.approx(1.0)
    assert abs(transcript.duration_s - known["duration_s"]) < 0.05


@pytest.mark.parametrize("clip", CLIPS)
def test_parity_with_funasr_generate_sensevoice(sensevoice, speech3, clip):
    samples = audio.decode(speech3[0] / clip).samples
    regions = sensevoice.detect_speech(samples)
    ours = sensevoice.recognise(samples, regions, Timings())
    theirs = funasr_automodel(sensevoice).generate(input=samples, language="auto", use_itn=True)[0]
    assert len(ours) == 3
    assert " ".join(r.raw_text for r in ours) == theirs["text"]


@pytest.mark.parametrize("clip", ["speech3.wav", "speech3.m4a"])
def test_parity_with_funasr_generate_paraformer_tokens_and_times(paraformer, speech3, clip):
    samples = audio.decode(speech3[0] / clip).samples
    ours = paraformer.recognise(samples, paraformer.detect_speech(samples), Timings())
    theirs = funasr_automodel(paraformer).generate(input=samples, hotword="阿里巴巴 达摩院")[0]
    assert " ".join(r.raw_text for r in ours) == theirs["text"]
    assert [ts for r in ours for ts in r.timestamps] == theirs["timestamp"]


def test_paraformer_punc_and_speakers(paraformer):
    samples, bursts = speech_bursts(n_bursts=9, f0s=(110.0, 210.0))  # >= 20 CAM++ chunks: real clustering
    transcript = paraformer.transcribe(samples, SOURCE)
    assert transcript.segments, "no sentences"
    assert all(seg.speaker is not None for seg in transcript.segments)
    assert len(transcript.speakers) == 2
    for seg in transcript.segments:
        assert seg.end > seg.start and seg.text
    # each sentence's speaker is the voice (pitch) of the burst it lies in
    pitch_of = {}
    for seg in transcript.segments:
        middle = (seg.start + seg.end) / 2
        f0 = next((f for start, end, f in bursts if start - 0.3 <= middle <= end + 0.3), None)
        if f0 is not None:
            pitch_of.setdefault(f0, set()).add(seg.speaker)
    assert all(len(speakers) == 1 for speakers in pitch_of.values()) and len(pitch_of) == 2
    assert set(transcript.stats["timings"]) >= {"vad_s", "asr_s", "punc_s", "spk_s"}


def test_hotwords_and_options_reach_funasr(paraformer, monkeypatch, speech3):
    calls = []
    original = paraformer.model.inference

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(paraformer.model, "inference", spy)
    paraformer.transcribe(audio.decode(speech3[0] / "speech3.wav").samples, SOURCE)
    asr_calls = [c for c in calls if c.get("model") is paraformer.model.model]
    assert asr_calls and all(c["hotword"] == "阿里巴巴 达摩院" for c in asr_calls)
    assert [c["batch_size"] for c in asr_calls] == [3]  # cpu: short regions batched (up to 60 padded seconds)


def test_progress_after_every_call_when_each_region_has_its_own(tiny_models, speech3):
    engine = make_engine("sensevoice", merge_length_s=0)
    progress = []
    transcript = engine.transcribe(audio.decode(speech3[0] / "speech3.wav").samples, SOURCE, progress.append)
    assert [p.segments_done for p in progress] == [1, 2, 3] and len(transcript.segments) == 3
    assert [round(p.fraction, 2) for p in progress][-1] == 1.0


def test_device_cache_emptied_once_per_job(sensevoice, monkeypatch, speech3):
    calls = []
    monkeypatch.setattr(torch.mps, "empty_cache", lambda: calls.append("mps"))
    monkeypatch.setattr(sensevoice, "device", "mps")  # as if the weights had landed on the Apple GPU
    samples = audio.decode(speech3[0] / "speech3.wav").samples
    for _ in range(3):
        sensevoice.transcribe(samples, SOURCE)
    assert calls == ["mps"] * 3


def test_mps_calls_one_at_a_time_cuda_and_cpu_batch(sensevoice, monkeypatch):
    regions = [(0, 5000), (6000, 8000), (9000, 30000)]
    monkeypatch.setattr(sensevoice, "device", "mps")
    assert sensevoice.sequential and sensevoice.asr_calls(regions) == 2  # 0-8 s merged (15 s cap); 21 s alone
    monkeypatch.setattr(sensevoice, "device", "cuda")
    assert not sensevoice.sequential
    assert sorted(i for batch in sensevoice.batches(regions) for i in batch) == [0, 1, 2]
    assert sensevoice.batches(regions) == [[1, 0, 2]]
    monkeypatch.setattr(sensevoice, "device", "cpu")  # 60 padded seconds: 2 s + 5 s padded to 10 s; 3 x 21 s is more
    assert sensevoice.batches(regions) == [[1, 0], [2]]
    twelve = [(i * 5000, i * 5000 + 4000 + 10 * i) for i in range(12)]  # 4.0 to 4.11 s: 12 x 4.11 s = 49 s padded
    assert sensevoice.batches(twelve) == [list(range(12))]
    assert len(sensevoice.batches(twelve + [(60_000, 66_000)])) == 2  # a 6 s region: 13 x 6 s passes 60 s
    monkeypatch.setattr(sensevoice, "config", replace(sensevoice.config, model=replace(sensevoice.config.model,
                                                                                        merge_length_s=0)))
    assert sensevoice.batches(twelve) == [[i] for i in range(12)]  # 0: one call per region, as documented


def test_length_batches_never_pass_the_cap():
    from asrd.engine.funasr import length_batches

    regions = [(0, 4000), (5000, 6000), (7000, 9000), (10000, 13000), (14000, 40000), (41000, 42500)]
    assert length_batches(regions, 0) == [[i] for i in range(6)]
    batches = length_batches(regions, 10_000)
    assert sorted(i for b in batches for i in b) == list(range(6))
    for batch in batches:
        longest = max(regions[i][1] - regions[i][0] for i in batch)
        assert len(batch) == 1 or longest * len(batch) <= 10_000
    assert [4] in batches  # 26 s is longer than the cap: alone


def test_vad_runs_on_cpu_beside_any_gpu():
    from asrd.engine.funasr import automodel_kwargs

    config = build_config({}, None)
    for device in ("mps", "cuda", "cpu"):  # 5x slower on MPS, 2x on an H200 (asrd.engine.placement)
        assert automodel_kwargs(config, device)["vad_kwargs"] == {"max_single_segment_time": 30000, "device": "cpu"}
    assert automodel_kwargs(config, "mps")["disable_update"] is True


def test_language_falls_back_to_the_configured_one_then_the_presets():
    from asrd.engine.funasr import _configured_language

    assert _configured_language(build_config({"model": {"preset": "paraformer-zh"}}, None)) == "zh"
    assert _configured_language(build_config({"model": {"preset": "paraformer-zh", "asr": "other/Model"}}, None)) is None
    assert _configured_language(build_config({"model": {"language": "ja"}}, None)) == "ja"
    assert _configured_language(build_config({}, None)) is None  # sensevoice, auto: the model says


def test_the_loaded_models_are_out_of_the_collectors_reach_and_a_jobs_cycles_are_not(sensevoice):
    """The full collection after each job cost 0.74 s a job while it walked torch, funasr and the
    models; frozen after load, it walks only what the job made, and still frees a job's cycles."""
    import gc
    import weakref

    import torch

    from asrd.engine import device as devices

    assert gc.get_freeze_count() > 100_000

    class Holder:
        pass

    held = Holder()
    held.me, held.tensor = held, torch.zeros(8)  # a cycle: only the collector frees it
    ref = weakref.ref(held)
    del held
    devices.empty_cache("cpu", torch)
    assert ref() is None
    devices.thaw_loaded_objects()  # what unload() does: the models can be reclaimed again
    assert gc.get_freeze_count() == 0
    devices.freeze_loaded_objects()


def test_cuda_batches_are_funasrs_own_groups():
    """FunASR closes a group after the region that reaches the cap (so a group may pass it by one
    region), and puts a region of 60 s or more in a group that ends with it."""
    from asrd.engine.funasr import funasr_batches

    regions = [(0, 4000), (5000, 6000), (7000, 9000), (10000, 13000), (14000, 80000), (81000, 82500)]
    # shortest first: 1, 1.5, 2 s (2 s x 3 = 6 s reaches the cap: closed with it), 3, 4 s (8 s), 66 s
    assert funasr_batches(regions, 6000) == [[1, 5, 2], [3, 0], [4]]
    assert funasr_batches(regions, 300_000) == [[1, 5, 2, 3, 0, 4]]  # the 66 s region is last: it ends the group
    assert funasr_batches([(0, 70000), (0, 1000)], 300_000) == [[1, 0]]
    assert funasr_batches([], 300_000) == []
