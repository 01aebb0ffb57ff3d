"""Config: search order, sources, and errors that name the key (exit 2 from the CLI)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from asrd.config import ConfigError, build_config, load_config, user_config_path

ROOT = Path(__file__).resolve().parent.parent


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


def asrd(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run([sys.executable, "-m", "asrd", *args], capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=60)


def test_defaults_without_any_file():
    config = load_config()
    assert config.outputs == ("txt", "srt", "json")
    assert config.engine.device == "auto" and config.engine.device_priority == ("mps", "cuda", "cpu")
    assert config.engine.fallback_on_error is True and config.engine.threads >= 1
    assert config.model.preset == "sensevoice" and config.model.language == "auto" and config.model.use_itn
    assert config.models()["asr"] == "iic/SenseVoiceSmall"
    assert config.inbox == Path("~/Transcribe/inbox").expanduser()
    assert config.source_of("engine.device") == "default"


def test_repo_config_yaml_is_the_defaults():
    assert load_config(ROOT / "config.yaml") == load_config()


def test_search_order_cli_then_env_then_user(tmp_path, monkeypatch):
    user = write(user_config_path(), "log_level: warning\n")
    assert load_config().log_level == "warning"
    env = write(tmp_path / "env.yaml", "log_level: error\n")
    monkeypatch.setenv("ASRD_CONFIG", str(env))
    assert load_config().log_level == "error"
    cli = write(tmp_path / "cli.yaml", "log_level: debug\n")
    config = load_config(cli)
    assert config.log_level == "debug" and config.source_of("log_level") == str(cli)
    assert user.is_file()


def test_relative_paths_are_relative_to_the_config_file(tmp_path):
    cfg = write(tmp_path / "conf" / "c.yaml", "inbox: ../box\nstate_dir: ~/st\n")
    config = load_config(cfg)
    assert config.inbox == (tmp_path / "box").resolve()
    assert config.state_dir == Path("~/st").expanduser()


def test_explicit_model_overrides_preset_and_null_switches_off(tmp_path):
    folder = tmp_path / "my-asr"
    folder.mkdir()
    config = build_config({"model": {"preset": "paraformer-zh", "asr": str(folder), "spk": None}}, "x.yaml")
    models = config.models()
    assert models["asr"] == str(folder) and models["spk"] is None and models["punc"] == "ct-punc"


@pytest.mark.parametrize(
    "yaml_text, key, words",
    [
        ("engine:\n  device: gpu\n", "engine.device", ["'gpu'", "auto, mps, cuda, cpu"]),
        ("outputs: [txt, pdf]\n", "outputs[1]", ["'pdf'", "txt, srt, vtt, json"]),
        ("engine:\n  threads: many\n", "engine.threads", ["'many'", "whole number"]),
        ("engine:\n  threads: 0\n", "engine.threads", ["at least 1"]),
        ("engine:\n  fallback_on_error: maybe\n", "engine.fallback_on_error", ["true or false"]),
        ("engine:\n  devcie: cpu\n", "engine.devcie", ["unknown key", "engine.device"]),
        ("colour: blue\n", "colour", ["unknown key"]),
        ("model:\n  preset: whisper\n", "model.preset", ["sensevoice, paraformer-zh, nano"]),
        ("model:\n  asr: ./no-such-folder\n", "model.asr", ["does not exist", "hub id"]),
        ("model:\n  asr: null\n", "model.asr", ["null is not allowed"]),
        ("model:\n  language: fr\n", "model.language", ["'fr'", "auto, zh, en"]),
        ("outputs: []\n", "outputs", ["at least one of", "txt, srt, vtt, json, md"]),
        ("engine:\n  device_priority: []\n", "engine.device_priority", ["at least one of", "mps, cuda, cpu"]),
        ("model: [1, 2]\n", "model", ["expected a mapping"]),
        ("limits:\n  max_bytes: 0\n", "limits.max_bytes", ["at least 1"]),
        ("limits:\n  max_duration_s: long\n", "limits.max_duration_s", ["'long'", "expected a number"]),
        ("limits:\n  max_size: 10\n", "limits.max_size", ["unknown key", "limits.max_bytes"]),
        ("engine:\n  device: [cpu\n", "", ["not valid YAML", "line"]),
        ("- just\n- a list\n", "", ["top level must be a mapping"]),
    ],
)
def test_bad_values_name_the_key_and_exit_2(tmp_path, yaml_text, key, words):
    cfg = write(tmp_path / "bad.yaml", yaml_text)
    with pytest.raises(ConfigError) as info:
        load_config(cfg)
    message = str(info.value)
    assert str(cfg) in message
    assert key in message
    for word in words:
        assert word in message
    result = asrd("config", "check", "--config", str(cfg))
    assert result.returncode == 2
    assert key in result.stderr and "Traceback" not in result.stderr


def test_missing_config_file_is_an_error(tmp_path):
    result = asrd("config", "check", "--config", str(tmp_path / "nope.yaml"))
    assert result.returncode == 2 and "does not exist" in result.stderr


def test_config_check_shows_sources(tmp_path):
    cfg = write(tmp_path / "c.yaml", "engine:\n  device: cpu\nmodel:\n  preset: paraformer-zh\n")
    result = asrd("config", "check", "--config", str(cfg))
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line and not line.startswith("config")}
    assert lines["engine.device"].endswith(f"# {cfg}") and " cpu " in lines["engine.device"]
    assert lines["engine.threads"].endswith("# default")
    assert lines["model.punc"].endswith("# preset paraformer-zh") and "ct-punc" in lines["model.punc"]
    assert "config ok" in result.stdout


@pytest.mark.parametrize("command", [["config", "check"]])  # `run` waits for the fix: test_config_wait.py
def test_an_inbox_that_is_a_file_is_a_config_error(tmp_path, command):
    notes = write(tmp_path / "notes.txt", "my notes\n")
    cfg = write(tmp_path / "c.yaml", f"inbox: notes.txt\nstate_dir: {tmp_path / 'state'}\nlog_file: {tmp_path / 'asrd.log'}\n")
    result = asrd(*command, "--config", str(cfg))
    assert result.returncode == 2, result.stderr
    assert f"inbox: {str(notes)!r} is a file, not a folder" in result.stderr
    assert "point inbox at a folder" in result.stderr and "Traceback" not in result.stderr
    assert notes.read_text() == "my notes\n"


def test_a_file_in_the_way_of_a_folder_asrd_creates_is_a_config_error(tmp_path):
    notes = write(tmp_path / "notes.txt", "my notes\n")
    with pytest.raises(ConfigError, match=f"state_dir: '{notes}/asrd' is inside {notes}, which is a file"):
        build_config({"state_dir": "notes.txt/asrd"}, "c.yaml", base_dir=tmp_path)
