"""`asrd devices`: each device, whether it can be used and why, and which one `auto` picks."""

from __future__ import annotations

import argparse

from asrd.config import load_config
from asrd.engine import device as devices


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
    return 0
