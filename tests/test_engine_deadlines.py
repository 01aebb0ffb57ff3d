"""When the parent gives up on the engine: a job's limit follows the recording's real length (a
streamed webm's header has none), and a model load that stops moving is killed. Real spawned
children; the job limit's constants are scaled down in this (the parent) process."""

from __future__ import annotations

import io
import json
import os
import signal
import time
from pathlib import Path

import av
import soundfile as sf
from structlog.testing import capture_logs

import asrd.config
from asrd import audio
from asrd.config import load_config
from asrd.engine.process import (
    DONE,
    LOAD_FAILED,
    RESTART_BACKOFF_S,
    STOPPED,
    TIMEOUT,
    EngineProcess,
)
from asrd.engine.protocol import JobRequest
from asrd.engine.testhooks import ENV as HOOKS
from asrd.hashing import sha256_file
from tests.support.configs import write_config


class _Unseekable(io.RawIOBase):
    """A browser's MediaRecorder streams its webm: the muxer can never go back to write a duration."""

    def __init__(self, handle):
        self.handle = handle

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:
        return self.handle.write(data)


def streamed_webm(wav: Path, target: Path) -> Path:
    samples, rate = sf.read(wav, dtype="int16")
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "wb") as handle:
        out = av.open(_Unseekable(handle), "w", format="webm")
        stream = out.add_stream("libopus", rate=48000)
        stream.layout = "mono"
        frame = av.AudioFrame.from_ndarray(samples.reshape(1, -1), format="s16", layout="mono")
        frame.sample_rate = rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
        out.close()
    return target


def request_for(path: Path, job_id: int) -> JobRequest:
    return JobRequest(job_id, str(path), path.stat().st_size, sha256_file(path))  # length unknown to the caller


def test_a_job_without_a_duration_in_its_header_gets_the_limit_of_its_decoded_length(
        tmp_path, tiny_models, speech3, monkeypatch):
    monkeypatch.setattr(asrd.config, "JOB_TIMEOUT_BASE_S", 1.0)  # 2 x length + 120 s, scaled down:
    monkeypatch.setattr(asrd.config, "JOB_TIMEOUT_FACTOR", 1.0)  # 1 s unknown, 15 s for this 14 s file
    webm = streamed_webm(speech3[0] / "speech3.wav", tmp_path / "in" / "memo.webm")
    assert audio.probe(webm).duration_s == 0.0  # the header does not say
    engine = EngineProcess(load_config(write_config(tmp_path)))
    try:
        monkeypatch.setenv(HOOKS, json.dumps({"delay_s": 3}))  # past the 1 s, well within the 15 s
        outcome = engine.run(request_for(webm, 1))
        assert outcome.status == DONE, outcome.reason
        assert round(outcome.transcript.duration_s) == 14
        engine.stop()
        monkeypatch.setenv(HOOKS, json.dumps({"hang_on": "memo", "fault_stage": "recognising"}))
        outcome = engine.run(request_for(webm, 2))
        assert outcome.status == TIMEOUT and "its 15 s limit" in outcome.reason  # a real hang is still killed
    finally:
        engine.stop()


def test_a_load_that_stops_moving_is_killed_after_load_timeout_s(tmp_path, tiny_models, speech3, monkeypatch):
    engine = EngineProcess(load_config(write_config(tmp_path, engine={"load_timeout_s": 2})))
    give_up = time.monotonic() + 60
    try:
        monkeypatch.setenv(HOOKS, json.dumps({"hang_on_load": True}))
        outcome = engine.start(should_stop=lambda: time.monotonic() > give_up)
        assert outcome is not None and outcome.status == LOAD_FAILED
        assert "engine.load_timeout_s" in outcome.reason and not engine.alive
        # a load that keeps reporting progress, as a first-use download does, may take longer
        monkeypatch.setenv(HOOKS, json.dumps({"load_progress": True}))
        started = time.monotonic()
        assert engine.start(should_stop=lambda: time.monotonic() > give_up) is None
        assert time.monotonic() - started > 2 + 1  # longer than the limit (after a 1 s restart backoff)
    finally:
        engine.stop()


def engine_that_hangs_while_loading(tmp_path: Path, monkeypatch) -> EngineProcess:
    """An engine whose child never finishes loading its models (a stuck device or download)."""
    monkeypatch.setenv(HOOKS, json.dumps({"hang_on_load": True}))
    return EngineProcess(load_config(write_config(tmp_path, engine={"load_timeout_s": 120})))


def killing_the_loading_child(engine: EngineProcess, give_up: float = float("inf")):
    """A should_stop for engine.start that SIGKILLs the child while it loads (the OOM killer, or a
    user); it asks to stop only after the monotonic time give_up."""
    def kill_the_loading_child() -> bool:
        if engine._proc is not None and engine._proc.pid and engine._proc.is_alive():
            os.kill(engine._proc.pid, signal.SIGKILL)
        return time.monotonic() > give_up

    return kill_the_loading_child


def test_an_engine_killed_while_loading_says_how_it_died(tmp_path, tiny_models, monkeypatch):
    """`asrd status` and the log must say what ended a load (here a SIGKILL: the OOM killer, or a
    user), not a shrug; and it costs no recording anything (LOAD_FAILED, not a crash)."""
    engine = engine_that_hangs_while_loading(tmp_path, monkeypatch)
    kill_the_loading_child = killing_the_loading_child(engine, give_up=time.monotonic() + 60)

    try:
        with capture_logs() as logs:
            outcome = engine.start(should_stop=kill_the_loading_child)
        assert outcome is not None and outcome.status == LOAD_FAILED
        assert outcome.reason == "engine process died while loading (killed by SIGKILL)"
        assert engine.info.last_error == outcome.reason and engine.info.restarts == 1  # as `asrd status` shows
        # the next load waits the first restart backoff (no tight loop of failing loads)
        assert [e["retry_in_s"] for e in logs if e["event"] == "engine.load_failed"] == [RESTART_BACKOFF_S[0]]
    finally:
        engine.stop()


def test_a_stop_during_the_restart_backoff_returns_at_once_without_loading(tmp_path, tiny_models, monkeypatch):
    """After a failed load the engine waits its restart backoff before loading again; a daemon told to
    stop in that wait returns at once, without starting an engine (a load can take minutes)."""
    engine = engine_that_hangs_while_loading(tmp_path, monkeypatch)
    kill_the_loading_child = killing_the_loading_child(engine)

    try:
        assert engine.start(should_stop=kill_the_loading_child).status == LOAD_FAILED
        started = time.monotonic()
        with capture_logs() as logs:
            outcome = engine.start(should_stop=lambda: True)
        assert (outcome.status, outcome.reason) == (STOPPED, "stopping")
        assert time.monotonic() - started < RESTART_BACKOFF_S[0]
        assert not [e for e in logs if e["event"] == "engine.starting"] and engine._proc is None
    finally:
        engine.stop()


def test_consecutive_failed_loads_wait_longer_each_time(tmp_path, tiny_models, monkeypatch):
    """A device or download that keeps failing must not become a tight loop of loads: the first
    retry waits RESTART_BACKOFF_S[0], the next twice that, and `asrd status` counts both restarts."""
    engine = engine_that_hangs_while_loading(tmp_path, monkeypatch)
    kill_the_loading_child = killing_the_loading_child(engine)

    try:
        with capture_logs() as logs:
            assert engine.start(should_stop=kill_the_loading_child).status == LOAD_FAILED
            waited = time.monotonic()
            assert engine.start(should_stop=kill_the_loading_child).status == LOAD_FAILED
            assert time.monotonic() - waited >= RESTART_BACKOFF_S[0]  # the first retry waited
        first = RESTART_BACKOFF_S[0]
        assert [e["retry_in_s"] for e in logs if e["event"] == "engine.load_failed"] == [first, 2 * first]
        assert engine.info.restarts == 2
    finally:
        engine.stop()



def test_a_good_load_starts_the_restart_backoff_over(tmp_path, tiny_models, monkeypatch):
    """A failure weeks after the last one waits the first backoff again, not a doubled one."""
    engine = engine_that_hangs_while_loading(tmp_path, monkeypatch)
    kill_the_loading_child = killing_the_loading_child(engine)
    try:
        with capture_logs() as logs:
            assert engine.start(should_stop=kill_the_loading_child).status == LOAD_FAILED
            monkeypatch.delenv(HOOKS)
            assert engine.start() is None  # loads, after the first backoff
            engine.stop()
            monkeypatch.setenv(HOOKS, json.dumps({"hang_on_load": True}))
            assert engine.start(should_stop=kill_the_loading_child).status == LOAD_FAILED
        first = RESTART_BACKOFF_S[0]
        assert [e["retry_in_s"] for e in logs if e["event"] == "engine.load_failed"] == [first, first]
    finally:
        engine.stop()
