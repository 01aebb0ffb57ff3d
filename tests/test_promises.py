"""README promises at the level users meet them (the real `asrd run`): no transcript of content that
is no longer there, a poison file ends failed, Ctrl-C stops cleanly, no litter after a SIGKILL, and
the engine's memory limit is kept."""

from __future__ import annotations

import json
import shutil
import signal

from asrd.hashing import sha256_file
from asrd.ledger import Ledger
from tests.support.daemon import DaemonRun
from tests.support.recordings import distinct_wav


def test_a_recording_rewritten_mid_job_with_the_same_size_gets_the_new_contents_transcript(
        tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path, hooks={"delay_after_s": 3})
    memo = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "memo.wav")
    newer = distinct_wav(speech3[0] / "speech3.wav", tmp_path / "elsewhere" / "take 2.wav")
    assert newer.stat().st_size == memo.stat().st_size and sha256_file(newer) != sha256_file(memo)
    with daemon:
        [progress] = daemon.wait_for(lambda e: e["event"] == "job.progress")
        shutil.copyfile(newer, memo)  # same name, same size, other samples: the editor saved over it
        daemon.wait_for(lambda e: e["event"] == "job.retired" and e.get("job_id") == progress["job_id"])
        [done] = daemon.wait_done(1)
        daemon.stop()
    assert done["job_id"] != progress["job_id"]
    assert json.loads(memo.with_suffix(".json").read_text())["source"]["sha256"] == sha256_file(newer)


def test_a_poison_file_ends_failed_and_memory_limit_recycles_the_engine(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path, hooks={"crash_on": "/poison.wav"},
                       engine={"max_crashes": 2, "max_memory_mb": 1, "recycle_after_jobs": 0})
    poison = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "poison.wav")
    good = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "zz good.wav")
    with daemon:
        [failed] = daemon.wait_for(lambda e: e["event"] == "job.failed" and e.get("will_retry") is False, 180)
        daemon.wait_done(1)
        [recycled] = daemon.wait_for(lambda e: e["event"] == "engine.recycled")
        daemon.stop()
    assert failed["file"] == str(poison) and "crashed the engine 2 times" in failed["reason"]
    assert json.loads((poison.parent / "poison.wav.asrd-error.json").read_text())["crashes"] == 2
    assert recycled["reason"] == "memory" and recycled["limit_mb"] == 1
    stopped = [e for e in daemon.events() if e["event"] == "engine.stopped" and e["reason"].startswith("memory ")]
    assert len(stopped) == 1 and stopped[0]["reason"].endswith("over engine.max_memory_mb 1")  # really ended
    assert good.with_suffix(".json").exists()


def test_ctrl_c_stops_cleanly_and_sigkill_litter_is_cleaned_at_start(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path, hooks={"delay_s": 30})
    memo = distinct_wav(speech3[0] / "speech3.wav", daemon.inbox / "sub" / "memo.wav")
    litter = [memo.parent / ".memo.txt.999999999-0badc0de.asrd-tmp",  # a writer SIGKILLed mid-write
              tmp_path / "state" / ".status.json.999999999-0badc0de.asrd-tmp"]
    for path in litter:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("half")
    with daemon:
        daemon.wait_for(lambda e: e["event"] == "job.stage")  # the job is in the engine
        code, took = daemon.stop(signal.SIGINT)  # Ctrl-C in the terminal
    assert code == 0 and took < 10
    assert daemon.count("daemon.stopped") == 1
    assert not any(path.exists() for path in litter)
    assert {e["file"] for e in daemon.events() if e["event"] == "output.temp_removed"} == {str(p) for p in litter}
    job = Ledger(tmp_path / "state").by_path(memo)
    assert job.state == "queued" and job.attempts == 0 and job.crashes == 0
