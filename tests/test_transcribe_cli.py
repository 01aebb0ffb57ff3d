"""`asrd transcribe` as a user runs it: a real subprocess, tiny SenseVoice + real FSMN-VAD."""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys

import srt

from tests.support.configs import write_config


def run_asrd(*args, timeout=300):
    return subprocess.run([sys.executable, "-m", "asrd", *args], capture_output=True, text=True,
                          timeout=timeout, env=os.environ.copy())


def test_transcribe_writes_outputs_for_each_format(tmp_path, tiny_models, speech3):
    folder, known = speech3
    work = tmp_path / "in"
    work.mkdir()
    clips = [shutil.copy(folder / name, work / name) for name in ("speech3.wav", "speech3.m4a", "speech3.mp4")]
    bad = work / "notes.wav"
    bad.write_text("this is not audio")
    config = write_config(tmp_path)
    result = run_asrd("transcribe", "--config", str(config), *map(str, clips), str(bad))
    assert result.returncode == 1, result.stderr  # one file failed
    assert f"failed  {bad}: not audio" in result.stderr
    assert "Traceback" not in result.stderr
    assert sorted(p.name for p in work.glob("notes*")) == ["notes.wav"]  # nothing written for it
    for clip in clips:
        # speech3.wav gets speech3.*; the others' stems are taken by it, so they get their full names
        base = clip.parent / ("speech3" if clip.suffix == ".wav" else clip.name)
        doc = json.loads(base.with_name(base.name + ".json").read_text())
        assert doc["source"]["path"] == str(clip) and len(doc["source"]["sha256"]) == 64
        assert len(doc["segments"]) == 3
        for segment, (start, end) in zip(doc["segments"], known["speech"]):
            assert abs(segment["start"] - start) <= 0.3 and abs(segment["end"] - end) <= 0.3
        cues = list(srt.parse(base.with_name(base.name + ".srt").read_text()))
        assert len(cues) >= 3
        txt = base.with_name(base.name + ".txt")
        assert txt.read_text().strip()
        for out in (txt, base.with_name(base.name + ".srt")):
            assert stat.S_IMODE(out.stat().st_mode) == 0o600
        assert f"done    {clip} -> " in result.stdout


def test_transcribe_format_option_and_bad_format(tmp_path, tiny_models, speech3):
    clip = shutil.copy(speech3[0] / "speech3.flac", tmp_path / "memo.flac")
    config = write_config(tmp_path)
    assert run_asrd("transcribe", "--config", str(config), "--format", "pdf", str(clip)).returncode == 2
    result = run_asrd("transcribe", "--config", str(config), "--format", "vtt,json", str(clip))
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in tmp_path.glob("memo.*")) == ["memo.flac", "memo.json", "memo.vtt"]
    log_lines = [json.loads(line) for line in (tmp_path / "logs" / "asrd.log").read_text().splitlines()]
    assert any(r["event"] == "job.done" and r["file"] == str(clip) for r in log_lines)
    first = {name: (tmp_path / name).read_bytes() for name in ("memo.json", "memo.vtt")}
    more = run_asrd("transcribe", "--config", str(config), "--format", "srt,vtt", str(clip))  # a format it lacks
    assert more.returncode == 0, more.stderr
    assert "memo.srt" in more.stdout and "nothing recomputed" in more.stdout and "--force" not in more.stdout
    assert sorted(p.name for p in tmp_path.glob("memo.*")) == ["memo.flac", "memo.json", "memo.srt", "memo.vtt"]
    assert {name: (tmp_path / name).read_bytes() for name in first} == first
    log_lines = [json.loads(line) for line in (tmp_path / "logs" / "asrd.log").read_text().splitlines()]
    assert sum(r["event"] == "job.done" for r in log_lines) == 1  # rendered from the stored transcript
    assert all({"event", "level", "timestamp"} <= r.keys() for r in log_lines)


def test_transcribe_shares_the_ledger_done_files_are_skipped_unless_forced(tmp_path, tiny_models, speech3):
    clip = shutil.copy(speech3[0] / "speech3.wav", tmp_path / "memo.wav")
    config = write_config(tmp_path)
    first = run_asrd("transcribe", "--config", str(config), str(clip))
    assert first.returncode == 0 and "done    " in first.stdout
    again = run_asrd("transcribe", "--config", str(config), str(clip))
    assert again.returncode == 0 and f"skipped {clip}: already transcribed (memo.txt, memo.srt, memo.json)" in again.stdout
    forced = run_asrd("transcribe", "--config", str(config), "--force", str(clip))
    assert forced.returncode == 0 and "done    " in forced.stdout
    from asrd.ledger import Ledger

    assert Ledger(tmp_path / "state").counts()["done"] == 1


def test_a_copy_is_skipped_by_name_and_a_failed_recording_gets_a_fresh_try(tmp_path, tiny_models, speech3):
    clip = shutil.copy(speech3[0] / "speech3.wav", tmp_path / "memo.wav")
    copy = shutil.copy(clip, tmp_path / "memo copy.wav")
    config = write_config(tmp_path)
    result = run_asrd("transcribe", "--config", str(config), str(clip), str(copy))
    assert result.returncode == 0, result.stderr
    assert f"skipped {copy}: already transcribed (the same recording as {clip})" in result.stdout
    assert not list(tmp_path.glob("memo copy.*.*")) and not (tmp_path / "memo copy.txt").exists()
    forced = run_asrd("transcribe", "--config", str(config), "--force", str(copy))
    assert forced.returncode == 0 and (tmp_path / "memo copy.txt").exists()

    from asrd.ledger import Ledger

    ledger = Ledger(tmp_path / "state")
    job = ledger.by_path(clip)
    ledger.retry_job(job.id)
    ledger.claim(job.id)
    ledger.fail(job.id, "an earlier try failed")
    again = run_asrd("transcribe", "--config", str(config), str(clip))
    assert again.returncode == 0 and f"done    {clip}" in again.stdout, again.stderr
    assert ledger.get(job.id).state == "done"


def test_a_done_recording_without_transcripts_is_skipped_in_plain_words(tmp_path, speech3):
    """A job done while `outputs: []` was accepted wrote nothing: the skip line must not read "()"."""
    clip = shutil.copy(speech3[0] / "speech3.wav", tmp_path / "memo.wav")
    config = write_config(tmp_path)
    from asrd.hashing import sha256_file
    from asrd.ledger import Ledger

    ledger = Ledger(tmp_path / "state")
    job, _ = ledger.offer(clip, os.path.getsize(clip), os.stat(clip).st_mtime_ns, sha256_file(clip))
    ledger.claim(job.id)
    ledger.complete(job.id, [], 14.1, 1.0, 0.07)
    result = run_asrd("transcribe", "--config", str(config), str(clip))
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"skipped {clip}: already transcribed, but no transcripts were written; --force redoes it\n"
