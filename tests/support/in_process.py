"""A Daemon object in this test process, with one recording of the inbox queued: for what the daemon
decides between the watcher, the ledger and the engine, without starting an engine or a loop."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from asrd.config import load_config
from asrd.daemon import Daemon
from asrd.engine.process import JobOutcome
from asrd.hashing import sha256_file
from asrd.ledger import Job
from asrd.transcript import Segment, SourceInfo, Transcript
from asrd.watcher import Ready
from tests.support.configs import write_config


def queued_memo(tmp_path: Path, content: bytes = b"RIFF" + bytes(2000), **config) -> tuple[Daemon, Path, Job]:
    """A daemon whose ledger holds `inbox/memo.wav`, queued as the watcher would have handed it on."""
    cfg = load_config(write_config(tmp_path, **config))
    cfg.inbox.mkdir(parents=True, exist_ok=True)
    memo = cfg.inbox / "memo.wav"
    memo.write_bytes(content)
    daemon = Daemon(cfg)
    job = offer(daemon, memo)
    return daemon, memo, job


def hand_on(daemon: Daemon, path: Path) -> None:
    """What the watcher does once `path` has settled: hand it to the daemon."""
    st = path.stat()
    daemon._offer(Ready(path, st.st_size, st.st_mtime_ns))


def offer(daemon: Daemon, path: Path) -> Job:
    st = path.stat()
    sha = sha256_file(path)
    daemon.ledger.remember_hash(path, st.st_size, st.st_mtime_ns, sha)
    return daemon.ledger.offer(path, st.st_size, st.st_mtime_ns, sha)[0]


def transcript_of(job: Job) -> Transcript:
    """What the engine would return for the job's content (its text is not the point here)."""
    source = SourceInfo(path=job.path, size=job.size, sha256=job.sha256)
    return Transcript(source=source, segments=[Segment(0.0, 2.0, "hello there")], language="en",
                      model={"name": "test"}, duration_s=2.0, processing_s=0.2)


def run_job(daemon: Daemon, engine) -> None:
    """One turn of work on the due job, with `engine(job, path) -> JobOutcome` in the engine's place."""
    daemon._transcribe = engine
    daemon._work(daemon.ledger.next_due(time.time()))


def ends(status: str, **kw) -> Callable[..., JobOutcome]:
    """An engine stand-in whose every job ends with `status`."""
    return lambda job, path: JobOutcome(status, **kw)
