"""The engine process: crashes, hangs, poison files, recycling, idle unload, and the daemon side
never importing torch. Real spawned children, real SIGKILL, test hooks inside the child."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest
from structlog.testing import capture_logs

from asrd.config import load_config
from asrd.engine.process import (
    CRASHED,
    DONE,
    STOP_GRACE_S,
    STOPPED,
    EngineProcess,
    _describe_exit,
)
from asrd.engine.protocol import JobRequest
from asrd.hashing import sha256_file
from tests.support.configs import write_config
from tests.support.daemon import log_events as events
from tests.support.recordings import distinct_wav


def clips(speech3, folder: Path, names: list[str]) -> list[Path]:
    folder.mkdir(parents=True, exist_ok=True)
    return [distinct_wav(speech3[0] / "speech3.wav", folder / name) for name in names]


def transcribe(config: Path, files: list[Path], hooks: dict | None = None, wait: bool = True):
    env = {**os.environ, "ASRD_TEST_HOOKS": json.dumps(hooks or {})}
    cmd = [sys.executable, "-m", "asrd", "transcribe", "--config", str(config), *map(str, files)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    if wait:
        out, err = proc.communicate(timeout=600)
        return proc.returncode, out, err
    return proc


def request_for(path: Path, job_id: int = 1) -> JobRequest:
    return JobRequest(job_id, str(path), path.stat().st_size, sha256_file(path), audio_s=14.1)


def test_kill_9_of_the_engine_mid_job_then_the_job_completes_once(tmp_path, tiny_models, speech3):
    [clip] = clips(speech3, tmp_path / "in", ["memo.wav"])
    config = write_config(tmp_path)
    proc = transcribe(config, [clip], hooks={"delay_s": 4}, wait=False)
    parent = psutil.Process(proc.pid)
    log_file = tmp_path / "logs" / "asrd.log"
    deadline = time.time() + 120
    while not any(e["event"] == "engine.ready" for e in events(log_file)):
        assert time.time() < deadline and proc.poll() is None, "engine never became ready"
        time.sleep(0.2)
    [ready] = [e for e in events(log_file) if e["event"] == "engine.ready"]
    assert ready["pid"] in [c.pid for c in parent.children()]
    time.sleep(0.5)  # inside the job's delay
    os.kill(ready["pid"], signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    names = sorted(p.name for p in clip.parent.iterdir())
    assert names == ["memo.json", "memo.srt", "memo.txt", "memo.wav"]  # one set, complete
    assert len(json.loads((clip.parent / "memo.json").read_text())["segments"]) == 3
    log = events(log_file)
    assert [e["event"] for e in log].count("job.done") == 1
    crashed = [e for e in log if e["event"] == "engine.crashed"]
    assert crashed and "SIGKILL" in crashed[0]["reason"]
    assert [e["event"] for e in log].count("engine.ready") == 2  # restarted once


def test_hanging_job_is_killed_at_its_timeout_and_fails_after_max_attempts(tmp_path, tiny_models, speech3):
    hang, good = clips(speech3, tmp_path / "in", ["hang.wav", "good.wav"])
    config = write_config(tmp_path, engine={"job_timeout": 2, "max_attempts": 2})
    code, out, err = transcribe(config, [hang, good], hooks={"hang_on": "hang.wav"})
    assert code == 1
    assert f"failed  {hang}: job took longer than its 2 s limit; engine killed (after 2 attempts)" in err
    assert f"done    {good}" in out
    log = events(tmp_path / "logs" / "asrd.log")
    assert [e["event"] for e in log].count("engine.timeout") == 2
    assert not list(hang.parent.glob("hang.*.*")) and not (hang.parent / "hang.txt").exists()


def test_poison_file_fails_after_max_crashes_and_the_rest_are_done(tmp_path, tiny_models, speech3):
    first, poison, last = clips(speech3, tmp_path / "in", ["a.wav", "poison.wav", "b.wav"])
    config = write_config(tmp_path, engine={"max_crashes": 2})
    code, out, err = transcribe(config, [first, poison, last], hooks={"crash_on": "poison.wav"})
    assert code == 1
    assert f"failed  {poison}: crashed the engine 2 times" in err
    assert f"done    {first}" in out and f"done    {last}" in out
    assert (first.parent / "a.txt").exists() and (last.parent / "b.txt").exists()
    assert not (poison.parent / "poison.txt").exists()


def test_recycling_between_jobs(tmp_path, tiny_models, speech3):
    files = clips(speech3, tmp_path / "in", [f"f{i}.wav" for i in range(5)])
    config = write_config(tmp_path, engine={"recycle_after_jobs": 2})
    code, out, err = transcribe(config, files)
    assert code == 0, err
    assert out.count("done    ") == 5
    log = [e["event"] for e in events(tmp_path / "logs" / "asrd.log")]
    assert log.count("engine.recycled") >= 2 and log.count("engine.ready") == 3
    # recycling happens only between jobs: every job.done comes before the recycle that follows it
    assert log.count("engine.crashed") == 0 and log.count("job.retry") == 0


def test_idle_unload_and_cold_start(tmp_path, tiny_models, speech3):
    [clip] = clips(speech3, tmp_path / "in", ["memo.wav"])
    config = load_config(write_config(tmp_path, engine={"idle_unload_s": 1}))
    engine = EngineProcess(config)
    try:
        assert engine.run(request_for(clip)).status == DONE
        pid = engine.pid
        assert psutil.pid_exists(pid) and not engine.unload_if_idle()
        time.sleep(1.2)
        assert engine.unload_if_idle()
        assert not engine.alive and (not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie")
        assert engine.run(request_for(clip, 2)).status == DONE  # comes back for the next job
        assert engine.pid != pid
    finally:
        engine.stop()


def test_each_stage_of_a_job_is_heard_in_order(tmp_path, tiny_models, speech3):
    """What `asrd status` shows during a long job comes from these: loading, decoding, speech, words."""
    [clip] = clips(speech3, tmp_path / "in", ["memo.wav"])
    engine = EngineProcess(load_config(write_config(tmp_path)))
    heard = []
    try:
        assert engine.run(request_for(clip), on_stage=heard.append).status == DONE
    finally:
        engine.stop()
    assert [m.stage for m in heard] == ["loading models", "opening", "decoding", "detecting speech", "recognising",
                                        "finishing"]
    assert heard[3].audio_s == pytest.approx(14.1, abs=0.2)  # the decoded length sizes the job's time limit


def test_an_engine_child_terminated_mid_job_is_no_fault_of_the_recording(tmp_path, tiny_models, speech3,
                                                                          monkeypatch):
    """A stop signal that reaches the child alone (SIGHUP of a closed terminal; the child ignores only
    SIGTERM and SIGINT, which the parent handles): the job goes back uncounted, and the reason says
    what happened, not "daemon stopping" (asrd is not stopping)."""
    [clip] = clips(speech3, tmp_path / "in", ["memo.wav"])
    # held at that stage, so the signal finds the job still running however loaded the machine is
    monkeypatch.setenv("ASRD_TEST_HOOKS", json.dumps({"hang_on": "memo", "fault_stage": "detecting speech"}))
    engine = EngineProcess(load_config(write_config(tmp_path)))

    def terminate_at_speech(stage) -> None:
        if stage.stage == "detecting speech":
            os.kill(engine.pid, signal.SIGHUP)

    kept = signal.signal(signal.SIGHUP, signal.SIG_DFL)  # under nohup the child would inherit SIG_IGN
    try:
        outcome = engine.run(request_for(clip), on_stage=terminate_at_speech)
    finally:
        signal.signal(signal.SIGHUP, kept)
        engine.stop()
    assert outcome.status == STOPPED
    assert outcome.reason == "engine process stopped (killed by SIGHUP); not the recording's fault"


def test_an_engine_that_exits_mid_job_is_a_crash_that_says_its_exit_status(tmp_path, tiny_models, speech3,
                                                                            monkeypatch):
    """A native library that calls exit() takes the engine down with a status, not a signal: the job
    counts as a crash (the poison-file rule), the reason gives the status, and the next job gets a
    fresh engine."""
    poison, fine = clips(speech3, tmp_path / "in", ["poison.wav", "fine.wav"])
    monkeypatch.setenv("ASRD_TEST_HOOKS", json.dumps({"exit_on": "poison", "fault_stage": "detecting speech"}))
    engine = EngineProcess(load_config(write_config(tmp_path)))
    try:
        outcome = engine.run(request_for(poison))
        assert (outcome.status, outcome.reason) == (CRASHED, "engine process died (exit code 3)")
        assert engine.info.restarts == 1 and engine.info.state == "stopped"
        engine._not_before = 0.0  # the restart backoff is tested elsewhere
        assert engine.run(request_for(fine, 2)).status == DONE
    finally:
        engine.stop()


def test_exit_statuses_are_named_as_a_person_would_read_them():
    assert _describe_exit(None) == "exit status unknown"
    assert _describe_exit(-signal.SIGKILL) == "killed by SIGKILL"
    assert _describe_exit(-40) == "killed by signal 40"  # a real-time signal has no name
    assert _describe_exit(1) == "exit code 1"
    assert _describe_exit(0) == "exit code 0"  # a library's sys.exit() mid-job: no signal


def test_an_idle_engine_asked_to_stop_exits_by_itself_at_once_and_reuses_nothing(tmp_path, tiny_models, speech3):
    """Between jobs the child reads the shutdown request and exits by itself (status 0: not
    killed) at once: it skips the unload and the interpreter's teardown, which took 2-3 s and, on
    a loaded machine, longer than STOP_GRACE_S. Two jobs share one engine; after the stop the
    engine is gone and `asrd status` shows it stopped."""
    first, second = clips(speech3, tmp_path / "in", ["one.wav", "two.wav"])
    engine = EngineProcess(load_config(write_config(tmp_path)))
    try:
        assert engine.run(request_for(first)).status == DONE
        child, pid = engine._proc, engine.pid
        assert engine.alive and engine.run(request_for(second, 2)).status == DONE and engine.pid == pid
        started = time.monotonic()
        engine.stop()
        assert child.exitcode == 0  # it exited by itself (a kill would read -9)
        assert time.monotonic() - started < 1.0  # ~0.1 s here; the unload and teardown alone took 2-3 s
        assert (engine.pid, engine.alive, engine.info.state) == (None, False, "stopped")
    finally:
        engine.stop()


def test_engines_started_and_stopped_again_and_again_leave_no_open_pipes(tmp_path, tiny_models, speech3):
    """A daemon that runs for weeks restarts its engine many times (idle unload, recycling, crashes):
    each engine's pipe must be closed with it, or the daemon runs out of file descriptors."""
    [clip] = clips(speech3, tmp_path / "in", ["memo.wav"])
    engine = EngineProcess(load_config(write_config(tmp_path)))

    try:
        assert engine.run(request_for(clip)).status == DONE
        engine.stop()
        before = psutil.Process().num_fds()
        for job in range(2, 5):
            assert engine.run(request_for(clip, job)).status == DONE
            engine.stop()
        assert psutil.Process().num_fds() == before
    finally:
        engine.stop()


def test_a_child_that_does_not_answer_a_stop_is_killed_and_not_left_behind(tmp_path, tiny_models, speech3):
    """A child wedged between jobs (here SIGSTOPped: a stuck driver call looks the same) cannot read
    the shutdown request: after STOP_GRACE_S it is killed, so no engine outlives the daemon."""
    [clip] = clips(speech3, tmp_path / "in", ["memo.wav"])
    engine = EngineProcess(load_config(write_config(tmp_path)))
    try:
        assert engine.run(request_for(clip)).status == DONE
        pid = engine.pid
        os.kill(pid, signal.SIGSTOP)
        started = time.monotonic()
        engine.stop()
        assert time.monotonic() - started < STOP_GRACE_S + 2
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == "zombie"
    finally:
        engine.stop()


def test_empty_cache_once_per_job_in_the_child_with_faked_mps(tmp_path, tiny_models, speech3, monkeypatch):
    record = tmp_path / "empty_cache.log"
    monkeypatch.setenv("ASRD_TEST_HOOKS", json.dumps({"fake_mps": str(record)}))
    [clip] = clips(speech3, tmp_path / "in", ["memo.wav"])
    engine = EngineProcess(load_config(write_config(tmp_path)))
    try:
        outcomes = [engine.run(request_for(clip, i)) for i in range(3)]
        assert [o.status for o in outcomes] == [DONE] * 3
        assert all(o.transcript.device == "mps" for o in outcomes)
        assert outcomes[0].memory["mps_driver_mb"] == 200 and outcomes[0].memory["mps_allocated_mb"] == 100
        lines = record.read_text().split()
        assert len(lines) == 3 and set(lines) == {str(engine.pid)}  # one per job, inside the child
    finally:
        engine.stop()


DAEMON_SIDE = """
import json, sys
from asrd.config import load_config
from asrd.engine.process import EngineProcess
from asrd.engine.protocol import JobRequest
from asrd.hashing import sha256_file
config = load_config(sys.argv[1])
engine = EngineProcess(config)
outcome = engine.run(JobRequest(1, sys.argv[2], 1, sha256_file(sys.argv[2]), 14.1))
engine.stop()
print(json.dumps({"status": outcome.status, "segments": len(outcome.transcript.segments),
                  "imported": sorted(m for m in ("torch", "funasr") if m in sys.modules)}))
"""


def test_the_parent_never_imports_torch_or_funasr(tmp_path, tiny_models, speech3):
    [clip] = clips(speech3, tmp_path / "in", ["memo.wav"])
    config = write_config(tmp_path)
    result = subprocess.run([sys.executable, "-c", DAEMON_SIDE, str(config), str(clip)], capture_output=True,
                            text=True, timeout=300)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report == {"status": "done", "segments": 3, "imported": []}


def test_model_load_failure_is_reported_not_blamed_on_the_file(tmp_path, tiny_models, speech3):
    broken = tmp_path / "broken-model"
    broken.mkdir()
    (broken / "config.yaml").write_text("model: NoSuchModelClass\n")
    [clip] = clips(speech3, tmp_path / "in", ["memo.wav"])
    config = write_config(tmp_path, model={"asr": str(broken)})
    code, out, err = transcribe(config, [clip])
    assert code == 1 and "cannot load the models" in err
    assert f"failed  {clip}" not in err  # the recording is not blamed
    assert any(e["event"] == "engine.load_failed" for e in events(tmp_path / "logs" / "asrd.log"))


def test_a_served_engine_counts_its_jobs_reports_its_memory_and_forwards_its_childs_events(tmp_path, tiny_models,
                                                                                          speech3):
    """What `asrd status` shows of the engine, and the child's own events in the one log, at their level."""
    files = clips(speech3, tmp_path / "in", ["a.wav", "b.wav"])
    # no MPS here: the child falls back to the CPU and says so with a warning
    engine = EngineProcess(load_config(write_config(tmp_path, engine={"device": "mps"})))
    progress = []
    try:
        with capture_logs() as logs:
            for job_id, clip in enumerate(files, 1):
                assert engine.run(request_for(clip, job_id), on_progress=progress.append).status == DONE
                assert engine.info.state == "ready" and engine.info.jobs_served == job_id
    finally:
        engine.stop()
    assert engine.info.memory_mb > 0 and engine.info.memory_limit_mb > 0
    assert progress and progress[-1].segments_done == progress[-1].segments_total
    by_event = {e["event"]: e for e in logs}
    assert by_event["engine.ready"]["device"] == "cpu"  # said by the parent
    fallback, loaded = by_event["engine.device_fallback"], by_event["engine.loaded"]  # said by the child
    assert fallback["log_level"] == "warning" and fallback["requested"] == "mps" and fallback["device"] == "cpu"
    assert loaded["log_level"] == "info" and loaded["device"] == "cpu" and "logger" not in loaded


LEFT_RUNNING = """
import sys
from asrd.config import load_config
from asrd.engine.process import EngineProcess

if __name__ == "__main__":
    engine = EngineProcess(load_config(sys.argv[1]))
    assert engine.start() is None
    print(engine.pid, flush=True)
"""  # and exits without engine.stop()


def test_a_parent_that_exits_without_stopping_its_engine_exits_and_takes_the_engine_with_it(tmp_path, tiny_models):
    """The child ignores SIGTERM (a group's stop signal must not cut a job): multiprocessing's exit handler,
    which sends just that and then waits, would keep such a parent from ever exiting."""
    script = tmp_path / "left_running.py"
    script.write_text(LEFT_RUNNING)
    proc = subprocess.Popen([sys.executable, str(script), str(write_config(tmp_path))], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        pytest.fail("the parent never exited")
    assert proc.returncode == 0, err[-2000:]
    child = int(out.split()[-1])
    assert not psutil.pid_exists(child) or psutil.Process(child).status() == "zombie"
