"""A recording's life as users live it, with the real `asrd run`: renamed mid-job, its folder gone
for a while, moved after it was done and its name reused, half-copied then completed, abandoned by
a killed `asrd transcribe`. Nothing is lost, nothing is done twice, no transcript is overwritten."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from asrd.hashing import sha256_file
from asrd.ledger import Ledger
from tests.support.daemon import DaemonRun
from tests.support.processes import dead_pid
from tests.support.recordings import distinct_wav


def outputs_of(path: Path) -> list[str]:
    return sorted(p.name for p in path.parent.iterdir() if p.name != path.name and p.name.startswith(path.stem))


def described(json_output: Path) -> str:
    """The sha256 of the recording a json transcript says it describes."""
    return json.loads(json_output.read_text())["source"]["sha256"]


def test_a_recording_renamed_while_its_job_runs_is_finished_at_its_new_name_without_recomputing(
        tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path, hooks={"delay_after_s": 3})
    memo = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "Recording.wav")
    renamed = daemon.inbox / "Meeting with Bob.wav"
    with daemon:
        daemon.wait_for(lambda e: e["event"] == "job.progress")  # decoded, being recognised
        memo.rename(renamed)
        [done] = daemon.wait_done(1)
        daemon.stop()
    assert done["file"] == str(renamed)
    assert outputs_of(renamed) == ["Meeting with Bob.json", "Meeting with Bob.srt", "Meeting with Bob.txt"]
    assert described(renamed.with_suffix(".json")) == sha256_file(renamed)
    assert json.loads(renamed.with_suffix(".json").read_text())["source"]["path"] == str(renamed)
    assert sorted(p.name for p in daemon.inbox.iterdir()) == sorted([renamed.name, *outputs_of(renamed)])
    [job] = [Ledger(tmp_path / "state").by_path(renamed)]
    assert job.state == "done" and job.attempts == 0 and job.crashes == 0
    assert daemon.count("job.reused") == 1  # the engine's transcript was kept, not recomputed
    assert daemon.count("job.failed") == 0


def test_an_inbox_that_goes_away_mid_job_costs_no_attempt_and_every_job_resumes(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path, hooks={"delay_after_s": 3}, engine={"max_attempts": 1})
    clips = [distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / f"memo{i}.wav") for i in range(3)]
    away = tmp_path / "unmounted"
    with daemon:
        daemon.wait_for(lambda e: e["event"] == "job.progress")
        daemon.inbox.rename(away)  # the volume is ejected (or the folder moved) mid-job
        daemon.wait_for(lambda e: e["event"] == "inbox.missing")
        daemon.wait_for(lambda e: e["event"] == "job.waiting")  # the running job's result waits for it
        away.rename(daemon.inbox)
        daemon.wait_for(lambda e: e["event"] == "inbox.back")
        daemon.wait_done(3)
        daemon.stop()
    ledger = Ledger(tmp_path / "state")
    assert ledger.counts()["done"] == 3 and ledger.counts()["failed"] == 0
    for clip in clips:
        assert outputs_of(clip) == [f"{clip.stem}.json", f"{clip.stem}.srt", f"{clip.stem}.txt"]
        assert ledger.by_path(clip).attempts == 0
    assert daemon.count("job.failed") == 0 and not list(daemon.inbox.glob("*.asrd-error.json"))
    assert daemon.count("job.reused") == 1  # the job that was running when the inbox went


def test_a_reused_name_never_costs_the_old_recordings_transcripts(tmp_path, tiny_models, speech3):
    """Recorders restart their numbering: ZOOM0001.wav, moved into day1/, then a new ZOOM0001.wav."""
    daemon = DaemonRun(tmp_path)
    first = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "ZOOM0001.wav")
    first_sha = sha256_file(first)
    day1 = daemon.inbox / "day1" / "ZOOM0001.wav"
    with daemon:
        daemon.wait_done(1)
        day1.parent.mkdir()
        first.rename(day1)  # the user files the audio away; its transcripts go along with it
        daemon.wait_for(lambda e: e["event"] == "output.moved")
        second = daemon.inbox / "ZOOM0001.wav"
        shutil.copy(distinct_wav(speech3[0] / "speech3.wav", tmp_path / "recorder" / "ZOOM0001 take 2.wav"), second)
        daemon.wait_done(2)
        daemon.stop()
    assert outputs_of(day1) == ["ZOOM0001.json", "ZOOM0001.srt", "ZOOM0001.txt"]
    assert described(day1.with_suffix(".json")) == first_sha
    assert described(second.with_suffix(".json")) == sha256_file(second) != first_sha
    ledger = Ledger(tmp_path / "state")
    assert sorted(ledger.by_path(day1).outputs) == sorted(str(day1.with_suffix(f".{f}")) for f in ("json", "srt", "txt"))
    said = subprocess.run([sys.executable, "-m", "asrd", "transcribe", str(day1), "--config", str(daemon.config)],
                          capture_output=True, text=True, timeout=120)
    assert said.returncode == 0 and f"skipped {day1}: already transcribed" in said.stdout


def test_a_new_recording_saved_over_an_old_one_keeps_both_transcripts(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path)
    memo = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "Recording.wav")
    with daemon:
        daemon.wait_done(1)
        first = {p.name: p.read_bytes() for p in memo.parent.iterdir() if p != memo}
        newer_take = distinct_wav(speech3[0] / "speech3.wav", tmp_path / "src" / "take 2.wav")
        shutil.copy(newer_take, memo)  # saved over it: a new recording, same name
        daemon.wait_done(2)
        daemon.stop()
    for name, data in first.items():  # the first recording's transcripts are untouched
        assert (memo.parent / name).read_bytes() == data
    newer = [p for p in memo.parent.glob("*.json") if p.name not in first]
    assert len(newer) == 1 and described(newer[0]) == sha256_file(memo)


def test_a_copy_that_pauses_mid_write_is_transcribed_once_and_listed_once(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path, engine={"retry_delay_s": 1.0})
    data = distinct_wav(speech3[0] / "speech3.wav", tmp_path / "src" / "stalled2.wav").read_bytes()
    target = daemon.inbox / "stalled2.wav"
    with daemon:
        target.parent.mkdir(parents=True, exist_ok=True)
        with open(target, "wb") as handle:
            handle.write(data[: len(data) // 2])
        [half] = daemon.wait_for(lambda e: e["event"] == "job.failed" and e.get("will_retry"))
        with open(target, "ab") as handle:  # the copy carries on
            handle.write(data[len(data) // 2:])
        daemon.wait_for(lambda e: e["event"] == "job.retired" and e.get("job_id") == half["job_id"])
        daemon.wait_done(1)
        status = subprocess.run([sys.executable, "-m", "asrd", "status", "--config", str(daemon.config)],
                                capture_output=True, text=True, timeout=60).stdout
        daemon.stop()
    started = [e for e in daemon.events() if e["event"] == "job.started"]
    assert [e["job_id"] for e in started].count(half["job_id"]) == 1  # the half file never runs again
    assert len([line for line in status.splitlines() if "stalled2.wav" in line]) == 1, status
    ledger = Ledger(tmp_path / "state")
    assert ledger.get(half["job_id"]).state == "retired" and ledger.counts()["failed"] == 0
    assert outputs_of(target) == ["stalled2.json", "stalled2.srt", "stalled2.txt"]
    retried = subprocess.run([sys.executable, "-m", "asrd", "retry", "--failed", "--config", str(daemon.config)],
                             capture_output=True, text=True, timeout=60)
    assert "stalled2" not in retried.stdout


def _orphan(ledger: Ledger, path: Path) -> int:
    """A job left running by an `asrd transcribe` that was killed (SIGKILL: no chance to clean up)."""
    job, _ = ledger.offer(path, path.stat().st_size, path.stat().st_mtime_ns, sha256_file(path))
    return ledger.claim(job.id, owner_pid=dead_pid()).id


def test_jobs_of_a_killed_transcribe_are_recovered_while_the_daemon_runs(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path)
    daemon.inbox.mkdir(parents=True)
    outside = distinct_wav(speech3[0] / "speech3.wav", tmp_path / "desktop" / "hour3.wav")
    inside = distinct_wav(speech3[0] / "speech3.wav", tmp_path / "staging" / "inbox-memo.wav")
    ledger = Ledger(tmp_path / "state")
    with daemon:
        daemon.wait_for(lambda e: e["event"] == "inbox.watching")
        outside_id = _orphan(ledger, outside)
        target = daemon.inbox / "inbox-memo.wav"  # claimed by the dead owner before it lands in the inbox,
        st = inside.stat()                          # so the daemon cannot get to it first
        job, _ = ledger.offer(target, st.st_size, st.st_mtime_ns, sha256_file(inside))
        inside_id = ledger.claim(job.id, owner_pid=dead_pid()).id
        shutil.move(inside, target)
        daemon.wait_for(lambda e: e["event"] == "job.dropped" and e.get("job_id") == outside_id, 30)
        daemon.wait_for(lambda e: e["event"] == "job.done" and e.get("job_id") == inside_id, 120)
        daemon.stop()
    assert outputs_of(outside) == []  # the user abandoned it: nobody finishes it behind their back
    assert ledger.by_path(outside) is None
    assert ledger.get(inside_id).state == "done"


def test_a_recording_that_kills_the_daemon_ends_failed_not_in_a_respawn_loop(tmp_path, tiny_models, speech3):
    """launchd restarts a dead daemon forever: the job it died on must count, as an engine crash does."""
    daemon = DaemonRun(tmp_path, hooks={"delay_s": 60}, engine={"max_crashes": 2})
    memo = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "poison.wav")
    for run in range(1, 3):
        with daemon:
            daemon.wait_for(lambda e: e["event"] == "job.started", n=run)
            daemon.stop(signal.SIGKILL)
    with daemon:
        [failed] = daemon.wait_for(lambda e: e["event"] == "job.failed", 60)
        daemon.stop()
    assert "stopped abruptly" in failed["reason"] and failed["will_retry"] is False
    record = json.loads((memo.parent / "poison.wav.asrd-error.json").read_text())
    assert "stopped abruptly" in record["reason"]
    assert Ledger(tmp_path / "state").by_path(memo).state == "failed"
    assert os.path.exists(memo)


def test_a_name_at_the_file_system_limit_gets_shortened_transcripts_and_the_daemon_lives(
        tmp_path, tiny_models, speech3):
    """A legal 255-byte name (a CJK title) leaves no room for `.json`: names are shortened, never fatal."""
    daemon = DaemonRun(tmp_path)
    name = "会" * 83 + "ab.wav"
    assert len(name.encode()) == 255
    memo = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / name)
    after = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "zz after.wav")
    with daemon:
        daemon.wait_done(2)
        assert daemon.proc.poll() is None
        daemon.stop()
    written = sorted(p for p in memo.parent.iterdir() if p.name.startswith("会") and p != memo)
    assert sorted(p.suffix for p in written) == [".json", ".srt", ".txt"]
    assert all(len(p.name.encode()) <= 255 for p in written)
    assert described(next(p for p in written if p.suffix == ".json")) == sha256_file(memo)
    assert outputs_of(after) == ["zz after.json", "zz after.srt", "zz after.txt"]
    assert daemon.count("job.failed") == 0
