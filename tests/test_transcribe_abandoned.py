"""An `asrd transcribe` its caller abandons (Ctrl-C, a closed terminal, `kill`, models that cannot load)
leaves no job behind for the daemon to finish: a new job is dropped, an older one is put back as it
was; only a recording inside the inbox stays queued (the daemon would transcribe it anyway)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from asrd.hashing import sha256_file
from asrd.ledger import Ledger
from tests.support.configs import write_config


def start_transcribe(config: Path, *args: str, hooks: dict | None = None) -> subprocess.Popen:
    """The real command in its own session, so a signal can go to its whole process group as a
    terminal sends it (the engine child included)."""
    env = {**os.environ, "ASRD_TEST_HOOKS": json.dumps(hooks or {})}
    return subprocess.Popen([sys.executable, "-m", "asrd", "transcribe", "--config", str(config), *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)


def wait_for_event(log_file: Path, proc: subprocess.Popen, event: str, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log_file.exists() and any(json.loads(line)["event"] == event
                                     for line in log_file.read_text().splitlines() if line.strip()):
            return
        assert proc.poll() is None, f"asrd transcribe exited {proc.returncode}: {proc.stderr.read()}"
        time.sleep(0.1)
    raise AssertionError(f"no {event} in {log_file}")


def interrupt_mid_job(root: Path, clip: Path, sig: int, to_group: bool, *args: str) -> tuple[int, str]:
    """Start transcribing `clip` with the engine held mid-job, send `sig`, return (exit code, stderr)."""
    proc = start_transcribe(write_config(root), *args, str(clip), hooks={"delay_s": 60})
    try:
        wait_for_event(root / "logs" / "asrd.log", proc, "engine.ready")  # the job is in the engine now
        if to_group:
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
        _, stderr = proc.communicate(timeout=20)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return proc.returncode, stderr


def recording(speech3, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(speech3[0] / "speech3.wav", target))


@pytest.mark.parametrize("sig, to_group, code", [
    (signal.SIGINT, True, 130),   # Ctrl-C: the terminal signals the whole foreground group
    (signal.SIGHUP, True, 129),   # the terminal was closed
])
def test_an_abandoned_new_job_outside_the_inbox_is_dropped(tmp_path, tiny_models, speech3, sig, to_group, code):
    clip = recording(speech3, tmp_path / "elsewhere" / "hour3.wav")
    exit_code, stderr = interrupt_mid_job(tmp_path, clip, sig, to_group)
    assert exit_code == code, stderr
    assert "Traceback" not in stderr
    ledger = Ledger(tmp_path / "state")
    assert ledger.by_content(clip.stat().st_size, sha256_file(clip)) is None
    assert ledger.counts() == {"queued": 0, "running": 0, "done": 0, "failed": 0, "retired": 0}
    assert sorted(p.name for p in clip.parent.iterdir()) == ["hour3.wav"]
    events = [json.loads(line) for line in (tmp_path / "logs" / "asrd.log").read_text().splitlines()]
    assert [(e["file"], e["left"]) for e in events if e["event"] == "job.abandoned"] == [(str(clip), "dropped")]


def test_a_killed_forced_redo_leaves_the_done_job_as_it_was(tmp_path, tiny_models, speech3):
    clip = recording(speech3, tmp_path / "elsewhere" / "memo.wav")
    transcript = clip.with_suffix(".txt")
    transcript.write_text("the earlier transcript\n")
    ledger = Ledger(tmp_path / "state")
    st = clip.stat()
    job, _ = ledger.offer(clip, st.st_size, st.st_mtime_ns, sha256_file(clip))
    ledger.claim(job.id)
    before = ledger.complete(job.id, [str(transcript)], 14.0, 1.0, 0.07)
    exit_code, stderr = interrupt_mid_job(tmp_path, clip, signal.SIGTERM, False, "--force")
    assert exit_code == 128 + signal.SIGTERM, stderr
    assert "Traceback" not in stderr
    assert ledger.get(job.id) == before
    assert transcript.read_text() == "the earlier transcript\n"


def test_models_that_cannot_load_leave_no_job_outside_the_inbox_and_a_queued_one_inside(tmp_path, tiny_models,
                                                                                         speech3):
    not_a_model = tmp_path / "not-a-model"
    not_a_model.mkdir()
    config = write_config(tmp_path, model={"asr": str(not_a_model)})
    ledger = Ledger(tmp_path / "state")
    outside = recording(speech3, tmp_path / "elsewhere" / "memo.wav")
    inside = recording(speech3, tmp_path / "inbox" / "lecture.wav")
    inside.write_bytes((speech3[0] / "speech3.flac").read_bytes())  # other content: its own job
    for clip, left in ((outside, None), (inside, "queued")):
        result = subprocess.run([sys.executable, "-m", "asrd", "transcribe", "--config", str(config), str(clip)],
                                capture_output=True, text=True, timeout=120)
        assert result.returncode == 1 and "cannot load the models" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        job = ledger.by_content(clip.stat().st_size, sha256_file(clip))
        assert (job and job.state) == left
        assert not job or job.last_error is None  # the recording is not blamed for the models
