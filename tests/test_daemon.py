"""`asrd run` as launchd runs it: a real subprocess, a temp inbox, tiny models, real signals."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from asrd.hashing import sha256_file
from asrd.ledger import Ledger
from tests.support.daemon import DaemonRun


def drop(speech3, target: Path, clip: str = "speech3.wav") -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(speech3[0] / clip, target))


def outputs_of(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name and p.name.startswith(path.stem))


def test_backlog_and_new_files_each_transcribed_exactly_once(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path, log_level="debug")
    backlog = [drop(speech3, daemon.inbox / "old memo.wav"), drop(speech3, daemon.inbox / "sub" / "deep.m4a", "speech3.m4a")]
    with daemon:
        daemon.wait_done(2)
        later = [drop(speech3, daemon.inbox / "café rencontre ü.mp3", "speech3.mp3"),
                 drop(speech3, daemon.inbox / "sub" / "more" / "lecture.mp4", "speech3.mp4")]
        daemon.wait_done(4)
        rescans = daemon.count("watcher.rescanned")
        daemon.wait_for(lambda e: e["event"] == "watcher.rescanned", 30, n=rescans + 2)  # two full scans later…
        assert daemon.count("job.done") == 4  # …nothing more happened
        code, took = daemon.stop()
    assert code == 0
    for path in backlog + later:
        assert outputs_of(path) == [f"{path.stem}.json", f"{path.stem}.srt", f"{path.stem}.txt"], path
        doc = json.loads(path.with_suffix(".json").read_text())
        assert doc["source"]["sha256"] == sha256_file(path) and len(doc["segments"]) == 3
    ledger = Ledger(daemon.root / "state")
    assert ledger.counts() == {"queued": 0, "running": 0, "done": 4, "failed": 0, "retired": 0}
    for event in daemon.events():
        assert {"event", "level", "timestamp"} <= event.keys()
        if event["event"].startswith("job."):
            assert "job_id" in event and "file" in event


def test_slowly_written_file_yields_one_transcript_of_the_whole_file(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path)
    data = (speech3[0] / "speech3.wav").read_bytes()
    target = daemon.inbox / "slow.wav"
    with daemon:
        with open(target, "wb") as handle:
            for start in range(0, len(data), len(data) // 4 + 1):
                handle.write(data[start:start + len(data) // 4 + 1])
                handle.flush()
                time.sleep(1.5)  # longer than settle_s (0.5 s)
        final_sha = sha256_file(target)
        ledger = Ledger(daemon.root / "state")
        whole = lambda: ledger.by_content(len(data), final_sha)  # noqa: E731
        daemon.wait_until(lambda: whole() is not None and whole().state == "done", 180)
        # and every partial content's job has played out (retired, or failed), none left to run
        daemon.wait_until(lambda: ledger.counts()["queued"] == ledger.counts()["running"] == 0, 60)
        code, _ = daemon.stop()
    assert code == 0
    assert outputs_of(target) == ["slow.json", "slow.srt", "slow.txt"]
    doc = json.loads((target.with_suffix(".json")).read_text())
    assert doc["source"]["sha256"] == final_sha
    assert len(doc["segments"]) == 3


def test_restart_redoes_nothing_and_a_copy_is_named_not_skipped_silently(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path)
    memo = drop(speech3, daemon.inbox / "Recording.wav")
    with daemon:
        daemon.wait_done(1)
        daemon.stop()
    first_json = memo.with_suffix(".json").read_text()
    with daemon:  # restart: nothing redone
        copy = drop(speech3, daemon.inbox / "copies" / "Recording copy.wav")  # the same recording again
        [dup] = daemon.wait_for(lambda e: e["event"] == "file.duplicate")  # said, not silently skipped
        assert dup["file"] == str(copy) and dup["same_as"] == str(memo) and dup["state"] == "done"
        daemon.wait_for(lambda e: e["event"] == "copy.done")  # and answered beside it, from the one run
        assert daemon.count("job.done") == 1 and daemon.count("job.queued") == 1
        daemon.stop()
    assert memo.with_suffix(".json").read_text() == first_json
    assert outputs_of(copy) == ["Recording copy.json", "Recording copy.srt", "Recording copy.txt"]
    assert json.loads(copy.with_suffix(".json").read_text())["source"]["path"] == str(copy)
    # a new recording saved under the old name: tests/test_recording_moves.py


def test_sigterm_mid_job_exits_quickly_and_the_job_finishes_next_start(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path, hooks={"delay_s": 30})
    memo = drop(speech3, daemon.inbox / "memo.wav")
    with daemon:
        daemon.wait_for(lambda e: e["event"] == "job.started")
        daemon.wait_for(lambda e: e["event"] == "engine.ready")
        code, took = daemon.stop(signal.SIGTERM)
    assert code == 0 and took < 10
    assert outputs_of(memo) == [] and not list(memo.parent.glob(".*asrd-tmp"))
    assert Ledger(tmp_path / "state").counts()["queued"] == 1
    daemon.hooks = {}
    with daemon:
        daemon.wait_done(1)
        daemon.stop()
    assert outputs_of(memo) == ["memo.json", "memo.srt", "memo.txt"]


def test_sigkill_mid_job_then_the_job_is_redone_after_restart(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path, hooks={"delay_s": 30})
    memo = drop(speech3, daemon.inbox / "memo.wav")
    with daemon:
        daemon.wait_for(lambda e: e["event"] == "engine.ready")
        code, _ = daemon.stop(signal.SIGKILL)
    assert code == -signal.SIGKILL
    assert outputs_of(memo) == []
    daemon.hooks = {}
    with daemon:
        daemon.wait_done(1)
        assert daemon.count("job.requeued", reason="asrd stopped during the job") == 1
        daemon.stop()
    assert outputs_of(memo) == ["memo.json", "memo.srt", "memo.txt"]


def test_corrupt_file_gets_an_error_record_and_the_daemon_goes_on(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path, engine={"max_attempts": 2})
    bad = daemon.inbox / "broken.wav"
    bad.parent.mkdir(parents=True)
    bad.write_bytes((speech3[0] / "speech3.wav").read_bytes()[:20000])  # header promises 14 s
    good = drop(speech3, daemon.inbox / "zz-good.wav")
    with daemon:
        daemon.wait_for(lambda e: e["event"] == "job.failed" and e.get("will_retry") is False, 120)
        daemon.wait_for(lambda e: e["event"] == "job.done" and e.get("file") == str(good), 120)
        daemon.stop()
    record = json.loads((daemon.inbox / "broken.wav.asrd-error.json").read_text())
    assert "truncated" in record["reason"] and record["attempts"] == 2
    [retried] = [e for e in daemon.events() if e["event"] == "job.failed" and e["will_retry"]]
    assert (retried["attempt"], retried["retry_in_s"]) == (1, 0.5)  # the first retry waits retry_delay_s
    assert outputs_of(good) == ["zz-good.json", "zz-good.srt", "zz-good.txt"]
    assert Ledger(tmp_path / "state").by_path(bad).state == "failed"


def test_one_daemon_per_state_dir_and_status(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path)
    memo = drop(speech3, daemon.inbox / "memo.wav")
    run = lambda *a: subprocess.run([sys.executable, "-m", "asrd", *a, "--config", str(daemon.config)],
                                    capture_output=True, text=True, timeout=60)
    with daemon:
        daemon.wait_done(1)
        second = subprocess.Popen([sys.executable, "-m", "asrd", "run", "--config", str(daemon.config)],
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        daemon.wait_for(lambda e: e["event"] == "daemon.already_running" and e["holder_pid"] == daemon.proc.pid)
        assert second.poll() is None and daemon.count("daemon.started") == 1  # waits its turn (test_lock_wait)
        second.send_signal(signal.SIGTERM)
        assert second.wait(timeout=10) == 0
        status = json.loads(run("status", "--json").stdout)
        assert status["running"] and status["pid"] == daemon.proc.pid
        assert status["counts"]["done"] == 1 and status["recent"][0]["path"] == str(memo)
        assert "asrd: running" in run("status").stdout
        shared = run("transcribe", str(memo))  # the one-shot command shares the daemon's ledger
        assert shared.returncode == 0 and f"skipped {memo}: already transcribed" in shared.stdout
        daemon.stop()
    after = run("status")
    assert after.returncode == 0 and "not running" in after.stdout and "memo.wav" in after.stdout
    left = json.loads((tmp_path / "state" / "status.json").read_text())  # for whatever reads the file itself
    assert left["running"] is False and left["job"] is None
