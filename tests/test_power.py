"""KeepAwake against a fake `caffeinate` that behaves like macOS's: held once, released, never raising."""

from __future__ import annotations

import subprocess
import sys

import pytest
from structlog.testing import capture_logs

from asrd.macos.power import RETRY_S, KeepAwake
from tests.support.fake_tools import (
    caffeinate_starts,
    fake_path,
    running,
    wait_caffeinate_starts,
    wait_gone,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def record(tmp_path, monkeypatch):
    """The fake caffeinate first on PATH; the file it records each start into."""
    path = tmp_path / "caffeinate.starts"
    monkeypatch.setenv("PATH", fake_path(tmp_path / "bin", "caffeinate"))
    monkeypatch.setenv("FAKE_CAFFEINATE_LOG", str(path))
    return path


@pytest.fixture
def sleeper():
    """A process to watch with -w, which the test may end."""
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    yield proc
    proc.kill()
    proc.wait()


def events(logs: list[dict], name: str) -> list[dict]:
    return [e for e in logs if e["event"] == name]


def test_hold_starts_one_caffeinate_for_this_pid_and_release_ends_it(record, sleeper):
    power = KeepAwake(pid=sleeper.pid)
    with capture_logs() as logs:
        power.hold("a job is due")
        power.hold("a job is due")  # idempotent: still the one assertion
        starts = wait_caffeinate_starts(record, 1)
        assert len(starts) == 1
        pid, argv = starts[0]
        assert argv == ["-i", "-w", str(sleeper.pid)] and power.child_pid == pid and running(pid)
        power.release("the queue is empty")
        power.release("the queue is empty")
    assert not running(pid) and not power.held
    assert [e["reason"] for e in events(logs, "power.held")] == ["a job is due"]
    assert events(logs, "power.held")[0]["pid"] == pid
    assert [e["reason"] for e in events(logs, "power.released")] == ["the queue is empty"]
    power.hold("more work")  # held again after a release
    assert len(wait_caffeinate_starts(record, 2)) == 2 and power.held
    power.release("done")


def test_caffeinate_ends_by_itself_when_the_watched_process_exits(record, sleeper):
    """-w: even a SIGKILLed daemon leaves no assertion behind."""
    clock = Clock()
    power = KeepAwake(pid=sleeper.pid, clock=clock)
    power.hold("a job is due")
    pid = power.child_pid
    assert pid is not None and wait_caffeinate_starts(record, 1)[0][0] == pid
    sleeper.kill()
    sleeper.wait()
    assert wait_gone(pid), "caffeinate outlived the process it was told to wait for"
    with capture_logs() as logs:
        power.hold("a job is due")  # noticed, said, and not retried at once (no start loop)
        assert not power.held and len(caffeinate_starts(record)) == 1
        clock.now += RETRY_S
        power.hold("a job is due")
    assert "exited with code 0" in events(logs, "power.failed")[0]["reason"]
    assert len(wait_caffeinate_starts(record, 2)) == 2  # and it ended at once: the watched pid is gone
    power.release("done")


def test_without_caffeinate_nothing_happens_and_it_is_said_once(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no caffeinate (Linux)
    power = KeepAwake()
    with capture_logs() as logs:
        power.hold("a job is due")
        power.hold("a job is due")
        power.release("the queue is empty")
    assert not power.held
    assert [e["log_level"] for e in logs] == ["debug"] and logs[0]["event"] == "power.unavailable"


def test_a_failing_caffeinate_is_logged_and_never_raises(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    broken = bin_dir / "caffeinate"
    broken.write_text("#!/bin/sh\necho 'caffeinate: IOPMAssertionCreateWithName failed' >&2\nexit 3\n")
    broken.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))
    clock = Clock()
    power = KeepAwake(clock=clock)
    with capture_logs() as logs:
        power.hold("a job is due")
        proc = power._proc
        assert proc is not None
        proc.wait(30)
        power.hold("a job is due")
    failed = events(logs, "power.failed")
    assert len(failed) == 1 and "code 3" in failed[0]["reason"] and "IOPMAssertion" in failed[0]["reason"]
    unstartable = KeepAwake(which=lambda _: str(tmp_path / "gone" / "caffeinate"), clock=clock)
    with capture_logs() as logs:
        unstartable.hold("a job is due")
    assert events(logs, "power.failed") and not unstartable.held


def test_switched_off_it_holds_nothing_and_lets_go_of_a_held_assertion(record, sleeper):
    on = {"keep_awake": True}
    power = KeepAwake(enabled=lambda: on["keep_awake"], pid=sleeper.pid)
    power.hold("a job is due")
    pid = power.child_pid
    assert pid is not None and wait_caffeinate_starts(record, 1)[0][0] == pid
    on["keep_awake"] = False  # a SIGHUP reload with power.keep_awake: false
    power.hold("a job is due")
    assert not power.held and not running(pid)
    power.hold("a job is due")
    assert len(caffeinate_starts(record)) == 1
