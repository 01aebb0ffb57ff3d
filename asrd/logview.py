"""Reading asrd's JSON log for people: every rotated file in order, filters, one line per event,
and following the file through rotation.

The daemon's RotatingFileHandler renames `asrd.log` to `asrd.log.1` (and .1 to .2 ...) when it is
full and opens a new `asrd.log`; a follower holding the old file reads it to its end, then moves to
the new one (told apart by inode).
"""

from __future__ import annotations

import json
import os
import re
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator

LEVELS = ("debug", "info", "warning", "error", "critical")
# Shown after the event and file, in this order, when present: the figures worth a glance.
FIGURES = ("device", "audio_s", "processing_s", "rtf", "fraction", "segments_done", "segments_total", "segments",
           "load_s", "cold_start_s", "attempt", "will_retry", "reason", "error", "message", "pid", "inbox",
           "preset", "outputs", "same_as", "restarts")
COLOURS = {"debug": "\033[2m", "info": "\033[32m", "warning": "\033[33m", "error": "\033[31m", "critical": "\033[1;31m"}
BOLD, RESET = "\033[1m", "\033[0m"


def log_files(log_file: Path) -> list[Path]:
    """The log and its rotated copies (`asrd.log.1` is the newest of those) that exist, oldest first."""
    log_file = Path(log_file)
    rotated = {}
    for path in log_file.parent.glob(f"{log_file.name}.*") if log_file.parent.is_dir() else ():
        suffix = path.name[len(log_file.name) + 1:]
        if suffix.isdigit():
            rotated[int(suffix)] = path
    return [rotated[i] for i in sorted(rotated, reverse=True)] + ([log_file] if log_file.exists() else [])


def parse_since(text: str) -> float:
    """'90s', '10m', '2h', '1d' (or plain seconds) -> seconds."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", text)
    if not match:
        raise ValueError(f"--since {text!r}: use a number with s, m, h or d, e.g. 10m")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def event_time(event: dict[str, Any]) -> float | None:
    try:
        stamp = datetime.fromisoformat(str(event["timestamp"]).replace("Z", "+00:00"))
    except (KeyError, ValueError):
        return None
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=timezone.utc)
    return stamp.timestamp()


@dataclass
class Filter:
    job: str | None = None
    file: str | None = None  # a file name, or part of its path
    level: str | None = None  # this level and above
    since: float | None = None  # epoch seconds

    def __call__(self, event: dict[str, Any] | None) -> bool:
        if event is None:  # a line that is not JSON: shown only when nothing is filtered
            return self.job is None and self.file is None and self.level is None and self.since is None
        if self.job is not None and str(event.get("job_id")) != self.job:
            return False
        if self.file is not None:
            path = str(event.get("file") or "")
            if self.file != Path(path).name and self.file not in path:
                return False
        if self.level is not None:
            level = str(event.get("level", "info")).lower()
            rank = LEVELS.index(level) if level in LEVELS else 1
            if rank < LEVELS.index(self.level):
                return False
        if self.since is not None:
            when = event_time(event)
            if when is None or when < self.since:
                return False
        return True


def parse(line: str) -> dict[str, Any] | None:
    try:
        event = json.loads(line)
    except ValueError:
        return None
    return event if isinstance(event, dict) else None


def _figure(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1 else f"{value:.1f}"
    if isinstance(value, (list, tuple)):
        return ",".join(str(v) for v in value)
    if isinstance(value, dict):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return str(value)


def render(event: dict[str, Any], colour: bool = False) -> str:
    """One line: local time, level, event, file name, key figures."""
    when = event_time(event)
    stamp = datetime.fromtimestamp(when).strftime("%Y-%m-%d %H:%M:%S") if when is not None else "?" * 19
    level = str(event.get("level", "info")).lower()
    name = str(event.get("event", "?"))
    parts = [stamp, f"{level:<7}", f"{name:<18}"]
    if colour:
        parts[1] = f"{COLOURS.get(level, '')}{parts[1]}{RESET}"
        parts[2] = f"{BOLD}{parts[2]}{RESET}"
    if event.get("file"):
        parts.append(Path(str(event["file"])).name)
    if event.get("job_id") is not None:
        parts.append(f"#{event['job_id']}")
    parts += [f"{key}={_figure(event[key])}" for key in FIGURES if event.get(key) not in (None, "", [])]
    return "  ".join(parts).rstrip()


def read_lines(files: list[Path]) -> Iterator[str]:
    for path in files:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    if line.strip():
                        yield line.rstrip("\n")
        except FileNotFoundError:  # rotated away while reading: its lines are in the next name
            continue


def snapshot(log_file: Path) -> tuple[list[str], tuple[int, int] | None]:
    """The current log's complete lines and where they end (inode, offset), so a follower starts
    exactly there: nothing written between reading and following is lost or shown twice."""
    try:
        with open(log_file, "rb") as handle:
            data = handle.read()
            inode = os.fstat(handle.fileno()).st_ino
    except FileNotFoundError:
        return [], None
    end = data.rfind(b"\n") + 1
    lines = [line for line in data[:end].decode("utf-8", "replace").split("\n") if line.strip()]
    return lines, (inode, end)


def follow(log_file: Path, start: tuple[int, int] | None = None, poll_s: float = 0.2,
           stop: Callable[[], bool] = lambda: False) -> Iterator[str]:
    """Lines appended to log_file after `start` (inode, offset; None: its end now), across rotations
    and a file that does not exist yet."""
    log_file = Path(log_file)
    handle, inode, pending = None, None, b""
    first = True
    while not stop():
        if handle is None:
            try:
                handle = open(log_file, "rb")
                inode = os.fstat(handle.fileno()).st_ino
                if first and start is None:
                    handle.seek(0, os.SEEK_END)
                elif first and start[0] == inode:
                    handle.seek(start[1])
                # else a file created (or rotated in) since: read from its start
            except FileNotFoundError:
                handle = None
            first = False
        chunk = handle.read() if handle is not None else b""
        if chunk:
            pending += chunk
            *lines, pending = pending.split(b"\n")
            yield from (line.decode("utf-8", "replace") for line in lines if line.strip())
            continue
        try:
            current = os.stat(log_file).st_ino
        except FileNotFoundError:
            current = None
        if handle is not None and current != inode:  # rotated: the old file was read to its end above
            handle.close()
            handle, pending = None, b""
            continue
        time.sleep(poll_s)
    if handle is not None:
        handle.close()
