"""`<name>.asrd-error.json` beside a recording that could not be transcribed: what went wrong,
after how many tries, and how to ask again. Removed when a later try succeeds.

Writing it is part of handling an error, so it must never raise: where the recording's folder refuses
it (read-only, full, a name too long) it goes to the caller's fallback folder (the daemon's
`state_dir/errors`) under a name made unique by a hash of the recording's path, and where even that
fails the caller learns it from None.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import time
from pathlib import Path
from typing import Any

import asrd
from asrd.names import fit_in
from asrd.output import write_atomic

SUFFIX = ".asrd-error.json"
_PATH_HASH_CHARS = 12


def _path_hash(source: Path) -> str:
    return hashlib.sha256(str(source).encode("utf-8", "surrogateescape")).hexdigest()[:_PATH_HASH_CHARS]


def error_record_path(source: Path) -> Path:
    """`<name>.asrd-error.json` beside the recording; a name too long for that is shortened
    (`<cut name>… <hash>.asrd-error.json`, the hash keeping two long names apart)."""
    name = fit_in(source.parent, source.name, SUFFIX)
    if name != source.name + SUFFIX:
        name = fit_in(source.parent, source.name, f" {_path_hash(source)}{SUFFIX}")
    return source.with_name(name)


def fallback_record_path(source: Path, fallback_dir: Path) -> Path:
    """`<name>.<hash of its path>.asrd-error.json` in the fallback folder: one per recording."""
    return fallback_dir / fit_in(fallback_dir, source.name, f".{_path_hash(source)}{SUFFIX}")


def retry_command(source: Path) -> str:
    """`asrd retry '<path>'`, quoted for the shell: pasting it runs asrd and nothing else."""
    return f"asrd retry {shlex.quote(str(source))}"


def write_error_record(
    source: Path, reason: str, attempts: int, crashes: int, fallback_dir: Path | None = None
) -> Path | None:
    """Write the record beside `source`, else in `fallback_dir`; the path written, or None."""
    record: dict[str, Any] = {
        "file": str(source),
        "reason": reason,
        "attempts": attempts,
        "crashes": crashes,
        "failed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "retry": retry_command(source),
        "asrd_version": asrd.__version__,
    }
    beside = error_record_path(source)
    problem = _try_write(beside, record)
    if problem is None:
        if fallback_dir is not None:
            _remove(fallback_record_path(source, Path(fallback_dir)))  # an older one is out of date
        return beside
    if fallback_dir is None:
        return None
    fallback = fallback_record_path(source, Path(fallback_dir))
    record["not_beside_the_recording"] = f"{beside}: {problem}"
    try:
        Path(fallback_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    except OSError:
        return None
    return fallback if _try_write(fallback, record) is None else None


def _try_write(path: Path, record: dict[str, Any]) -> str | None:
    """Write `record` at `path`; None on success, else why not."""
    try:
        data = json.dumps(record, indent=2, ensure_ascii=False) + "\n"
        write_atomic(path, data.encode("utf-8", "surrogateescape"))
    except (OSError, ValueError) as exc:  # ValueError: a name that is not valid text
        return str(exc)
    return None


def remove_error_record(source: Path, fallback_dir: Path | None = None) -> None:
    """Remove the recording's error record, beside it and in the fallback folder (best effort)."""
    _remove(error_record_path(source))
    if fallback_dir is not None:
        _remove(fallback_record_path(source, Path(fallback_dir)))


def _remove(path: Path) -> None:
    try:
        path.unlink(missing_ok=True)
    except OSError:
        pass  # a read-only folder cannot hold a stale record either
