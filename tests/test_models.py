"""Models on disk: presets' wiring, load failures that name the model, the place and the fix (fast,
with the network guard on), cached hub snapshots used offline, and `asrd models [pull]`."""

from __future__ import annotations

import pickle
import shutil
import time
from pathlib import Path

import pytest

from asrd import models
from asrd.cli import main as cli_main
from asrd.config import build_config
from asrd.engine.errors import ModelLoadError
from asrd.engine.funasr import FunASREngine, automodel_kwargs
from asrd.presets import PRESETS
from tests.support.configs import write_config

FAST_S = 5.0  # an offline failure must not sit in modelscope's retry loop (~20 s)


@pytest.fixture
def modelscope_imported() -> None:
    """Import modelscope before the clock starts: its import alone takes ~3 s on a loaded 2-core
    machine, which is not the retry loop FAST_S is there to catch."""
    import modelscope.hub.callback
    import modelscope.hub.snapshot_download


def engine_for(**model: object) -> FunASREngine:
    return FunASREngine(build_config({"engine": {"threads": 1}, "model": model}, None))


# --------------------------------------------------------------------------- presets


def test_paraformer_zh_is_the_seaco_model() -> None:
    # plain Paraformer's CIF predictor computes in float64, which MPS cannot run
    assert "seaco" in PRESETS["paraformer-zh"].asr


def test_nano_automodel_kwargs() -> None:
    """Fun-ASR-Nano is built into funasr 1.4 (model class FunASRNano, hub ModelScope): no
    trust_remote_code, which would make FunASR import ./model.py from the working directory."""
    kwargs = automodel_kwargs(build_config({"model": {"preset": "nano"}}, None), "cpu")
    assert kwargs["model"] == "FunAudioLLM/Fun-ASR-Nano-2512" and kwargs["vad_model"] == "fsmn-vad"
    assert not {"trust_remote_code", "remote_code", "hub", "punc_model", "spk_model"} & set(kwargs)


def test_automodel_gets_the_local_folders() -> None:
    kwargs = automodel_kwargs(build_config({}, None), "cpu", {"asr": "/m/asr", "vad": "/m/vad"})
    assert kwargs["model"] == "/m/asr" and kwargs["vad_model"] == "/m/vad"


def test_aliases_resolve_to_modelscope_ids_without_importing_funasr() -> None:
    assert models.hub_id("fsmn-vad") == "iic/speech_fsmn_vad_zh-cn-16k-common-pytorch"
    assert models.hub_id("cam++") == "iic/speech_campplus_sv_zh-cn_16k-common"
    assert models.hub_id("iic/SenseVoiceSmall") == "iic/SenseVoiceSmall"


# --------------------------------------------------------------------------- load failures


def test_model_load_error_pickles_with_its_fields() -> None:
    error = ModelLoadError("asr", "iic/X", "/cache/x", "it is not downloaded", "run it")
    copy = pickle.loads(pickle.dumps(error))
    assert str(copy) == str(error) and (copy.role, copy.model, copy.where) == ("asr", "iic/X", "/cache/x")


def test_unavailable_hub_model_fails_fast_naming_model_cache_and_fix(private_home: Path, modelscope_imported) -> None:
    engine = engine_for(preset="sensevoice", asr="asrd-test/NoSuchModel", vad=None)
    started = time.monotonic()
    with pytest.raises(ModelLoadError) as caught:
        engine.load()
    assert time.monotonic() - started < FAST_S
    message = str(caught.value)
    assert "asr model 'asrd-test/NoSuchModel'" in message
    assert str(private_home / ".cache" / "modelscope" / "models" / "asrd-test--NoSuchModel") in message
    assert "asrd models pull" in message and "model.asr" in message and "local model folder" in message
    assert not engine.loaded


def test_modelscope_cache_env_is_where_asrd_looks(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms"))
    with pytest.raises(ModelLoadError, match=str(tmp_path / "ms" / "models" / "iic--speech_fsmn_vad")):
        models.ensure_ready("vad", "fsmn-vad")


@pytest.mark.parametrize("missing", ["model.pt", "am.mvn", "config.yaml"])
def test_local_folder_missing_a_file_fails_clearly(tiny_models, tmp_path: Path, missing: str) -> None:
    folder = tmp_path / "sensevoice"
    shutil.copytree(tiny_models["sensevoice"], folder)
    (folder / missing).unlink()
    engine = engine_for(preset="sensevoice", asr=str(folder), vad=str(tiny_models["vad"]))
    with pytest.raises(ModelLoadError) as caught:
        engine.load()
    message = str(caught.value)
    assert f"asr model '{folder}'" in message and f"lacks {missing}" in message and str(folder) in message
    assert "model.asr" in message


def test_folder_without_configuration_json_needs_config_and_weights(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("model: X\n")
    assert models.folder_problem(tmp_path) == "the folder lacks model.pt"
    (tmp_path / "model.pt").write_bytes(b"")
    assert models.folder_problem(tmp_path) is None
    assert models.folder_problem(tmp_path / "nope") == "the folder does not exist"


def test_cached_hub_snapshot_is_loaded_offline(tiny_models, private_home: Path, speech3) -> None:
    """A hub id whose snapshot is in the ModelScope cache loads from there, network blocked."""
    snapshot = private_home / ".cache" / "modelscope" / "models" / "asrd-test--TinySenseVoice" / "snapshots" / "master"
    shutil.copytree(tiny_models["sensevoice"], snapshot)
    engine = engine_for(preset="sensevoice", asr="asrd-test/TinySenseVoice", vad=str(tiny_models["vad"]))
    engine.load()
    assert engine.model.kwargs["model_path"] == str(snapshot)
    from asrd import audio
    from tests.test_engine import SOURCE

    transcript = engine.transcribe(audio.decode(speech3[0] / "speech3.wav").samples, SOURCE)
    assert len(transcript.segments) == 3 and transcript.model["asr"] == "asrd-test/TinySenseVoice"


# --------------------------------------------------------------------------- asrd models


def test_models_lists_presets_and_configured_models(tiny_models, tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path)
    assert cli_main(["models", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    for preset in PRESETS.values():
        assert preset.name in out and preset.asr in out
    assert f"ready: {tiny_models['sensevoice']}" in out


def test_models_reports_missing_hub_models(tmp_path: Path, capsys) -> None:
    config = tmp_path / "c.yaml"
    config.write_text("model:\n  preset: paraformer-zh\n")
    assert cli_main(["models", "list", "--config", str(config)]) == 1
    captured = capsys.readouterr()
    assert "missing: it is not downloaded" in captured.out and "cam++" in captured.out
    assert "asrd models pull" in captured.err


def test_models_pull_without_network_says_so_and_exits_1(tmp_path: Path, capsys, modelscope_imported) -> None:
    config = write_config(tmp_path)  # tiny local folders configured; --preset names hub models
    started = time.monotonic()
    assert cli_main(["models", "--config", str(config), "pull", "--preset", "nano"]) == 1
    assert time.monotonic() - started < FAST_S
    err = capsys.readouterr().err
    assert "asr   FunAudioLLM/Fun-ASR-Nano-2512: cannot download:" in err
    assert "cannot be reached" in err and "model.asr" in err


def test_models_pull_keeps_ready_models(tiny_models, tmp_path: Path, capsys) -> None:
    config = write_config(tmp_path)
    assert cli_main(["models", "pull", "--config", str(config)]) == 0
    assert "local folder, ready" in capsys.readouterr().out


def test_nano_gets_its_own_option_names_and_others_funasrs() -> None:
    from asrd.engine.options import model_options

    model = build_config({"model": {"preset": "nano", "language": "en", "use_itn": False,
                                     "hotwords": ["asrd", "FunASR"]}}, None).model
    assert model_options("FunASRNano", model) == {"language": "英文", "itn": False, "hotwords": ["asrd", "FunASR"]}
    auto = build_config({"model": {"preset": "nano"}}, None).model
    assert model_options("FunASRNano", auto)["language"] is None  # auto: the prompt names no language
    assert model_options("SenseVoiceSmall", model) == {"language": "en", "use_itn": False, "hotword": "asrd FunASR"}



def test_download_progress_is_logged_every_few_seconds_and_at_the_end(tmp_path: Path) -> None:
    import json

    from asrd.logging import setup_logging

    log_file = tmp_path / "asrd.log"
    setup_logging(log_file, "info", console=False)
    now = [0.0]
    progress = models.DownloadProgressLog("model.pt", 100 * 2**20, clock=lambda: now[0])
    for _ in range(10):  # 10 MB a second for 10 s
        now[0] += 1.0
        progress.update(10 * 2**20)
    progress.end()
    events = [json.loads(line) for line in log_file.read_text().splitlines()]
    assert [(e["event"], e["done_mb"], e["fraction"]) for e in events] == [
        ("models.download_progress", 50.0, 0.5), ("models.download_progress", 100.0, 1.0),
        ("models.download_progress", 100.0, 1.0)]
    assert events[0]["model_file"] == "model.pt" and events[0]["total_mb"] == 100.0
