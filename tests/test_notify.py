"""Notifier: desktop notifications through a fake `osascript`, webhooks to a real HTTP server on
127.0.0.1; hostile file names, servers that hang or are gone, and a queue that never blocks."""

from __future__ import annotations

import json
import socket
import threading

import pytest
from structlog.testing import capture_logs

from asrd.config import NotifyConfig
from asrd.ledger import Job
from asrd.notify import Notifier
from tests.support.fake_tools import fake_path

HOSTILE = 'a "quote" \\ back\\slash" & (do shell script "say pwned") & "\nline.wav'
KEYS = {"job_id", "file", "state", "audio_s", "processing_s", "rtf", "reason", "outputs"}


def job(state: str, path: str = "/inbox/Memo 12.m4a", **extra) -> Job:
    fields = {"id": 7, "path": path, "size": 10, "mtime_ns": 1, "sha256": "ab", "state": state, "attempts": 1,
              "crashes": 0, "last_error": None, "outputs": [], "queued_at": 1.0, "started_at": 2.0,
              "finished_at": 3.0, "not_before": 0.0, "audio_s": None, "processing_s": None, "rtf": None}
    if state == "done":
        fields.update(audio_s=754.25, processing_s=61.5, rtf=0.08154, outputs=[path + ".txt", path + ".json"])
    if state == "failed":
        fields.update(last_error="not an audio file (no decoder recognised it)")
    return Job(**{**fields, **extra})


@pytest.fixture
def shown(tmp_path, monkeypatch):
    """The fake osascript first on PATH; returns a reader of what it was asked to show."""
    record = tmp_path / "osascript.jsonl"
    monkeypatch.setenv("PATH", fake_path(tmp_path / "bin", "osascript"))
    monkeypatch.setenv("FAKE_OSASCRIPT_LOG", str(record))
    return lambda: [json.loads(line) for line in record.read_text().splitlines()] if record.exists() else []


def settle(notifier: Notifier) -> None:
    notifier.close(timeout=30)  # everything queued has gone out (a bounded wait)


def events(logs: list[dict], name: str) -> list[dict]:
    return [e for e in logs if e["event"] == name]


def test_a_hostile_file_name_is_shown_exactly_and_injects_nothing(shown):
    notifier = Notifier(lambda: NotifyConfig(on=("failed",)))
    with capture_logs() as logs:
        notifier.job_finished(job("failed", path=f"/inbox/{HOSTILE}"))
        settle(notifier)
    [run] = shown()
    assert "error" not in run, run  # the fake compiles it as AppleScript would: one literal, one command
    assert run["argv"][0] == "-e" and len(run["argv"]) == 2
    [note] = run["notifications"]
    assert note["title"] == "asrd"
    assert note["text"] == f"Failed: {HOSTILE.replace(chr(10), ' ')}: not an audio file (no decoder recognised it)"
    assert not events(logs, "notify.failed")


def test_only_the_events_in_notify_on_are_announced(shown):
    notifier = Notifier(lambda: NotifyConfig())  # default: failed only
    notifier.job_finished(job("done"))
    settle(notifier)
    assert shown() == []
    notifier = Notifier(lambda: NotifyConfig(on=("done",)))
    notifier.job_finished(job("failed"))
    notifier.job_finished(job("done"))
    settle(notifier)
    [run] = shown()
    assert run["notifications"][0]["text"] == "Transcribed Memo 12.m4a (12:34 of audio, RTF 0.08)"


def test_the_webhook_gets_the_job_summary_json(shown, webhook):
    hook = webhook()
    notifier = Notifier(lambda: NotifyConfig(on=("done", "failed"), webhook=hook.url))
    notifier.job_finished(job("done"))
    notifier.job_finished(job("failed"))
    settle(notifier)
    done, failed = hook.bodies
    assert set(done) == KEYS and set(failed) == KEYS
    assert done == {"job_id": 7, "file": "/inbox/Memo 12.m4a", "state": "done", "audio_s": 754.25,
                    "processing_s": 61.5, "rtf": 0.0815, "reason": None,
                    "outputs": ["/inbox/Memo 12.m4a.txt", "/inbox/Memo 12.m4a.json"]}
    assert failed["state"] == "failed" and failed["reason"].startswith("not an audio file")
    assert hook.paths == ["/hook/SECRET-TOKEN"] * 2
    assert len(shown()) == 2  # and the desktop got both as well


def test_a_hanging_webhook_blocks_nothing_and_is_logged(shown, webhook):
    hook = webhook(hang=True)
    notifier = Notifier(lambda: NotifyConfig(on=("failed",), webhook=hook.url, webhook_timeout_s=0.5))
    with capture_logs() as logs:
        notifier.job_finished(job("failed", id=1))
        assert hook.arrived.wait(30)
        # job_finished returned while the POST is still unanswered: had it waited for the webhook,
        # the timeout would have been logged before it returned
        assert not events(logs, "notify.failed")
        notifier.job_finished(job("failed", id=2))
        settle(notifier)
    failed = events(logs, "notify.failed")
    assert [e["job_id"] for e in failed] == [1, 2]
    assert failed[0]["reason"] == "no answer within 0.5 s" and failed[0]["channel"] == "webhook"
    assert all(e["webhook"] == hook.url.split("/hook")[0] for e in failed)
    assert "SECRET-TOKEN" not in json.dumps(logs)  # a webhook URL's token is a secret: only its host is logged


def test_an_unreachable_webhook_or_an_error_status_is_logged_not_raised(webhook, tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no osascript: the desktop part is off, quietly
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    broken = webhook(status=500)
    with capture_logs() as logs:
        for url in (f"http://127.0.0.1:{closed_port}/hook", broken.url):
            notifier = Notifier(lambda url=url: NotifyConfig(on=("failed",), webhook=url))
            notifier.job_finished(job("failed"))
            settle(notifier)
    refused, status = events(logs, "notify.failed")
    assert "ConnectionRefusedError" in refused["reason"] and status["reason"] == "HTTP 500 Internal Server Error"
    assert [e["log_level"] for e in events(logs, "notify.unavailable")] == ["debug", "debug"]  # once per notifier


def test_a_full_queue_drops_the_announcement_instead_of_waiting(shown):
    started, release = threading.Event(), threading.Event()

    def slow_post(url: str, data: dict, timeout: float) -> None:
        started.set()
        release.wait(30)

    notifier = Notifier(lambda: NotifyConfig(on=("failed",), webhook="http://127.0.0.1:9/"), post=slow_post,
                        max_queue=1)
    with capture_logs() as logs:
        notifier.job_finished(job("failed", id=1))
        assert started.wait(30)  # the worker holds job 1; the queue has room for one more
        notifier.job_finished(job("failed", id=2))
        notifier.job_finished(job("failed", id=3))  # a blocking put would wait here until slow_post gave up
        release.set()
        settle(notifier)
    dropped = events(logs, "notify.failed")
    assert [e["job_id"] for e in dropped] == [3] and "dropped" in dropped[0]["reason"]
    assert len(shown()) == 2


def test_notify_config_keys_are_validated(tmp_path):
    from asrd.config import ConfigError, load_config

    def problems(text: str) -> str:
        path = tmp_path / "c.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError) as info:
            load_config(path)
        return str(info.value)

    assert "notify.on[0]: 'sent' is not valid; use one of: done, failed" in problems("notify:\n  on: [sent]\n")
    assert "notify.webhook: 'ftp://host/x'" in problems("notify:\n  webhook: ftp://host/x\n")
    assert "http:// or https://" in problems("notify:\n  webhook: hooks.example.com\n")
    assert "notify.of: unknown key" in problems("notify:\n  of: [done]\n")
    assert "power.keep_awake: 'yes please'" in problems("power:\n  keep_awake: yes please\n")
    path = tmp_path / "ok.yaml"
    path.write_text("notify:\n  on: [done, failed]\n  webhook: https://hooks.example.com/x\npower:\n  keep_awake: false\n")
    config = load_config(path)  # a bare `on:` is YAML's true: it still means notify.on
    assert config.notify.on == ("done", "failed") and config.notify.webhook == "https://hooks.example.com/x"
    assert config.power.keep_awake is False and config.source_of("notify.on") == str(path)
    path.write_text("notify:\n  on: []\n")
    assert load_config(path).notify.on == ()



def test_a_problem_only_the_user_can_fix_is_announced_under_failed(shown, webhook):
    from asrd.notify import announce_problem

    hook = webhook()
    announce_problem("config.invalid", "/cfg.yaml", 'the config is invalid ("engine.threads: 0")',
                     NotifyConfig(webhook=hook.url))
    [run] = shown()
    [note] = run["notifications"]
    assert note["text"].startswith("asrd is waiting: the config is invalid") and note["title"] == "asrd"
    [posted] = hook.bodies  # announce_problem returns once it went out
    assert posted["state"] == "problem" and posted["event"] == "config.invalid" and posted["file"] == "/cfg.yaml"
    quiet = Notifier(lambda: NotifyConfig(on=()))
    quiet.problem("inbox.unreadable", "/inbox", "no")  # notify.on: [] means nothing at all
    settle(quiet)
    assert len(shown()) == 1
