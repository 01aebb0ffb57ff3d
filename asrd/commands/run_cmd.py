"""`asrd run`: the daemon, in the foreground (launchd runs it; no self-daemonising)."""

from __future__ import annotations

import argparse
import sys

from asrd.cli import EXIT_FAILED
from asrd.config import load_config
from asrd.lock import AlreadyRunning
from asrd.logging import setup_logging


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    setup_logging(config.log_file, config.log_level, console=True)
    from asrd.daemon import Daemon

    try:
        return Daemon(config).run()
    except AlreadyRunning as exc:
        print(f"asrd: {exc}", file=sys.stderr)
        return EXIT_FAILED
