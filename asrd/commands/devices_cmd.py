"""`asrd devices`: each device, whether it can be used and why, which one `auto` picks, and where
each configured model will run on it, with the reason."""

from __future__ import annotations

import argparse
from importlib import metadata

from asrd.config import load_config
from asrd.engine import device as devices
from asrd.engine import placement

FUNASR_HONOURS_DEVICES = (1, 4, 16)  # the first FunASR that keeps vad_kwargs["device"] (and punc's, spk's)


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    devices.prepare_environment(config.engine.device, config.engine.device_priority)
    import torch

    for status in devices.all_device_status(torch):
        mark = "yes" if status.available else "no "
        print(f"{status.name:<5} {mark}  {status.reason}")
    try:
        choice = devices.choose_device(config.engine.device, config.engine.device_priority,
                                       config.engine.fallback_on_error, torch)
    except devices.DeviceUnavailable as exc:
        print(f"engine.device={config.engine.device}: {exc}")
        return 1
    print(f"engine.device={config.engine.device} -> {choice.device} ({choice.reason})")
    models = config.models()
    print(f"models (preset {config.model.preset}, torch {torch.__version__}):")
    for role, where in placement.plan(choice.device, torch.__version__, [r for r, m in models.items() if m]).items():
        print(f"  {role:<5} {where.device:<5} {where.reason}")
    note = _funasr_note()
    if note:
        print(note)
    return 0


def _funasr_note() -> str | None:
    """FunASR before 1.4.16 builds VAD, punc and spk on the ASR device whatever asrd asks."""
    try:
        version = metadata.version("funasr")
    except metadata.PackageNotFoundError:
        return "funasr is not installed (pip install 'asrd[engine]')"
    parts = tuple(int(p) for p in version.split(".")[:3] if p.isdigit())
    if parts < FUNASR_HONOURS_DEVICES:
        return (f"funasr {version} ignores these requests (1.4.16 honours them): asrd moves each model "
                "after loading and logs engine.device_corrected; upgrade funasr to skip that")
    return None
