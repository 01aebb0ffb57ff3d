"""A moved recording takes its transcripts along.

The ledger keys jobs on content, so a done recording that is renamed or moved keeps its job; its
outputs follow it here: each one asrd still owns (unedited) moves to the recording's new folder under
the new recording's name (the naming rule of write_outputs), while edited and user files stay where
they are. Files are moved as they are, not rendered again (the transcript is not kept after a job):
the json output's `source.path`, and the md output's title, keep naming the recording as it was called
when it was transcribed.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Sequence
from pathlib import Path

from asrd.hashing import sha256_file
from asrd.manifest import Manifest, path_key
from asrd.output import FORMATS, _fsync_dir, _is_free, choose_base, output_path, write_atomic

_rename = os.rename  # tests swap it to simulate a crash


def move_outputs(
    manifest: Manifest,
    outputs: Sequence[str | os.PathLike[str]],
    old_source: str | os.PathLike[str],
    new_source: str | os.PathLike[str],
    content_sha256: str,
) -> list[Path]:
    """Move the recording's unedited outputs beside `new_source`; returns its outputs now (in the order
    of `outputs`): the moved ones at their new paths and the ones left in place that still exist.

    Safe to repeat (after a crash midway it finishes the move and gives the same answer); an output
    that cannot be moved (a read-only or full volume) stays where it is. Never raises OSError.
    """
    old, new = Path(old_source).absolute(), Path(new_source).absolute()
    paths = [Path(o) for o in outputs]
    ours = _ours_by_format(manifest, paths, old, content_sha256)
    result: list[Path | None] = [p if p not in ours and os.path.lexists(p) else None for p in paths]
    if ours:
        moved = _move(manifest, ours, new, content_sha256)
        result = [moved.get(p, r) for p, r in zip(paths, result)]
    return _with_earlier_moves(manifest, paths, result, old, new, content_sha256)


def _format_of(path: Path) -> str | None:
    fmt = path.name.rsplit(".", 1)[-1].lower() if "." in path.name else ""
    return fmt if fmt in FORMATS else None


def _ours_by_format(manifest: Manifest, paths: list[Path], source: Path, content: str) -> dict[Path, tuple[str, str]]:
    """The outputs asrd may move (present, unedited, this recording's), one per format: path ->
    (format, sha256 of the file)."""
    ours: dict[Path, tuple[str, str]] = {}
    for path in paths:
        fmt, row = _format_of(path), manifest.entry(path)
        if fmt is None or fmt in (f for f, _ in ours.values()) or row is None or not row.belongs_to(source, content):
            continue
        try:
            sha = sha256_file(path) if os.path.isfile(path) and not os.path.islink(path) else None
        except OSError:
            continue
        if sha is not None and row.is_ours(sha):
            ours[path] = (fmt, sha)
    return ours


def _move(manifest: Manifest, ours: dict[Path, tuple[str, str]], new: Path, content: str) -> dict[Path, Path]:
    """Move each output to `<new base>.<fmt>`; old path -> where it is now."""
    movable = frozenset(path_key(p) for p in ours)
    base = choose_base(new, [fmt for fmt, _ in ours.values()], manifest, content_sha256=content, movable=movable)
    targets = {p: output_path(base, fmt) for p, (fmt, _) in ours.items()}
    for path, target in targets.items():
        if path_key(path) == path_key(target):  # the name still fits: only the recording changes
            manifest.record(target, ours[path][1], new, content)
    manifest.intend([(targets[p], sha) for p, (_, sha) in ours.items()], new, content)
    placed: dict[Path, Path] = {}
    for path, target in targets.items():
        if _place(manifest, path, target, new, content):
            placed[path] = target
    for folder in {t.parent for t in placed.values()} | {p.parent for p in placed}:
        _fsync_dir(folder)
    manifest.commit(list(placed.values()))
    manifest.abandon([(t, ours[p][1]) for p, t in targets.items() if p not in placed])
    for path, target in placed.items():
        if path_key(path) != path_key(target):
            manifest.forget(path)
    return {p: placed.get(p, p) for p in targets}


def _place(manifest: Manifest, path: Path, target: Path, new: Path, content: str) -> bool:
    """Rename `path` to `target` (a copy where the two are on different volumes); False if it stays."""
    if path_key(path) == path_key(target):
        return True
    if not _is_free(target, new, path_key(new), manifest, content):
        return False  # someone put a file there since the name was chosen
    try:
        try:
            _rename(path, target)
        except OSError as exc:
            if exc.errno != errno.EXDEV:
                raise
            write_atomic(target, path.read_bytes())
            path.unlink()
    except OSError:
        return False
    return True


def _with_earlier_moves(
    manifest: Manifest, paths: list[Path], result: list[Path | None], old: Path, new: Path, content: str
) -> list[Path]:
    """Fill in outputs an earlier, interrupted call already moved (gone from their old paths but
    present, and asrd's, beside the new recording), and finish its bookkeeping."""
    found = [Path(row.path) for row in manifest.outputs_of(new, content)]
    found = [p for p in found if p not in result and os.path.isfile(p) and manifest.owns(p, new, content)]
    for i, path in enumerate(paths):
        same_format = [p for p in found if _format_of(p) == _format_of(path)]
        if result[i] is None and same_format:
            result[i] = same_format[0]
            found.remove(same_format[0])
            _finish_earlier_move(manifest, path, same_format[0], old, content)
    return [p for p in result if p is not None]


def _finish_earlier_move(manifest: Manifest, old_path: Path, moved: Path, old: Path, content: str) -> None:
    """The rename happened, its bookkeeping did not: commit the new row, drop the old one."""
    row = manifest.entry(moved)
    try:
        if row is not None and row.pending_sha256 and sha256_file(moved) == row.pending_sha256:
            manifest.commit([moved])
    except OSError:
        pass
    if not os.path.lexists(old_path) and manifest.owns(old_path, old, content):
        manifest.forget(old_path)
