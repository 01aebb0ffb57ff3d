"""The CUDA path on a real GPU (skipped where torch sees none, as in CI): weights on the GPU and the
VAD's on the CPU (read from their parameters), batched ASR calls, the same words as FunASR's
generate() there, cache emptied after each job."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from structlog.testing import capture_logs

from asrd import audio
from asrd.config import build_config
from asrd.engine.funasr import FunASREngine, Timings
from asrd.transcript import SourceInfo
from tests.support.configs import model_section

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
SOURCE = SourceInfo("/x.wav", 1, "0" * 64)


def cuda_engine(preset: str) -> FunASREngine:
    config = build_config({"engine": {"device": "cuda", "fallback_on_error": False, "threads": 4},
                           "model": model_section(preset)}, None)
    engine = FunASREngine(config)
    engine.load()
    return engine


@pytest.mark.parametrize("preset", ["sensevoice", "paraformer-zh"])
def test_cuda_engine_batches_and_matches_funasr(tiny_models, speech3, preset, monkeypatch):
    from funasr import AutoModel

    engine = cuda_engine(preset)
    assert engine.device == "cuda"
    assert next(engine.model.model.parameters()).is_cuda
    samples = audio.decode(speech3[0] / "speech3.wav").samples
    calls = []
    original = engine.model.inference
    monkeypatch.setattr(engine.model, "inference", lambda *a, **k: calls.append(k.get("batch_size")) or original(*a, **k))
    regions = engine.detect_speech(samples)
    ours = engine.recognise(samples, regions, Timings())
    assert max(c for c in calls if c) == 3  # the three segments went in one batched call
    models = engine.config.models()
    theirs = AutoModel(model=models["asr"], vad_model=models["vad"], device="cuda", disable_update=True,
                       disable_pbar=True, vad_kwargs={"max_single_segment_time": 30000}).generate(
        input=samples, **engine._options())[0]
    assert " ".join(r.raw_text for r in ours) == theirs["text"]


def test_cuda_cache_emptied_after_each_job(tiny_models, speech3, monkeypatch):
    engine = cuda_engine("sensevoice")
    samples = audio.decode(speech3[0] / "speech3.wav").samples
    calls = []
    real = torch.cuda.empty_cache
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append(1) or real())
    for _ in range(2):
        transcript = engine.transcribe(samples, SOURCE)
        assert transcript.device == "cuda" and len(transcript.segments) == 3
        # what the job cached is given back: only blocks that still hold live tensors (weights) stay
        assert torch.cuda.memory_reserved() - torch.cuda.memory_allocated() < 8 * 2**20
    assert len(calls) >= 2  # FunASR's inference() empties the CUDA cache after each of its calls as well


def test_vad_runs_on_the_cpu_beside_the_gpu_and_engine_loaded_says_where_each_model_is(tiny_models, speech3):
    with capture_logs() as logs:
        engine = cuda_engine("paraformer-zh")
    auto = engine.model
    assert next(auto.model.parameters()).is_cuda
    assert next(auto.vad_model.parameters()).device.type == "cpu" and auto.vad_kwargs["device"] == "cpu"
    assert next(auto.punc_model.parameters()).is_cuda and next(auto.spk_model.parameters()).is_cuda
    [loaded] = [e for e in logs if e["event"] == "engine.loaded"]
    print("engine.loaded", loaded)  # `pytest -s` shows the line to quote
    assert loaded["devices"] == {"asr": "cuda:0", "vad": "cpu", "punc": "cuda:0", "spk": "cuda:0"}
    assert not any(e["event"] == "engine.device_corrected" for e in logs)  # funasr >= 1.4.16 honoured it
    samples = audio.decode(speech3[0] / "speech3.wav").samples
    assert len(engine.transcribe(samples, SOURCE).segments) >= 1
    assert next(auto.vad_model.parameters()).device.type == "cpu"  # a job does not move it


def test_sensevoice_alignment_on_the_host_gives_the_gpus_path():
    """asrd.engine.alignment: the same Viterbi path as FunASR's on the GPU, from numpy on the host (the
    states' scores gathered on the GPU)."""
    from funasr.models.sense_voice.utils.ctc_alignment import ctc_forced_align

    from asrd.engine.alignment import ctc_forced_align_on_host

    generator = torch.Generator().manual_seed(0)
    for frames, tokens in [(40, 6), (250, 40), (500, 90)]:
        log_probs = torch.randn(1, frames, 300, generator=generator).log_softmax(-1).cuda()
        targets = torch.randint(1, 300, (1, tokens), generator=generator).cuda()
        lengths, target_lengths = torch.tensor([frames]).cuda(), torch.tensor([tokens]).cuda()
        on_gpu = ctc_forced_align(log_probs, targets.clone(), lengths, target_lengths)
        on_host = ctc_forced_align_on_host(ctc_forced_align)(log_probs, targets.clone(), lengths, target_lengths)
        assert np.array_equal(on_host, on_gpu.cpu().numpy())
