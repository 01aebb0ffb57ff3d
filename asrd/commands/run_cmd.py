"""`asrd run`: the daemon, in the foreground (launchd runs it; no self-daemonising)."""

from __future__ import annotations

import argparse
import sys

from asrd.config_wait import load_or_wait
from asrd.logging import setup_logging
from asrd.macos.launchd_logs import trim as trim_launchd_logs


def main(args: argparse.Namespace) -> int:
    config = load_or_wait(args.config)  # a bad config waits for its fix: no exit into launchd's KeepAlive
    if config is None:
        return 0  # stopped while waiting
    trim_launchd_logs(config.log_file.parent)  # launchd appends our stdout/stderr there and never rotates them
    # On a terminal the events are shown as they happen. Under launchd stderr is a file that is never
    # rotated (and at debug level events hold transcript text): there the rotated log file is the record.
    setup_logging(config.log_file, config.log_level, console=sys.stderr.isatty())
    from asrd.daemon import Daemon

    return Daemon(config, args.config).run()  # another asrd holding the lock is waited out, not exited on
