"""`asrd run` announces finished jobs: a fake `osascript` (first on PATH) records the notification,
a real HTTP server on 127.0.0.1 receives the webhook; a webhook that hangs holds up no job."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.daemon import DaemonRun
from tests.support.fake_tools import fake_path

KEYS = {"job_id", "file", "state", "audio_s", "processing_s", "rtf", "reason", "outputs"}


@pytest.fixture
def osascript(tmp_path):
    """(env for the daemon, reader of the notifications the fake osascript was asked to show)."""
    record = tmp_path / "osascript.jsonl"
    env = {"PATH": fake_path(tmp_path / "bin", "osascript"), "FAKE_OSASCRIPT_LOG": str(record)}

    def shown() -> list[dict]:
        runs = [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []
        assert all("error" not in run for run in runs), runs
        return [note for run in runs for note in run["notifications"]]

    return env, shown


def drop(speech3, target: Path) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    return Path(shutil.copy(speech3[0] / f"speech3{target.suffix}", target))


def test_a_failed_and_a_done_job_are_announced_and_no_transcript_text_leaves(tmp_path, tiny_models, speech3,
                                                                              osascript, webhook):
    env, shown = osascript
    hook = webhook()
    daemon = DaemonRun(tmp_path, env=env, engine={"max_attempts": 1},
                       notify={"on": ["done", "failed"], "webhook": hook.url})
    bad = daemon.inbox / 'not "audio" \\ at all.wav'
    bad.parent.mkdir(parents=True)
    bad.write_text("a text file with an audio file's name\n")
    good = drop(speech3, daemon.inbox / "memo.m4a")
    with daemon:
        [failed] = daemon.wait_for(lambda e: e["event"] == "job.failed" and e.get("will_retry") is False)
        [done] = daemon.wait_done(1)
        daemon.wait_until(lambda: len(shown()) == 2 and len(hook.bodies) == 2, 30)
        code, _ = daemon.stop()
    assert code == 0 and daemon.count("notify.failed") == 0
    notes = {note["text"].split(" ")[0]: note for note in shown()}
    assert notes["Failed:"] == {"text": f"Failed: {bad.name}: {failed['reason']}", "title": "asrd"}
    assert notes["Transcribed"]["text"].startswith(f"Transcribed memo.m4a ({done['audio_s']:.1f} s of audio, RTF ")
    bodies = {body["state"]: body for body in hook.bodies}
    assert set(bodies["done"]) == KEYS == set(bodies["failed"])
    assert bodies["failed"]["file"] == str(bad) and bodies["failed"]["reason"] == failed["reason"]
    assert bodies["done"]["file"] == str(good) and bodies["done"]["outputs"] == done["outputs"]
    assert bodies["done"]["audio_s"] == done["audio_s"] and bodies["done"]["rtf"] == round(done["rtf"], 4)
    said = [seg["text"] for seg in json.loads(good.with_suffix(".json").read_text())["segments"]]
    said = [text for text in said if len(text.strip()) >= 6]
    assert said  # the recording has words, so this check can fail
    sent = json.dumps(hook.bodies, ensure_ascii=False) + json.dumps(shown(), ensure_ascii=False)
    assert not any(text in sent for text in said)


def test_a_hanging_webhook_holds_up_no_job_and_is_logged(tmp_path, tiny_models, speech3, webhook):
    hook = webhook(hang=True, drop_after_hang=True)
    daemon = DaemonRun(tmp_path, notify={"on": ["done"], "webhook": hook.url, "webhook_timeout_s": 60})
    with daemon:
        drop(speech3, daemon.inbox / "first.wav")
        daemon.wait_done(1)
        assert hook.arrived.wait(30)  # the first job's POST is in the server's hands, unanswered
        drop(speech3, daemon.inbox / "second.mp3")
        daemon.wait_done(2)  # done while that POST still hangs: had the queue waited, it would wait 60 s
        assert daemon.count("notify.failed") == 0 and len(hook.bodies) == 1
        hook.release.set()  # the server gives up on it: connection closed without an answer
        failed = daemon.wait_for(lambda e: e["event"] == "notify.failed", 30)[0]
        daemon.wait_until(lambda: len(hook.bodies) == 2, 30)  # the next announcement goes out after it
        # (and is dropped by this server too, unanswered: it may already be logged as well)
        code, _ = daemon.stop()
    assert code == 0
    assert failed["channel"] == "webhook" and failed["level"] == "warning" and failed["file"].endswith("first.wav")
    assert failed["webhook"] == hook.url.split("/hook")[0]
    assert "SECRET-TOKEN" not in daemon.log_file.read_text()
