"""`<name>.asrd-error.json` beside a recording that could not be transcribed: what went wrong,
after how many tries, and how to ask again. Removed when a later try succeeds."""

from __future__ import annotations

import json
import time
from pathlib import Path

import asrd
from asrd.output import write_atomic

SUFFIX = ".asrd-error.json"


def error_record_path(source: Path) -> Path:
    return source.with_name(source.name + SUFFIX)


def write_error_record(source: Path, reason: str, attempts: int, crashes: int) -> Path:
    path = error_record_path(source)
    record = {
        "file": str(source),
        "reason": reason,
        "attempts": attempts,
        "crashes": crashes,
        "failed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "retry": f"asrd retry {json.dumps(str(source))}",
        "asrd_version": asrd.__version__,
    }
    write_atomic(path, json.dumps(record, indent=2, ensure_ascii=False) + "\n")
    return path


def remove_error_record(source: Path) -> None:
    error_record_path(source).unlink(missing_ok=True)
