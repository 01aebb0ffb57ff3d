"""What the engine is doing shows while it does it: minutes of decoding or voice detection on a long
recording read `detecting speech`, not `ready` and 0 %, in the log, `asrd status` and the progress bar."""

from __future__ import annotations

import io
import shutil
import time

from asrd.commands.status_cmd import render
from asrd.progress import ProgressBar
from asrd.status import read_status
from tests.support.daemon import DaemonRun

STAGES = ["loading models", "opening", "decoding", "detecting speech", "recognising", "finishing"]


def test_the_daemon_logs_each_stage_and_shows_it_busy(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path, hooks={"delay_s": 3})  # a slow first stage
    memo = daemon.inbox / "memo.wav"
    memo.parent.mkdir(parents=True)
    shutil.copy(speech3[0] / "speech3.wav", memo)
    with daemon:
        first = daemon.wait_for(lambda e: e["event"] in ("job.stage", "job.done"))[0]
        assert first["event"] == "job.stage", "the job ran without saying what it was doing"
        opening = daemon.wait_for(lambda e: e["event"] == "job.stage" and e["stage"] == "opening", 30)[0]
        status = read_status(tmp_path / "state")
        deadline = time.monotonic() + 2  # the status file is written just after the event
        while (status or {}).get("job", {}).get("stage") != "opening" and time.monotonic() < deadline:
            time.sleep(0.05)
            status = read_status(tmp_path / "state")
        assert status["job"]["stage"] == "opening" and status["engine"]["state"] == "busy"
        daemon.wait_done(1)
        daemon.stop()
    stages = [e for e in daemon.events() if e["event"] == "job.stage"]
    assert [e["stage"] for e in stages] == STAGES
    assert all(e["level"] == "info" and e["file"] == str(memo) for e in stages)
    assert opening["file"] == str(memo)
    decoded = next(e for e in stages if e["stage"] == "detecting speech")
    assert round(decoded["audio_s"]) == 14  # the decoded length, which sets the job's time limit


def status_info(job: dict) -> dict:
    return {"running": True, "pid": 1, "started_at": time.time() - 60, "inbox": "/in", "inbox_available": True,
            "engine": {"state": "busy", "device": "cpu", "preset": "sensevoice"}, "job": job,
            "waiting_files": [], "counts": {"queued": 0, "done": 0, "failed": 0, "running": 1}, "queue": [],
            "recent": []}


def test_status_shows_the_stage_of_the_job_in_flight():
    job = {"file": "/in/memo.wav", "started_at": time.time() - 65, "fraction": 0.0, "stage": "detecting speech"}
    assert "now: memo.wav  detecting speech  0%  1m 05s" in render(status_info(job)).splitlines()
    job.update(stage="recognising", fraction=0.4, segments_done=2, segments_total=5)
    assert "now: memo.wav  recognising  40% (2/5 segments)  1m 05s" in render(status_info(job)).splitlines()


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_progress_bar_shows_the_stage():
    terminal = Terminal()
    bar = ProgressBar("memo.wav", stream=terminal, width=4)
    bar.stage("detecting speech")
    assert terminal.getvalue().split("\r")[-1].startswith("memo.wav [....]   0% detecting speech ")
    bar.stage("recognising")
    bar.update(0.5, "1/2 segments")
    assert terminal.getvalue().split("\r")[-1].startswith("memo.wav [##..]  50% recognising 1/2 segments ")
