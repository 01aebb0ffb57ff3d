"""An op that fails on the Apple GPU during a job: the job is re-run on the CPU (not the recording's
fault), the engine stays on MPS, and on the second such job moves to the CPU until asrd restarts.
The engine process is real, on the CPU, pretending its device is MPS (test hooks fake_mps and
mps_error_on: its loaded models' ASR call raises the error MPS gives for an op it lacks)."""

from __future__ import annotations

import json

import pytest
from structlog.testing import capture_logs

from asrd.config import build_config, load_config
from asrd.engine import fallback
from asrd.engine.process import DONE, EngineProcess
from asrd.engine.testhooks import FAKE_MPS_ERROR
from asrd.transcript import SourceInfo
from tests.support.configs import model_section, write_config
from tests.support.tiny_models import speech_bursts
from tests.test_engine_process import clips, request_for

SOURCE = SourceInfo("/x.wav", 1, "0" * 64)


@pytest.mark.parametrize("error, expected", [
    (NotImplementedError(FAKE_MPS_ERROR), True),
    (RuntimeError("Cannot convert a MPS Tensor to float64 dtype as the MPS framework doesn't support float64"), True),
    (RuntimeError("The size of tensor a (32) must match the size of tensor b (24)"), False),  # the model's own
    (ValueError("MPS"), False),
])
def test_what_counts_as_an_mps_op_error(error, expected):
    assert fallback.is_device_error(error, "mps") is expected
    assert fallback.is_device_error(error, "cpu") is False  # only the Apple GPU falls back


def test_the_failing_op_is_named():
    assert fallback.failed_op(NotImplementedError(FAKE_MPS_ERROR)) == "aten::_asrd_fake_op"
    assert fallback.failed_op(RuntimeError("Cannot convert a MPS Tensor to float64")) is None


@pytest.fixture
def failing_engine(tiny_models):
    """An engine said to be on MPS whose ASR call raises MPS's missing-op error."""
    from asrd.engine.funasr import FunASREngine

    def build(fallback_on_error: bool) -> FunASREngine:
        engine = FunASREngine(build_config({"engine": {"threads": 1, "device": "cpu",
                                                       "fallback_on_error": fallback_on_error},
                                            "model": model_section()}, None))
        engine.load()
        engine.device = "mps"
        original = engine.model.inference

        def inference(*args, **kwargs):
            if kwargs.get("model") is engine.model.model:
                raise NotImplementedError(FAKE_MPS_ERROR)
            return original(*args, **kwargs)

        engine.model.inference = inference
        return engine

    return build


def test_the_job_is_rerun_on_a_cpu_model_set(failing_engine, monkeypatch):
    import torch

    monkeypatch.setattr(torch.mps, "empty_cache", lambda: None)
    engine = failing_engine(True)
    samples = speech_bursts(n_bursts=2)[0]
    heard = []
    with capture_logs() as logs:
        transcript = fallback.transcribe(engine, samples, SOURCE, on_fallback=lambda *a: heard.append(a))
    assert transcript.device == "cpu" and len(transcript.segments) == 2
    assert transcript.stats["device_fallback"]["op"] == "aten::_asrd_fake_op"
    assert heard == [("mps", "aten::_asrd_fake_op", f"NotImplementedError: {FAKE_MPS_ERROR}"[:300])]
    [event] = [e for e in logs if e["event"] == "engine.device_fallback"]
    assert event["scope"] == "job" and event["requested"] == "mps" and event["device"] == "cpu"
    assert engine.device == "mps" and engine.loaded  # the engine itself stays where it was
    with pytest.raises(NotImplementedError):  # engine.fallback_on_error: false keeps the error
        fallback.transcribe(failing_engine(False), samples, SOURCE)


def test_one_job_falls_back_then_the_second_moves_the_engine_to_the_cpu(tmp_path, tiny_models, speech3,
                                                                        monkeypatch):
    monkeypatch.setenv("ASRD_TEST_HOOKS", json.dumps({"fake_mps": str(tmp_path / "cache.log"),
                                                      "mps_error_on": "bad"}))
    files = clips(speech3, tmp_path / "in", ["ok1.wav", "bad1.wav", "ok2.wav", "bad2.wav", "ok3.wav"])
    engine = EngineProcess(load_config(write_config(tmp_path)))
    runs = []
    try:
        with capture_logs() as logs:
            for i, path in enumerate(files):
                outcome = engine.run(request_for(path, i))
                runs.append((path.stem, outcome.status, outcome.transcript.device, len(outcome.transcript.segments),
                             engine.pid, engine.info.device_fallbacks))
    finally:
        engine.stop()
    first_pid = runs[0][4]
    assert runs[:4] == [
        ("ok1", DONE, "mps", 3, first_pid, 0),
        ("bad1", DONE, "cpu", 3, first_pid, 1),  # re-run on the CPU; the engine stays
        ("ok2", DONE, "mps", 3, first_pid, 1),  # ...on MPS for the next job
        ("bad2", DONE, "cpu", 3, None, 2),  # the second time: stopped after the job...
    ]
    assert runs[4][:4] == ("ok3", DONE, "cpu", 3) and runs[4][4] not in (None, first_pid)  # ...back on the CPU
    assert engine.info.device == "cpu" and "until asrd restarts" in engine.info.device_note
    fallbacks = [e for e in logs if e["event"] == "engine.device_fallback"]
    assert [e["scope"] for e in fallbacks] == ["job", "job", "engine"]
    assert all(e["op"] == "aten::_asrd_fake_op" for e in fallbacks)
