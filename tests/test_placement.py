"""Each model's device: the plan per compute device and torch version, requested explicitly from
FunASR, then verified from the parameters after construction and corrected when FunASR put a model
elsewhere (faked here with the meta device, the one other place weights can go on a CPU machine)."""

from __future__ import annotations

import pytest
import torch
from structlog.testing import capture_logs

from asrd.config import build_config
from asrd.engine import placement
from asrd.engine.funasr import FunASREngine, automodel_kwargs
from asrd.logging import get_logger
from tests.support.configs import model_section

ROLES = ["asr", "vad", "punc", "spk"]


def devices_of(plan: dict[str, placement.Placement]) -> dict[str, str]:
    return {role: p.device for role, p in plan.items()}


def test_the_plan_per_compute_device_and_torch():
    assert devices_of(placement.plan("mps", "2.9.0", ROLES)) == {"asr": "mps", "vad": "cpu", "punc": "cpu",
                                                                 "spk": "mps"}
    old = placement.plan("mps", "2.8.0", ROLES)
    assert devices_of(old) == {"asr": "mps", "vad": "cpu", "punc": "cpu", "spk": "cpu"}
    assert "pytorch#160743" in old["spk"].reason and "2.8.0" in old["spk"].reason
    assert devices_of(placement.plan("cuda", "2.1.0", ROLES)) == {"asr": "cuda", "vad": "cpu", "punc": "cuda",
                                                                  "spk": "cuda"}
    assert set(devices_of(placement.plan("cpu", "2.1.0", ROLES)).values()) == {"cpu"}
    assert list(placement.plan("mps", "2.9.0", ["asr", "vad"])) == ["asr", "vad"]


@pytest.mark.parametrize("version, expected", [("2.9.0", (2, 9)), ("2.13.0+cpu", (2, 13)),
                                               ("2.9.0.dev20250801", (2, 9)), ("garbage", (0, 0))])
def test_torch_version(version, expected):
    assert placement.torch_version(version) == expected


def test_every_model_is_asked_for_its_device(tiny_models):
    config = build_config({"model": model_section("paraformer-zh")}, None)
    on_mps = automodel_kwargs(config, "mps", torch_version="2.8.0")
    assert on_mps["device"] == "mps"
    assert [on_mps[k]["device"] for k in ("vad_kwargs", "punc_kwargs", "spk_kwargs")] == ["cpu", "cpu", "cpu"]
    assert on_mps["vad_kwargs"]["max_single_segment_time"] == 30000
    on_cuda = automodel_kwargs(config, "cuda", torch_version="2.9.0")
    assert [on_cuda[k]["device"] for k in ("vad_kwargs", "punc_kwargs", "spk_kwargs")] == ["cpu", "cuda", "cuda"]
    sensevoice = automodel_kwargs(build_config({"model": model_section()}, None), "mps", torch_version="2.9.0")
    assert "punc_kwargs" not in sensevoice and "spk_kwargs" not in sensevoice


@pytest.fixture
def engine(tiny_models):
    engine = FunASREngine(build_config({"engine": {"threads": 1, "device": "cpu"},
                                        "model": model_section("paraformer-zh")}, None))
    with capture_logs() as logs:
        engine.load()
    engine.load_logs = logs
    return engine


def test_loaded_logs_every_models_device_from_its_parameters(engine):
    [loaded] = [e for e in engine.load_logs if e["event"] == "engine.loaded"]
    assert loaded["devices"] == {"asr": "cpu", "vad": "cpu", "punc": "cpu", "spk": "cpu"}
    assert not any(e["event"] == "engine.device_corrected" for e in engine.load_logs)


def test_a_model_funasr_put_elsewhere_is_moved_and_its_inputs_follow(engine, monkeypatch):
    auto = engine.model
    moved = []
    for role in ("asr", "punc", "spk"):
        module = getattr(auto, placement.ROLES[role][0])
        monkeypatch.setattr(module, "to", lambda *a, _role=role, **k: moved.append(_role))
    wanted = {role: placement.Placement("cpu", "test") for role in ROLES}
    wanted["vad"] = placement.Placement("meta", "test: stands for a device FunASR ignored")
    with capture_logs() as logs:
        found = placement.verify(auto, wanted, get_logger("test"))
    assert found == {"asr": "cpu", "vad": "meta", "punc": "cpu", "spk": "cpu"}
    assert next(auto.vad_model.parameters()).device.type == "meta" and moved == []  # only the misplaced one
    assert auto.vad_kwargs["device"] == "meta"
    auto._reset_runtime_configs()  # what every job starts with: the correction survives it
    assert auto.vad_kwargs["device"] == "meta" and auto.kwargs["device"] == "cpu"
    [event] = [e for e in logs if e["event"] == "engine.device_corrected"]
    assert event["model"] == "vad" and event["found"] == "cpu" and event["device"] == "meta"
    with capture_logs() as logs:
        assert placement.verify(auto, wanted, get_logger("test")) == found  # now right: nothing to do
    assert logs == []


def test_location():
    assert placement.location(torch.nn.Linear(2, 2)) == "cpu"
    assert placement.location(torch.nn.ReLU()) is None


def test_asrd_devices_says_where_each_model_runs_and_why(tiny_models, tmp_path, monkeypatch, capsys):
    import argparse

    from asrd.commands import devices_cmd
    from tests.support.configs import write_config

    config = write_config(tmp_path, "paraformer-zh", engine={"device": "auto"})
    monkeypatch.setattr(torch.backends.mps, "is_built", lambda: True)
    monkeypatch.setattr(torch.backends.mps, "is_available", lambda: True)
    monkeypatch.setattr(torch, "__version__", "2.8.0")
    assert devices_cmd.main(argparse.Namespace(config=str(config))) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "engine.device=auto -> mps (first available in ['mps', 'cuda', 'cpu']: Apple GPU (Metal))" in lines
    rows = {line.split()[0]: line.split(None, 2)[1:] for line in lines if line.startswith("  ")}
    assert {role: row[0] for role, row in rows.items()} == {"asr": "mps", "vad": "cpu", "punc": "cpu", "spk": "cpu"}
    assert "pytorch#160743" in rows["spk"][1] and "faster on the CPU" in rows["vad"][1]
