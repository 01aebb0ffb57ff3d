"""`asrd retry PATH...|--failed`: queue recordings again (a failed one, or a done one to redo it)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from asrd.cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from asrd.config import load_config
from asrd.ledger import Ledger
from asrd.lock import is_held
from asrd.transcript_store import TranscriptStore


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    if not args.paths and not args.failed:
        print("asrd retry: give recordings to queue again, or --failed for every failed one", file=sys.stderr)
        return EXIT_USAGE
    ledger = Ledger(config.state_dir)
    requeued = ledger.retry(failed=True) if args.failed else []
    missing = []
    for name in args.paths:
        jobs = ledger.retry(path=Path(name).expanduser().absolute())
        requeued += jobs
        if not jobs:
            missing.append(name)
    transcripts = TranscriptStore(config.state_dir)
    for job in requeued:
        transcripts.forget(job.sha256)  # a redo asked for is computed afresh, not copied from the last run
        print(f"queued  {job.path}")
    for name in missing:
        print(f"asrd retry: {name}: not known to asrd (or being transcribed right now)", file=sys.stderr)
    if requeued and not is_held(config.state_dir):
        print("asrd is not running: the files are transcribed when it starts (`asrd run`)")
    return EXIT_FAILED if missing else EXIT_OK
