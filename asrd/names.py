"""File names that fit the filesystem: a recording may legally be called 255 bytes long, so a name
asrd derives from it (`<stem>.json`, `<name>.asrd-error.json`, a temp name) can be longer than the
filesystem allows. Such names are cut at a UTF-8 character boundary and marked with `…`, so they stay
recognisable and never fail with ENAMETOOLONG."""

from __future__ import annotations

import os
from pathlib import Path

NAME_MAX_BYTES = 255  # what macOS (APFS, HFS+) and Linux filesystems allow, and the fallback
ELLIPSIS = "…"


def name_max(folder: str | os.PathLike[str]) -> int:
    """The longest name (bytes) `folder`'s filesystem accepts; NAME_MAX_BYTES where it won't say."""
    try:
        reported = os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError):
        return NAME_MAX_BYTES
    return reported if 0 < reported <= NAME_MAX_BYTES else NAME_MAX_BYTES


def byte_len(text: str) -> int:
    return len(text.encode("utf-8", "surrogateescape"))


def cut_bytes(text: str, room: int) -> str:
    """The longest start of `text` that is at most `room` bytes, never splitting a character."""
    kept, used = [], 0
    for char in text:
        used += byte_len(char)
        if used > room:
            break
        kept.append(char)
    return "".join(kept)


def fit_name(text: str, room: int, keep: str = "") -> str:
    """`text + keep` if it is at most `room` bytes, else `text` shortened + `…` + `keep`.

    `keep` is what must survive shortening (an extension, ` (2)`, a suffix asrd recognises).
    """
    if byte_len(text + keep) <= room:
        return text + keep
    return cut_bytes(text, room - byte_len(ELLIPSIS + keep)) + ELLIPSIS + keep


def fit_in(folder: Path, name: str, keep: str = "") -> str:
    """`name + keep` made to fit `folder`'s filesystem (see fit_name)."""
    return fit_name(name, name_max(folder), keep)
