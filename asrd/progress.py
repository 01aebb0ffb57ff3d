"""A one-line progress bar for the terminal (only drawn when stderr is a tty)."""

from __future__ import annotations

import sys
import time
from typing import TextIO


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    return f"{minutes:02d}:{secs:02d}"


class ProgressBar:
    def __init__(self, label: str, stream: TextIO | None = None, width: int = 24):
        self.label = label
        self.stream = stream or sys.stderr
        self.enabled = self.stream.isatty()
        self.width = width
        self.started = time.monotonic()
        self._stage = ""
        self._last: tuple[float, str, float] = (0.0, "", 0.0)

    def stage(self, name: str) -> None:
        """What the engine does now (`detecting speech`): a long file's VAD shows no progress for minutes."""
        self._stage = name
        self.update(*self._last)

    def update(self, fraction: float, detail: str = "", audio_done_s: float = 0.0) -> None:
        self._last = (fraction, detail, audio_done_s)
        if not self.enabled:
            return
        elapsed = time.monotonic() - self.started
        filled = int(self.width * min(max(fraction, 0.0), 1.0))
        rtf = f"  RTF {elapsed / audio_done_s:.2f}" if audio_done_s > 0 else ""
        bar = "#" * filled + "." * (self.width - filled)
        words = " ".join(part for part in (self._stage, detail) if part)
        self.stream.write(f"\r{self.label} [{bar}] {fraction:4.0%} {words}  {_clock(elapsed)}{rtf}\x1b[K")
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r\x1b[K")
            self.stream.flush()
