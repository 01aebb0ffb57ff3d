"""Finished recordings taken back from their outputs when asrd's state was lost.

The ledger says which recordings are done, the manifest which outputs are asrd's. If either is gone
(a deleted or corrupt state folder, a new Mac restored from a backup without it), every recording in
the inbox would look new: transcribed again, and, as its old outputs now look like the user's
files, written a second time as `memo (2).txt`. But asrd's JSON output names the recording's content
(its sha256) and holds the whole transcript. So before a recording counts as new work, the outputs
beside it are read: a JSON output of this very content makes it done again, and each output file
that is byte for byte what asrd renders from that transcript is asrd's again. A file that differs
was edited by its owner: it stays theirs, never overwritten.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from pathlib import Path

from asrd.hashing import sha256_bytes
from asrd.manifest import Manifest
from asrd.output import candidate_bases, output_path, render
from asrd.transcript import Transcript


@dataclass(frozen=True)
class Recovered:
    transcript: Transcript
    outputs: list[Path]  # asrd's own, unedited (and now in the manifest again)
    edited: list[Path]  # there, but changed by their owner since asrd wrote them


def recover_outputs(source: Path, sha256: str, formats: list[str], manifest: Manifest) -> Recovered | None:
    """The finished transcript of this recording's content, from a JSON output beside it, with the
    outputs that are still asrd's; None when there is none (then it is new work)."""
    source = Path(source).absolute()
    for n, base in enumerate(candidate_bases(source, source.parent)):
        json_path = output_path(base, "json")
        transcript = _transcript_at(json_path, sha256)
        if transcript is None:
            if n >= 2 and not os.path.lexists(json_path):
                break  # numbered names are taken in order: none further on after a free one
            continue
        transcript.source = replace(transcript.source, path=str(source))
        ours, edited = [], []
        for fmt in formats:
            path = output_path(base, fmt)
            try:
                on_disk = path.read_bytes()
            except OSError:
                continue
            if on_disk == render(transcript, fmt).encode("utf-8"):
                ours.append(path)
                if manifest.entry(path) is None:
                    manifest.record(path, sha256_bytes(on_disk), source, sha256)
            else:
                edited.append(path)
        return Recovered(transcript, ours, edited)
    return None


def _transcript_at(path: Path, sha256: str) -> Transcript | None:
    """The transcript in an asrd JSON output, if it is one and of this content."""
    try:
        if path.is_symlink() or not path.is_file() or os.path.getsize(path) > 512 * 2**20:
            return None
        transcript = Transcript.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return transcript if transcript.source.sha256 == sha256 else None

