"""Device choice with faked availability: auto, priority, explicit with and without fallback."""

from __future__ import annotations

import itertools
import os

import pytest
import torch

from asrd.engine import device as dev


@pytest.fixture
def fake(monkeypatch):
    """Set which devices torch reports as available."""

    def set_available(mps: bool, cuda: bool):
        monkeypatch.setattr(torch.backends.mps, "is_built", lambda: mps)
        monkeypatch.setattr(torch.backends.mps, "is_available", lambda: mps)
        monkeypatch.setattr(torch.version, "cuda", "12.8" if cuda else None)
        monkeypatch.setattr(torch.cuda, "is_available", lambda: cuda)
        monkeypatch.setattr(torch.cuda, "get_device_name", lambda *_: "Fake GPU")

    return set_available


@pytest.mark.parametrize("mps, cuda", list(itertools.product([False, True], repeat=2)))
def test_auto_takes_first_available_in_priority(fake, mps, cuda):
    fake(mps, cuda)
    expected = "mps" if mps else "cuda" if cuda else "cpu"
    choice = dev.choose_device("auto", ["mps", "cuda", "cpu"], True, torch)
    assert choice.device == expected and not choice.fell_back


def test_priority_order_is_respected(fake):
    fake(True, True)
    assert dev.choose_device("auto", ["cuda", "mps", "cpu"], True, torch).device == "cuda"
    assert dev.choose_device("auto", ["cpu", "mps"], True, torch).device == "cpu"


def test_explicit_available_device_is_used(fake):
    fake(True, False)
    assert dev.choose_device("mps", ["mps", "cuda", "cpu"], False, torch).device == "mps"


def test_explicit_unavailable_falls_back_with_reason(fake):
    fake(False, True)
    choice = dev.choose_device("mps", ["mps", "cuda", "cpu"], True, torch)
    assert choice.device == "cuda" and choice.fell_back and "mps unavailable" in choice.reason
    fake(False, False)
    assert dev.choose_device("cuda", ["mps", "cuda", "cpu"], True, torch).device == "cpu"


def test_explicit_unavailable_without_fallback_fails(fake):
    fake(False, False)
    with pytest.raises(dev.DeviceUnavailable, match="engine.device is 'mps'.*no MPS support"):
        dev.choose_device("mps", ["mps", "cuda", "cpu"], False, torch)
    with pytest.raises(dev.DeviceUnavailable, match="CPU-only"):
        dev.choose_device("cuda", ["mps", "cuda", "cpu"], False, torch)


def test_status_reasons(fake):
    fake(False, False)
    reasons = {s.name: s for s in dev.all_device_status(torch)}
    assert reasons["cpu"].available and not reasons["mps"].available and not reasons["cuda"].available
    assert "MPS" in reasons["mps"].reason and "CUDA" in reasons["cuda"].reason


def test_mps_fallback_env_set_before_torch_on_macos(monkeypatch):
    monkeypatch.delenv("PYTORCH_ENABLE_MPS_FALLBACK", raising=False)
    assert dev.prepare_environment("cpu", ["mps"], platform="darwin") == {}
    assert dev.prepare_environment("auto", ["mps", "cpu"], platform="linux") == {}
    assert "PYTORCH_ENABLE_MPS_FALLBACK" not in os.environ
    assert dev.prepare_environment("auto", ["mps", "cpu"], platform="darwin") == {"PYTORCH_ENABLE_MPS_FALLBACK": "1"}
    assert os.environ["PYTORCH_ENABLE_MPS_FALLBACK"] == "1"


def test_empty_cache_calls_the_chosen_device_only(monkeypatch):
    calls = []
    monkeypatch.setattr(torch.mps, "empty_cache", lambda: calls.append("mps"))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: calls.append("cuda"))
    dev.empty_cache("mps", torch)
    dev.empty_cache("cpu", torch)
    dev.empty_cache("cuda", torch)
    assert calls == ["mps", "cuda"]


def test_memory_figures_on_mps_include_driver_memory(monkeypatch):
    monkeypatch.setattr(torch.mps, "current_allocated_memory", lambda: 300 * 2**20)
    monkeypatch.setattr(torch.mps, "driver_allocated_memory", lambda: 900 * 2**20)
    figures = dev.memory_figures("mps", torch, platform="linux")
    assert figures["mps_allocated_mb"] == 300 and figures["mps_driver_mb"] == 900
    assert figures["rss_mb"] > 10 and figures["peak_rss_mb"] >= figures["rss_mb"] - 1
    # the driver's share is shown, not added: on a Mac the footprint already holds it (test_engine_memory.py)
    assert dev.engine_memory_mb(figures) == figures["rss_mb"]


def test_weights_device():
    assert dev.weights_device(torch.nn.Linear(2, 2)) == "cpu"
    assert dev.weights_device(object()) == "cpu"
