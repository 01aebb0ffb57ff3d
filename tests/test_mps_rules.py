"""The MPS-rules mode (no float64 on the compute device) over a whole job of every preset's tiny
models on the CPU: it catches a planted float64 op, finds the plain Paraformer's float64 cumsum,
and passes once asrd's compatibility step is applied."""

from __future__ import annotations

import pytest
import torch

from asrd.config import build_config
from asrd.engine import compat
from asrd.engine.funasr import FunASREngine
from asrd.transcript import SourceInfo
from tests.support.configs import model_section
from tests.support.mps_rules import MpsRules, checking_models
from tests.support.tiny_models import speech_bursts

SOURCE = SourceInfo("/x.wav", 1, "0" * 64)


def test_a_planted_float64_op_is_caught():
    x = torch.rand(4, 10)
    with MpsRules() as rules:
        torch.cumsum(x, dim=1).sum()  # float32 throughout: allowed
        assert rules.breaks == []
        torch.cumsum(x, dim=1, dtype=torch.float64)
        x.double()
        with compat.host_section():  # on the CPU by construction: not counted
            torch.cumsum(x, dim=1, dtype=torch.float64)
    assert [b.op for b in rules.breaks] == ["aten.cumsum.default", "aten._to_copy.default"]
    assert all("test_mps_rules.py" in b.where and "float64" in str(b) for b in rules.breaks)


def engine_for(model: dict, monkeypatch, device: str = "cpu") -> FunASREngine:
    """A loaded engine; device "mps" fakes where the weights landed, so load() applies the MPS steps."""
    from asrd.engine import device as devices
    from asrd.engine import placement

    if device == "mps":
        monkeypatch.setattr(devices, "weights_device", lambda _model: "mps")
        monkeypatch.setattr(placement, "verify", lambda _auto, plan, _log: {r: p.device for r, p in plan.items()})
        monkeypatch.setattr(torch.mps, "empty_cache", lambda: None)
    engine = FunASREngine(build_config({"engine": {"threads": 1, "device": "cpu"}, "model": model}, None))
    engine.load()
    return engine


@pytest.fixture
def restore_cif(monkeypatch):
    """Whatever a test's compat.apply patches in FunASR is undone after it."""
    from funasr.models.paraformer import cif_predictor

    monkeypatch.setattr(cif_predictor, "cif_wo_hidden_v1", cif_predictor.cif_wo_hidden_v1)
    return cif_predictor


@pytest.fixture(scope="module")
def job():
    return speech_bursts(n_bursts=4, f0s=(110.0, 210.0))[0]


@pytest.mark.parametrize("preset, speakers, models", [
    ("sensevoice", False, {"SenseVoiceSmall"}),
    ("sensevoice", True, {"SenseVoiceSmall", "CAMPPlus"}),  # speakers ask for token timestamps too
    ("paraformer-zh", True, {"SeacoParaformer", "CTTransformer", "CAMPPlus"}),  # CifPredictorV3
])
def test_presets_keep_the_rules(tiny_models, job, preset, speakers, models, monkeypatch):
    model = {**model_section(preset), "spk": str(tiny_models["campplus"]) if speakers else None}
    engine = engine_for(model, monkeypatch)
    with checking_models(engine) as rules:
        transcript = engine.transcribe(job, SOURCE)
    assert transcript.segments and all((s.speaker is not None) == speakers for s in transcript.segments)
    assert rules.checked == models and rules.breaks == []


def test_plain_paraformer_breaks_them_until_the_mps_step(tiny_models, job, monkeypatch, restore_cif):
    model = {**model_section("paraformer-zh"), "asr": str(tiny_models["paraformer"])}
    engine = engine_for(model, monkeypatch)
    assert type(engine.model.model.predictor).__name__ == "CifPredictorV2"
    with checking_models(engine) as rules:
        assert engine.transcribe(job, SOURCE).segments
    assert rules.breaks and {b.where.split()[-1] for b in rules.breaks} == {"cif_wo_hidden_v1"}
    assert {b.op for b in rules.breaks} == {"aten.cumsum.default", "aten._to_copy.default"}

    engine = engine_for(model, monkeypatch, device="mps")  # load() applies asrd.engine.compat
    with checking_models(engine) as rules:
        assert engine.transcribe(job, SOURCE).segments
    assert rules.checked == {"Paraformer", "CTTransformer", "CAMPPlus"} and rules.breaks == []
