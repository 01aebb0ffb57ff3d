"""Config files for tests: tiny models, temp inbox/state/log, one CPU thread."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.support.tiny_models import tiny_model_dirs, vad_model_dir


def model_section(preset: str = "sensevoice") -> dict[str, Any]:
    dirs = tiny_model_dirs()
    vad = str(vad_model_dir())
    if preset == "sensevoice":
        return {"preset": "sensevoice", "asr": str(dirs["sensevoice"]), "vad": vad}
    if preset == "paraformer-zh":
        return {"preset": "paraformer-zh", "asr": str(dirs["seaco_paraformer"]), "vad": vad,
                "punc": str(dirs["ct_punc"]), "spk": str(dirs["campplus"])}
    raise ValueError(preset)


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        merged[key] = deep_merge(merged[key], value) if isinstance(value, dict) and isinstance(
            merged.get(key), dict) else value
    return merged


def config_data(root: Path, preset: str = "sensevoice", **extra: Any) -> dict[str, Any]:
    data = {
        "inbox": str(root / "inbox"),
        "state_dir": str(root / "state"),
        "log_file": str(root / "logs" / "asrd.log"),
        "engine": {"threads": 1, "device": "cpu"},  # the same results on a machine with a GPU
        "model": model_section(preset),
    }
    return deep_merge(data, extra)


def write_config(root: Path, preset: str = "sensevoice", **extra: Any) -> Path:
    """Write config.yaml under `root`; keyword sections are merged over the defaults above."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / "config.yaml"
    path.write_text(yaml.safe_dump(config_data(root, preset, **extra), sort_keys=False))
    return path
