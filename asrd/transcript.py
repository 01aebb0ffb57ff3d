"""Transcript and Segment: the result of one job, shared by the engine and daemon processes.

Plain dataclasses (no torch) so they cross the process boundary by pickling and can be rebuilt
from the json output. JSON keys named here are a contract: add, never rename.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import asrd


@dataclass
class SourceInfo:
    """The recording a transcript was made from, identified by content."""

    path: str
    size: int
    sha256: str


@dataclass
class Segment:
    """One stretch of speech: times in seconds from the start of the recording."""

    start: float
    end: float
    text: str
    speaker: str | None = None
    emotion: str | None = None
    events: list[str] = field(default_factory=list)
    language: str | None = None

    @property
    def duration(self) -> float:
        return max(0.0, self.end - self.start)


@dataclass
class Transcript:
    """Everything asrd knows about one transcribed recording."""

    source: SourceInfo
    segments: list[Segment]
    language: str | None = None
    model: dict[str, Any] = field(default_factory=dict)
    device: str = "cpu"
    duration_s: float = 0.0
    processing_s: float = 0.0
    stats: dict[str, Any] = field(default_factory=dict)
    asrd_version: str = asrd.__version__

    @property
    def text(self) -> str:
        """The whole transcript as one string (segments joined with a space)."""
        return " ".join(s.text.strip() for s in self.segments if s.text.strip())

    @property
    def rtf(self) -> float:
        """Real-time factor: processing seconds per second of audio (lower is faster)."""
        return self.processing_s / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def speakers(self) -> list[str]:
        seen: list[str] = []
        for seg in self.segments:
            if seg.speaker is not None and seg.speaker not in seen:
                seen.append(seg.speaker)
        return seen

    def to_dict(self) -> dict[str, Any]:
        """The json output's content (stable keys). Read back and written again it is the same, byte
        for byte: that is how a json output is known as asrd's own, unedited (asrd.recover). So the
        rtf comes from the rounded times the file holds, not the exact ones."""
        duration_s, processing_s = round(self.duration_s, 3), round(self.processing_s, 3)
        return {
            "source": asdict(self.source),
            "text": self.text,
            "language": self.language,
            "segments": [asdict(s) for s in self.segments],
            "speakers": self.speakers,
            "model": self.model,
            "device": self.device,
            "duration_s": duration_s,
            "processing_s": processing_s,
            "rtf": round(processing_s / duration_s, 4) if duration_s > 0 else 0.0,
            "stats": self.stats,
            "asrd_version": self.asrd_version,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "Transcript":
        return cls(
            source=SourceInfo(**data["source"]),
            segments=[Segment(**s) for s in data["segments"]],
            language=data.get("language"),
            model=data.get("model", {}),
            device=data.get("device", "cpu"),
            duration_s=data.get("duration_s", 0.0),
            processing_s=data.get("processing_s", 0.0),
            stats=data.get("stats", {}),
            asrd_version=data.get("asrd_version", asrd.__version__),
        )


def speaker_turns(segments: list[Segment]) -> list[list[Segment]]:
    """Consecutive segments of one speaker (in order of start), grouped: the transcript's turns."""
    turns: list[list[Segment]] = []
    for seg in sorted(segments, key=lambda s: s.start):
        if turns and turns[-1][0].speaker == seg.speaker:
            turns[-1].append(seg)
        else:
            turns.append([seg])
    return turns
