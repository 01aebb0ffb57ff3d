"""`asrd status [--json]`: is the daemon running, what is the engine doing, what is queued and done.

Read from the ledger plus the status file the daemon refreshes; works whether or not it runs.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from asrd.config import load_config
from asrd.ledger import Ledger
from asrd.lock import is_held
from asrd.plural import count
from asrd.status import read_status


def gather(config, recent: int) -> dict[str, Any]:
    ledger = Ledger(config.state_dir)
    running = is_held(config.state_dir)
    status = read_status(config.state_dir) or {}
    return {
        "running": running,
        "pid": status.get("pid") if running else None,
        "started_at": status.get("started_at") if running else None,
        "inbox": str(config.inbox),
        "inbox_available": config.inbox.is_dir(),
        "inbox_unreadable": status.get("inbox_unreadable") if running else None,
        "engine": status.get("engine") if running else {"state": "stopped"},
        "job": status.get("job") if running else None,
        "waiting_files": status.get("waiting_files", []) if running else [],
        "counts": ledger.counts(),
        "queue": [asdict(job) for job in ledger.queued(limit=20)],
        "recent": [asdict(job) for job in ledger.recent(recent)],
        "status_updated_at": status.get("updated_at"),
    }


def _duration(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}h {rest // 60:02d}m" if hours else f"{rest // 60}m {rest % 60:02d}s"


def render(info: dict[str, Any]) -> str:
    lines = []
    if info["running"]:
        lines.append(f"asrd: running (pid {info['pid']}, up {_duration(time.time() - info['started_at'])})")
    else:
        lines.append("asrd: not running (start it with `asrd run`, or install the launchd agent)")
    lines.append(f"inbox: {info['inbox']}" + ("" if info["inbox_available"] else "  (missing!)")
                 + (f"  (cannot be read: {info['inbox_unreadable']}; see `asrd doctor`)"
                    if info.get("inbox_unreadable") else ""))
    engine = info["engine"] or {}
    if engine.get("state", "stopped") == "stopped":
        lines.append("engine: stopped" + (f"  (last error: {engine['last_error']})" if engine.get("last_error") else ""))
    else:
        lines.append(f"engine: {engine['state']} on {engine.get('device') or '?'} (preset {engine.get('preset')}), "
                     f"{count(engine.get('jobs_served', 0), 'job')} served, {count(engine.get('restarts', 0), 'restart')}"
                     + _memory(engine))
    if engine.get("device_note"):
        lines.append(f"  {engine['device_note']}")
    job = info["job"]
    if job:
        progress = f"{job.get('fraction', 0):.0%}"
        if job.get("segments_total"):
            progress += f" ({job['segments_done']}/{job['segments_total']} segments)"
        stage = f"{job['stage']}  " if job.get("stage") else ""
        lines.append(f"now: {Path(job['file']).name}  {stage}{progress}  {_duration(time.time() - job['started_at'])}")
    for path in info["waiting_files"]:
        lines.append(f"still being written: {Path(path).name}")
    counts = info["counts"]
    ready = [job for job in info["queue"] if job.get("missing_since") is None]
    lines.append(f"queue: {counts['queued']} waiting" + (f", next: {Path(ready[0]['path']).name}" if ready else ""))
    for job in info["queue"]:
        if job.get("missing_since") is not None:
            lines.append(f"  waiting for its recording: {job['path']} (moved away, or its disk is not attached)")
    if info["recent"]:
        lines.append("recent:")
        for job in info["recent"]:
            when = time.strftime("%Y-%m-%d %H:%M", time.localtime(job["finished_at"] or 0))
            if job["state"] == "done":
                detail = f"{job['audio_s'] or 0:.1f} s audio, RTF {job['rtf'] or 0:.3f}"
            else:
                detail = job["last_error"] or ""
            lines.append(f"  {when}  {job['state']:<6}  {Path(job['path']).name}  {detail}")
    lines.append(f"totals: {counts['done']} done, {counts['failed']} failed, {counts['queued']} queued, "
                 f"{counts['running']} running")
    return "\n".join(lines)


def _memory(engine: dict[str, Any]) -> str:
    """', memory 1234 MB of 8192' after a job (macOS: the physical footprint, GPU buffers included)."""
    if engine.get("memory_mb") is None:
        return ""
    limit = engine.get("memory_limit_mb")
    return f", memory {engine['memory_mb']} MB" + (f" of {limit}" if limit else "")


def main(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    info = gather(config, args.recent)
    print(json.dumps(info, indent=2, default=str) if args.json else render(info))
    return 0
