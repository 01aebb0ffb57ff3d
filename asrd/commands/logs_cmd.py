"""`asrd logs [-f] [--job ID] [--file NAME] [--level L] [--since 10m] [--json]`: the JSON log,
one readable line per event in local time (or the JSON lines themselves for jq)."""

from __future__ import annotations

import argparse
import sys
import time
from collections import deque

from asrd import logview
from asrd.cli import EXIT_OK, EXIT_USAGE
from asrd.config import load_config


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    try:
        since = time.time() - logview.parse_since(args.since) if args.since else None
    except ValueError as exc:
        print(f"asrd logs: {exc}", file=sys.stderr)
        return EXIT_USAGE
    keep = logview.Filter(job=args.job, file=args.file, level=args.level, since=since)
    colour = not args.json and sys.stdout.isatty()

    def show(lines) -> None:
        for line in lines:
            event = logview.parse(line)
            if keep(event):
                print(line if args.json or event is None else logview.render(event, colour), flush=args.follow)

    files = logview.log_files(config.log_file)
    if not files and not args.follow:
        print(f"asrd logs: no log yet at {config.log_file}", file=sys.stderr)
        return EXIT_OK
    start = None
    if args.follow:  # the current file up to where following starts, so no line falls between
        current, start = logview.snapshot(config.log_file)
        past = [*logview.read_lines([f for f in files if f != config.log_file]), *current]
    else:
        past = logview.read_lines(files)
    if args.lines is not None:
        past = deque((line for line in past if keep(logview.parse(line))), maxlen=args.lines)
    show(past)
    if args.follow:
        show(logview.follow(config.log_file, start or (-1, 0)))  # no file yet: all of the one to come
    return EXIT_OK
