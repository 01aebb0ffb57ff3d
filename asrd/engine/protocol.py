"""What the daemon and the engine process say to each other (pickled over a multiprocessing Pipe).

Parent -> child: JobRequest, or SHUTDOWN.
Child -> parent: Ready | LoadFailed (once, after loading), then per job any number of LogEvent,
JobStage, JobProgress and DeviceFellBack, ending in JobDone or JobFailed. LogEvent may also come at any other time.
No torch here: both processes import this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from asrd.transcript import Transcript

SHUTDOWN = "shutdown"


@dataclass(frozen=True)
class JobRequest:
    job_id: int | str
    path: str
    size: int
    sha256: str
    audio_s: float = 0.0  # the length if the caller already knows it; 0: unknown, the engine finds out


@dataclass(frozen=True)
class Ready:
    pid: int
    device: str
    load_s: float
    reason: str


@dataclass(frozen=True)
class LoadFailed:
    reason: str


@dataclass(frozen=True)
class LogEvent:
    level: str
    event: str
    fields: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class JobProgress:
    job_id: int | str
    fraction: float
    done_s: float
    segments_done: int
    segments_total: int


# JobStage.stage values, in the order a job goes through them
LOADING_MODELS = "loading models"  # said by the parent: the engine starts for this job
OPENING = "opening"  # reading the container's headers (the child's probe)
DECODING = "decoding"
DETECTING_SPEECH = "detecting speech"  # VAD over the whole file
RECOGNISING = "recognising"  # ASR per speech region; JobProgress follows
FINISHING = "finishing"  # punctuation, speakers, statistics


@dataclass(frozen=True)
class JobStage:
    """The job moved on to `stage`. audio_s: the recording's length as now known (the header's at
    DECODING, the decoded samples' at DETECTING_SPEECH), None when this stage adds nothing; the
    parent sizes the job's time limit on it."""

    job_id: int | str
    stage: str
    audio_s: float | None = None


@dataclass(frozen=True)
class DeviceFellBack:
    """An op failed on the engine's device during this job (not the recording's fault): the job is
    being re-run on the CPU. `op` is the failing operator when the error names one."""

    job_id: int | str
    device: str
    op: str | None
    error: str


@dataclass(frozen=True)
class JobDone:
    job_id: int | str
    transcript: Transcript
    memory: dict[str, float]
    shapes: int = 0  # distinct input shapes this engine process has run on MPS so far


@dataclass(frozen=True)
class JobFailed:
    job_id: int | str
    reason: str
    bad_file: bool  # True: the recording cannot be decoded (AudioError); False: anything else
    memory: dict[str, float] = field(default_factory=dict)
    shapes: int = 0
