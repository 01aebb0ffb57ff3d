"""Finished transcripts kept in state_dir, one per recording content (`transcripts/<sha256>.json`).

Why: outputs can then be written again without recomputing — for a recording that moved while its
job ran, a format asked for later (`asrd transcribe --format vtt`), or a copy of a recording asrd
already has. The folder is private (0700, files 0600) like the rest of the state: it holds text.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

from asrd.output import write_atomic
from asrd.transcript import Transcript

FOLDER = "transcripts"


class TranscriptStore:
    def __init__(self, state_dir: Path):
        self.folder = Path(state_dir) / FOLDER
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)

    def _path(self, sha256: str) -> Path:
        if not sha256 or not all(c in "0123456789abcdef" for c in sha256):
            raise ValueError(f"not a sha256: {sha256!r}")
        return self.folder / f"{sha256}.json"

    def save(self, transcript: Transcript) -> None:
        # not flushed: a cache (the outputs and the ledger are durable); lost in a power cut, it costs a
        # recompute at most, where a flush would cost two full flushes a job on a Mac
        write_atomic(self._path(transcript.source.sha256), json.dumps(transcript.to_dict(), ensure_ascii=False),
                     durable=False)

    def load(self, sha256: str, path: str | os.PathLike[str] | None = None) -> Transcript | None:
        """The stored transcript of this content, its source re-pointed at `path` (where the
        recording is now); None if none is stored or it cannot be read."""
        try:
            transcript = Transcript.from_dict(json.loads(self._path(sha256).read_text(encoding="utf-8")))
        except (OSError, ValueError, KeyError, TypeError):
            return None
        if path is not None:
            transcript.source = replace(transcript.source, path=str(Path(path).absolute()))
        return transcript

    def forget(self, sha256: str) -> None:
        self._path(sha256).unlink(missing_ok=True)

