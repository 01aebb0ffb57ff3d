"""The `asrd` command: argument parsing and subcommands.

Each subcommand's handler is named as "module:function" and imported only when that command runs,
so `asrd --help` and `import asrd.cli` stay fast and never import torch or funasr.
Exit codes: 0 success, 1 a job/file failed or the command could not do its work, 2 bad usage or config,
130 Ctrl-C (128 + the signal for SIGHUP/SIGTERM), 141 the reader of stdout went away (`| head`).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Callable, Sequence

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE: what a shell reports for a command whose reader went away


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="config file (default: $ASRD_CONFIG, then the user config)")


def _config_args(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    check = sub.add_parser("check", help="validate the config and print every effective value with its source")
    _add_config(check)
    path = sub.add_parser("path", help="print which config file would be read")
    _add_config(path)


def _transcribe_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="+", metavar="PATH", help="recordings to transcribe")
    p.add_argument("--format", metavar="LIST", help="comma-separated outputs, e.g. txt,srt,vtt,json (default: config outputs)")
    p.add_argument("--force", action="store_true", help="transcribe again even if asrd already did this recording")
    _add_config(p)


def _models_args(p: argparse.ArgumentParser) -> None:
    from asrd.presets import PRESETS

    _add_config(p)
    sub = p.add_subparsers(dest="action", metavar="ACTION")
    listing = sub.add_parser("list", help="the presets, and whether the configured models are on this Mac (default)")
    pull = sub.add_parser("pull", help="download the configured (or named) preset's models to the ModelScope cache")
    pull.add_argument("--preset", choices=list(PRESETS), help="download this preset's models instead")
    for action in (listing, pull):  # --config after the action too, without undoing one given before it
        action.add_argument("--config", metavar="FILE", default=argparse.SUPPRESS, help="config file")


def _status_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--recent", type=int, default=10, metavar="N", help="how many finished jobs to show (default 10)")
    _add_config(p)


def _retry_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("paths", nargs="*", metavar="PATH", help="recordings to transcribe again")
    p.add_argument("--failed", action="store_true", help="queue every failed recording again")
    _add_config(p)


def _agent_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("action", choices=["install", "uninstall", "restart", "status", "plist"],
                   help="install: start at login (and now; again to upgrade); uninstall; restart; status; "
                        "plist: print the agent's definition (a systemd unit on Linux)")
    p.add_argument("--dry-run", action="store_true", help="install/uninstall: print what would be written and run")
    p.add_argument("--purge", action="store_true",
                   help="uninstall: also remove asrd's state and logs (never the shared model caches)")
    p.add_argument("--yes", action="store_true", help="--purge without asking")
    _add_config(p)


def _logs_args(p: argparse.ArgumentParser) -> None:
    from asrd.logview import LEVELS

    p.add_argument("-f", "--follow", action="store_true", help="keep showing new events (through log rotation)")
    p.add_argument("--job", metavar="ID", help="only this job's events")
    p.add_argument("--file", metavar="NAME", help="only events about this recording (name or part of its path)")
    p.add_argument("--level", choices=LEVELS, help="only this level and above")
    p.add_argument("--since", metavar="AGE", help="only events newer than this, e.g. 90s, 10m, 2h, 1d")
    p.add_argument("-n", "--lines", type=int, metavar="N", help="only the last N matching events before following")
    p.add_argument("--json", action="store_true", help="the JSON lines themselves (for jq)")
    _add_config(p)


def _doctor_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _add_config(p)


def _bench_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("clip", metavar="RECORDING", help="a recording; it is repeated to make a long file")
    p.add_argument("--repeat", type=int, default=10, help="times to repeat the recording (default 10)")
    p.add_argument("--runs", type=int, default=3, help="timed runs after one warm-up (default 3)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _add_config(p)


# name -> (handler "module:function", one-line help, argument builder)
COMMANDS: dict[str, tuple[str, str, Callable[[argparse.ArgumentParser], None]]] = {
    "run": ("asrd.commands.run_cmd:main", "run the daemon in the foreground: watch the inbox and transcribe", _add_config),
    "status": ("asrd.commands.status_cmd:main", "daemon and engine state, the job in flight, queue and recent jobs",
               _status_args),
    "logs": ("asrd.commands.logs_cmd:main", "show the log, one readable line per event; -f follows it", _logs_args),
    "doctor": ("asrd.commands.doctor_cmd:main", "check the set-up, one line each with the fix (exit 1 on a failure)",
               _doctor_args),
    "agent": ("asrd.commands.agent_cmd:main", "the login agent that runs asrd: launchd (macOS) or a systemd user unit (Linux)", _agent_args),
    "bench": ("asrd.commands.bench_cmd:main", "time asrd against FunASR's own generate() on the same audio",
              _bench_args),
    "retry": ("asrd.commands.retry_cmd:main", "queue recordings again: failed ones, or done ones to redo", _retry_args),
    "config": ("asrd.commands.config_cmd:main", "check the configuration and show where each value comes from",
               _config_args),
    "transcribe": ("asrd.commands.transcribe_cmd:main", "transcribe recordings now; transcripts are written beside them",
                   _transcribe_args),
    "devices": ("asrd.commands.devices_cmd:main", "list devices (mps/cuda/cpu), whether each is usable, and which auto picks",
                _add_config),
    "models": ("asrd.commands.models_cmd:main", "list the model presets and what is downloaded; `models pull` downloads them",
               _models_args),
}


def build_parser() -> argparse.ArgumentParser:
    import asrd

    parser = argparse.ArgumentParser(
        prog="asrd",
        description="Local, private speech transcription: drop recordings in the inbox, get transcripts beside them.",
    )
    parser.add_argument("--version", action="version", version=f"asrd {asrd.__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (_, help_text, add_args) in COMMANDS.items():
        add_args(sub.add_parser(name, help=help_text, description=help_text))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    try:
        try:
            return _dispatch(argv)
        finally:
            sys.stdout.flush()  # here, not at exit (--help and usage errors too): a reader gone is answered below
    except BrokenPipeError:
        return _reader_gone()


def _dispatch(argv: Sequence[str] | None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    target = COMMANDS[args.command][0]
    module_name, func_name = target.split(":")
    handler = getattr(importlib.import_module(module_name), func_name)
    try:
        return int(handler(args) or 0)
    except KeyboardInterrupt as exc:  # Ctrl-C: 130; SIGHUP/SIGTERM where a command asked for them (asrd.interrupt)
        return getattr(exc, "exit_code", 130)
    except _config_error() as exc:
        print(f"asrd: {exc}", file=sys.stderr)
        return EXIT_USAGE


def _reader_gone() -> int:
    """stdout's reader closed the pipe (`asrd config check | head -1`): stop quietly, as a command
    killed by SIGPIPE would. stdout goes to devnull so Python's final flush has nowhere to fail."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
    return EXIT_BROKEN_PIPE


def _config_error() -> type[Exception]:
    from asrd.config import ConfigError

    return ConfigError


if __name__ == "__main__":
    raise SystemExit(main())
