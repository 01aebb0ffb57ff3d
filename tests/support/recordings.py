"""Distinct recordings for tests: asrd keys jobs on content, so two byte-identical copies are one
recording (the second is a duplicate, not new work). Tests that need N separate jobs make N clips
that differ in one inaudible sample."""

from __future__ import annotations

import zlib
from pathlib import Path

import soundfile as sf


def distinct_wav(source: Path, target: Path) -> Path:
    """`source` (a wav) written to `target` with its last 8 samples set (at amplitude <= 15 of 32767)
    from a hash of the target's name, so every name gets its own content and the words stay the same."""
    samples, rate = sf.read(source, dtype="int16", always_2d=True)
    samples = samples.copy()
    salt = zlib.crc32(target.name.encode())
    samples[-8:, 0] = [(salt >> (4 * i)) & 0xF for i in range(8)]  # 32 bits of name, 8 tiny samples
    target.parent.mkdir(parents=True, exist_ok=True)
    sf.write(target, samples, rate, subtype="PCM_16")
    return target
