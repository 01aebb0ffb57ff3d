"""`asrd run` with a config it cannot use waits for the fix instead of exiting.

launchd restarts a job that exits non-zero forever (one reported agent reached 38,771 restarts), and
no restart can fix a typo in a config file. So the daemon logs one `config.invalid` event naming the
problem and its line, watches the file, and starts within seconds of it being fixed. While it waits
the log goes where the broken file says (when that much can be read), else to the default log file.
"""

from __future__ import annotations

import os
import re
import signal
import sys
import threading
from pathlib import Path
from typing import Any

from asrd.config import Config, ConfigError, find_config_file, load_config, user_log_file
from asrd.logging import get_logger, setup_logging

POLL_S = 1.0
log = get_logger("asrd.config")


def load_or_wait(cli_path: str | None, stop: threading.Event | None = None) -> Config | None:
    """The config, once it is valid; None if a stop signal came first (exit cleanly then)."""
    try:
        return load_config(cli_path)
    except ConfigError as first:
        error = first
    stop = stop or _stop_on_signals()
    path, _ = find_config_file(cli_path)
    setup_logging(_log_file_of(path), "info", console=sys.stderr.isatty())
    seen = _signature(path)  # before the report: a fix saved while it is said (or notified) counts
    _report(error, path)
    while not stop.wait(POLL_S):
        now = _signature(path)
        if now == seen:
            continue
        seen = now
        try:
            config = load_config(cli_path)
        except ConfigError as exc:
            _report(exc, path)
            continue
        log.info("config.fixed", config=str(path) if path else None)
        return config
    return None


def _report(error: ConfigError, path: Path | None) -> None:
    text = _read(path)
    problems = [{"problem": p, **_line_of(p, text)} for p in error.problems]
    log.error("config.invalid", config=str(path) if path else None, problems=problems,
              fix="edit the file; asrd starts as soon as it is valid (no restart needed)")
    if sys.stderr.isatty():
        print(f"asrd: {error}\nasrd: waiting for the config to be fixed (Ctrl-C to quit)", file=sys.stderr)
    from asrd.notify import announce_problem

    first = problems[0]["problem"] if problems else str(error)
    announce_problem("config.invalid", str(path or "config"), f"the config {path or ''} is invalid ({first}); "
                     "asrd starts as soon as it is fixed")


def _line_of(problem: str, text: str) -> dict[str, Any]:
    """{"line": N} for the line the problem is about: the YAML error's own, or the first line that
    sets the problem's key (`engine.threads: ...` is found as `threads:` under `engine:`)."""
    said = re.search(r"at line (\d+)", problem)
    if said:
        return {"line": int(said.group(1))}
    key = re.match(r"([A-Za-z_][\w.]*)\s*:", problem)
    if not key or not text:
        return {}
    parts = key.group(1).split(".")
    lines = text.splitlines()
    start = 0
    for depth, part in enumerate(parts):
        pattern = re.compile(rf"^\s{{{depth * 2},}}{re.escape(part)}\s*:")
        found = next((i for i in range(start, len(lines)) if pattern.match(lines[i])), None)
        if found is None:
            return {}
        start = found
    return {"line": start + 1, "key": key.group(1)}


def _log_file_of(path: Path | None) -> Path:
    """`log_file` from the broken file (its line alone, if the YAML does not parse), else the default."""
    text = _read(path)
    try:
        import yaml

        value = (yaml.safe_load(text) or {}).get("log_file")
    except Exception:  # not YAML (or not a mapping): its own `log_file:` line may still say
        said = re.search(r"^log_file:\s*['\"]?([^'\"#\n]+?)['\"]?\s*(#.*)?$", text, re.MULTILINE)
        value = said.group(1) if said else None
    if isinstance(value, str) and value.strip():
        candidate = Path(value.strip()).expanduser()
        return candidate if candidate.is_absolute() or path is None else path.parent / candidate
    return user_log_file()


def _read(path: Path | None) -> str:
    try:
        return path.read_text(encoding="utf-8") if path else ""
    except (OSError, UnicodeDecodeError):
        return ""


def _signature(path: Path | None) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path) if path else None
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino) if st else None


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
    return stop
