"""`asrd bench`: asrd vs FunASR's own generate() on the same audio, as a ratio measured in one run."""

from __future__ import annotations

import argparse
from pathlib import Path

from asrd.config import load_config
from asrd.logging import setup_logging


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    setup_logging(None, "warning", console=True)
    from asrd.bench import main as bench

    return bench(config, Path(args.clip).expanduser(), args.repeat, args.runs, args.json)
