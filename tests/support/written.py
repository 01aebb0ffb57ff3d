"""Helpers for the output-writing tests: a recording on disk with a transcript of its real content,
and a look at what a folder holds (outputs, temp files)."""

from __future__ import annotations

from pathlib import Path

from asrd.hashing import sha256_file
from asrd.transcript import Segment, SourceInfo, Transcript

FMTS = ["txt", "srt", "json"]


def recording(path: Path, content: bytes, words: str = "hello there") -> tuple[Path, Transcript]:
    """Write `content` at `path` and return it with a transcript that names its path and content hash."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)
    source = SourceInfo(path=str(path), size=len(content), sha256=sha256_file(path))
    return path, Transcript(source=source, segments=[Segment(0.0, 2.0, words)], language="en",
                            model={"name": "test"}, duration_s=2.0, processing_s=0.2)


def names(paths: list[Path]) -> list[str]:
    return [Path(p).name for p in paths]


def listing(folder: Path) -> list[str]:
    """Every name in `folder`, temp files and dotfiles included, sorted."""
    return sorted(p.name for p in folder.iterdir())


def temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".asrd-tmp"))
