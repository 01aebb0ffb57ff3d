"""When the parent gives up on its engine: a job's time limit, sized on the recording's length as it
becomes known, and the model load's limit, which every sign of life from the child renews.

A job starts with a bound from the file's size alone (the daemon never opens a recording), is
sized on the header's duration once the child has probed it, and on the decoded length once the
samples are in: a streamed webm, whose header says nothing, still gets 2 x its real length.
"""

from __future__ import annotations

import time

from asrd.config import EngineConfig

# No recording holds more seconds per byte than this: 4 kbit/s is below AMR-NB's lowest rate, the
# sparsest codec asrd reads. So size / MIN_BYTES_PER_S over-estimates any recording's length.
MIN_BYTES_PER_S = 500


def longest_length_s(size: int) -> float:
    """The longest a recording of `size` bytes can play."""
    return max(size, 0) / MIN_BYTES_PER_S


class JobDeadline:
    """The job may run engine.timeout_for(length) seconds from its start, for the best length known."""

    def __init__(self, engine: EngineConfig, size: int, audio_s: float = 0.0):
        self._engine = engine
        self.started = time.monotonic()
        self.audio_s: float | None = None  # the length the limit is sized on; None: the file size's bound
        self.limit_s = engine.timeout_for(longest_length_s(size))
        self.learn_length(audio_s)

    def learn_length(self, audio_s: float | None) -> None:
        """The child has read the header, or decoded the samples: size the limit on that length."""
        if audio_s and audio_s > 0:
            self.audio_s = audio_s
            self.limit_s = self._engine.timeout_for(audio_s)

    def heard_from_child(self) -> None:
        """A job's limit is on its total time: progress does not extend it."""

    def passed(self) -> bool:
        return time.monotonic() > self.started + self.limit_s


class LoadDeadline:
    """Loading may take any time while the child keeps saying something (a first-use download
    logs its progress); limit_s of silence means it is stuck."""

    def __init__(self, limit_s: float):
        self.limit_s = limit_s
        self.heard_from_child()

    def heard_from_child(self) -> None:
        self._until = time.monotonic() + self.limit_s

    def passed(self) -> bool:
        return time.monotonic() > self._until
