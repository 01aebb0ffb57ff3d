"""`asrd run` with a broken config, as launchd runs it: it stays up (no respawn loop), says what is
wrong once with the line, and starts working within seconds of the file being fixed."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import yaml

from tests.support.configs import config_data
from tests.support.daemon import log_events as events
from tests.support.fake_tools import fake_path


def wait_event(proc, log_file: Path, name: str, timeout: float = 90, n: int = 1) -> list[dict]:
    deadline = time.monotonic() + timeout
    while True:
        found = [e for e in events(log_file) if e["event"] == name]
        if len(found) >= n:
            return found
        assert proc.poll() is None, f"asrd run exited {proc.returncode}: {proc.stderr.read()[-2000:]}"
        assert time.monotonic() < deadline, f"no {name}: {[e['event'] for e in events(log_file)][-10:]}"
        time.sleep(0.2)


@contextmanager
def asrd_run(cfg: Path, env: dict[str, str] | None = None):
    """The real `asrd run` on `cfg`, killed at the end if the test left it running."""
    proc = subprocess.Popen([sys.executable, "-m", "asrd", "run", "--config", str(cfg)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_a_broken_config_waits_for_its_fix_then_transcribes(tmp_path, tiny_models, speech3):
    good = config_data(tmp_path, watch={"settle_s": 0.5, "rescan_s": 2})
    broken = {**good, "engine": {**good["engine"], "threads": 0}}  # below the minimum of 1
    cfg = tmp_path / "config.yaml"
    cfg.write_text(yaml.safe_dump(broken, sort_keys=False))
    log_file = Path(good["log_file"])
    shown = tmp_path / "osascript.jsonl"  # a fake osascript first on PATH records the notifications
    with asrd_run(cfg, {"PATH": fake_path(tmp_path / "bin", "osascript"), "FAKE_OSASCRIPT_LOG": str(shown)}) as proc:
        [invalid] = wait_event(proc, log_file, "config.invalid")
        [problem] = invalid["problems"]
        assert "engine.threads" in problem["problem"] and problem["key"] == "engine.threads"
        assert cfg.read_text().splitlines()[problem["line"] - 1].strip().startswith("threads:")
        assert proc.poll() is None  # still up: no exit for launchd to restart into the same error
        deadline = time.monotonic() + 30  # told, not only logged (just after the log line)
        while not shown.exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        [run] = [json.loads(line) for line in shown.read_text().splitlines()]
        [note] = run["notifications"]
        assert note["title"] == "asrd" and "is invalid" in note["text"] and "engine.threads" in note["text"]
        cfg.write_text(yaml.safe_dump(good, sort_keys=False))
        wait_event(proc, log_file, "daemon.started", timeout=30)
        memo = Path(good["inbox"]) / "memo.wav"
        shutil.copy(speech3[0] / "speech3.wav", memo)
        wait_event(proc, log_file, "job.done", timeout=120)
        assert sum(e["event"] == "config.invalid" for e in events(log_file)) == 1  # said once, not per poll
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    assert memo.with_suffix(".json").exists()


def test_a_broken_config_stops_cleanly_on_sigterm(tmp_path):
    cfg = tmp_path / "config.yaml"
    cfg.write_text(f"log_file: {tmp_path / 'asrd.log'}\nengine: [not, a, mapping\n")  # not even YAML
    with asrd_run(cfg) as proc:
        [invalid] = wait_event(proc, tmp_path / "asrd.log", "config.invalid", timeout=30)
        [problem] = invalid["problems"]
        assert "not valid YAML" in problem["problem"] and problem["line"] >= 2  # where the parser gave up
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
