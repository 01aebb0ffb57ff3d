"""`asrd config check|path`: show the effective configuration and where each value came from."""

from __future__ import annotations

import argparse
from pathlib import Path

from asrd.config import describe, find_config_file, load_config


def _show(value: object) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(str(v) for v in value) + "]"
    if value is None:
        return "null"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, Path):
        return str(value)
    return str(value)


def main(args: argparse.Namespace) -> int:
    path, why = find_config_file(args.config)
    if args.action == "path":
        print(f"{path} ({why})" if path else "no config file: built-in defaults")
        return 0
    config = load_config(args.config)
    print(f"config file: {path} ({why})" if path else "config file: none (built-in defaults)")
    rows = describe(config)
    width = max(len(key) for key, _, _ in rows)
    for key, value, source in rows:
        print(f"{key:<{width}}  {_show(value):<40}  # {source}")
    print("config ok")
    return 0
