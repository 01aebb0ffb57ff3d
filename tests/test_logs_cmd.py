"""`asrd logs`: a log written by a real `asrd run` rendered one line per event; filters; -f follows
appended lines and survives the daemon's log rotation."""

from __future__ import annotations

import json
import logging
import logging.handlers
import os
import selectors
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from asrd.logview import snapshot
from tests.support.daemon import DaemonRun, log_events


def logs(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asrd", "logs", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=60, env=os.environ.copy())


@pytest.fixture(scope="module")
def real_log(tmp_path_factory, tiny_models, speech3):
    """A log written by a real daemon that transcribed one recording and stopped."""
    root = tmp_path_factory.mktemp("daemon")
    daemon = DaemonRun(root)
    with daemon:
        daemon.inbox.mkdir(parents=True, exist_ok=True)
        shutil.copy(speech3[0] / "speech3.wav", daemon.inbox / "speech3.wav")
        daemon.wait_done(1)
        daemon.stop()
    return daemon


def local(stamp: str) -> str:
    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def test_renders_a_real_daemons_log_one_line_per_event(real_log):
    events = real_log.events()
    result = logs(real_log.config)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == len(events)
    for line, event in zip(lines, events):
        assert line.startswith(local(event["timestamp"])) and event["event"] in line
        assert "\033[" not in line  # no colour off a tty
    done = next(e for e in events if e["event"] == "job.done")
    done_line = lines[events.index(done)]
    assert f"speech3.wav  #{done['job_id']}" in done_line and f"rtf={float(done['rtf']):.3g}" in done_line
    assert "info" in done_line


def test_json_passes_lines_through_and_filters_apply(real_log):
    raw = real_log.log_file.read_text().splitlines()
    assert logs(real_log.config, "--json").stdout.splitlines() == raw
    job = next(e for e in real_log.events() if e["event"] == "job.done")["job_id"]
    by_job = [json.loads(line) for line in logs(real_log.config, "--json", "--job", str(job)).stdout.splitlines()]
    assert by_job and all(e.get("job_id") == job for e in by_job)
    assert {e["event"] for e in by_job} >= {"job.queued", "job.started", "job.done"}
    by_file = logs(real_log.config, "--file", "speech3.wav").stdout.splitlines()
    assert by_file and all("speech3.wav" in line for line in by_file)
    assert logs(real_log.config, "--file", "other.wav").stdout == ""
    assert logs(real_log.config, "-n", "1", "--json").stdout.splitlines() == raw[-1:]


def write_log(path: Path, events: list[dict]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as handle:
        for event in events:
            handle.write(json.dumps(event) + "\n")


def stamp(seconds_ago: float) -> str:
    return datetime.fromtimestamp(time.time() - seconds_ago, timezone.utc).isoformat()


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(f"inbox: {tmp_path}\nstate_dir: {tmp_path / 'state'}\nlog_file: {tmp_path / 'logs' / 'asrd.log'}\n")
    return path


def test_level_and_since_filters_and_rotated_files_in_order(config, tmp_path):
    log = tmp_path / "logs" / "asrd.log"
    write_log(log.with_name("asrd.log.2"), [{"event": "a.old", "level": "info", "timestamp": stamp(7200)}])
    write_log(log.with_name("asrd.log.1"), [{"event": "b.warn", "level": "warning", "timestamp": stamp(3000)}])
    write_log(log, [{"event": "c.debug", "level": "debug", "timestamp": stamp(60)},
                    {"event": "d.error", "level": "error", "timestamp": stamp(5), "file": "/x/y.m4a",
                     "reason": "not audio"}])
    names = lambda *args: [line.split()[3] for line in logs(config, *args).stdout.splitlines()]  # noqa: E731
    assert names() == ["a.old", "b.warn", "c.debug", "d.error"]
    assert names("--level", "warning") == ["b.warn", "d.error"]
    assert names("--since", "10m") == ["c.debug", "d.error"]
    assert names("--since", "2h", "--level", "info") == ["b.warn", "d.error"]
    assert "y.m4a  reason=not audio" in logs(config, "--level", "error").stdout
    assert logs(config, "--since", "soon").returncode == 2


class Reader:
    """stdout of a running process, read with a deadline."""

    def __init__(self, proc: subprocess.Popen):
        self.proc, self.buffer = proc, ""
        self.selector = selectors.DefaultSelector()
        self.selector.register(proc.stdout, selectors.EVENT_READ)

    def until(self, text: str, timeout: float = 15) -> str:
        deadline = time.monotonic() + timeout
        while text not in self.buffer:
            left = deadline - time.monotonic()
            assert left > 0, f"{text!r} not shown within {timeout} s; got {self.buffer!r}"
            if self.selector.select(left):
                chunk = os.read(self.proc.stdout.fileno(), 65536).decode()
                assert chunk, f"asrd logs -f exited: {self.proc.stderr.read()}"
                self.buffer += chunk
        return self.buffer


def test_follow_shows_appended_lines_and_survives_rotation(config, tmp_path):
    log = tmp_path / "logs" / "asrd.log"
    write_log(log, [{"event": "first.seen", "level": "info", "timestamp": stamp(1)}])
    proc = subprocess.Popen([sys.executable, "-m", "asrd", "logs", "-f", "--config", str(config)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=os.environ.copy())
    try:
        reader = Reader(proc)
        reader.until("first.seen")
        # The daemon's own rotation: a RotatingFileHandler renames asrd.log to asrd.log.1 when full.
        handler = logging.handlers.RotatingFileHandler(log, maxBytes=300, backupCount=2)
        writer = logging.getLogger("test.rotation")
        writer.propagate, writer.level = False, logging.INFO
        writer.addHandler(handler)
        try:
            writer.info(json.dumps({"event": "later.line", "level": "info", "timestamp": stamp(0)}))
            reader.until("later.line")
            for i in range(6):  # each line shown before the next: real rotations are 10 MB apart
                writer.info(json.dumps({"event": f"rotated.{i}", "level": "info", "timestamp": stamp(0),
                                        "file": f"/in/rec{i}.wav"}))
                reader.until(f"rotated.{i}")
        finally:
            writer.removeHandler(handler)
            handler.close()
        assert log.with_name("asrd.log.1").exists()  # it did rotate
        out = reader.until("rotated.5")
        assert "rec5.wav" in out and out.count("later.line") == 1 and out.count("first.seen") == 1
    finally:
        proc.kill()
        proc.wait(10)
        proc.stdout.close()
        proc.stderr.close()


def test_a_line_still_being_written_waits_for_its_newline(tmp_path):
    """The daemon's log stream can reach the file in two writes (its buffer fills mid-line), and a
    reader can look in between, even mid-character: `asrd logs` and the tests' reader take complete
    lines only."""
    log = tmp_path / "asrd.log"
    whole = json.dumps({"event": "job.done", "file": "Sitzung Über.m4a"}, ensure_ascii=False) + "\n"
    half = json.dumps({"event": "job.started", "file": "Über"}, ensure_ascii=False).encode()
    cut = half.index("Ü".encode()) + 1  # inside the two bytes of Ü
    log.write_bytes(whole.encode() + half[:cut])
    assert [e["event"] for e in log_events(log)] == ["job.done"]
    lines, (_, end) = snapshot(log)
    assert lines == [whole.rstrip("\n")] and end == len(whole.encode())
    with open(log, "ab") as handle:
        handle.write(half[cut:] + b"\n")
    assert [e["event"] for e in log_events(log)] == ["job.done", "job.started"]
