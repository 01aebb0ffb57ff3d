"""On Linux the login agent is a systemd user unit, driven through a fake `systemctl --user`."""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

FAKES = Path(__file__).parent / "fakes"
UNIT = "asrd.service"


@pytest.fixture
def linux(monkeypatch):
    """The platform's own choice (this machine is Linux), not the tests' launchd override."""
    monkeypatch.delenv("ASRD_AGENT_MANAGER", raising=False)
    assert sys.platform != "darwin"


@pytest.fixture
def systemd(tmp_path, monkeypatch, linux):
    state, bin_dir = tmp_path / "systemd", tmp_path / "bin"
    state.mkdir()
    bin_dir.mkdir()
    (bin_dir / "systemctl").symlink_to(FAKES / "systemctl")
    monkeypatch.setenv("FAKE_SYSTEMD_STATE", str(state))
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return state


def asrd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asrd", "agent", *args], capture_output=True, text=True,
                          timeout=60, env=os.environ.copy(), stdin=subprocess.DEVNULL)


def unit_file(home: Path) -> Path:
    return home / ".config" / "systemd" / "user" / UNIT


def service(text: str) -> dict[str, list[str]]:
    """The [Service] section's keys, each with every value it was given."""
    found: dict[str, list[str]] = {}
    section = None
    for line in text.splitlines():
        if line.startswith("["):
            section = line
        elif section == "[Service]" and "=" in line:
            key, _, value = line.partition("=")
            found.setdefault(key, []).append(value)
    return found


def test_without_systemctl_nothing_is_written(linux, private_home, tmp_path, monkeypatch):
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))  # neither systemctl nor launchctl
    result = asrd("install")
    assert result.returncode == 1 and "systemctl not found" in result.stderr and "launchctl" not in result.stderr
    assert not (private_home / "Library").exists() and not unit_file(private_home).exists()


def test_install_writes_a_user_unit_and_enables_it_now(systemd, private_home, tmp_path):
    config = tmp_path / "my config.yaml"
    config.write_text("log_level: info\n")
    result = asrd("install", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert not (private_home / "Library").exists()  # no macOS plist on Linux
    keys = service(unit_file(private_home).read_text())
    assert shlex.split(keys["ExecStart"][0]) == [sys.executable, "-m", "asrd", "run", "--config", str(config)]
    assert keys["Restart"] == ["on-failure"] and keys["RestartSec"] == ["30"] and keys["TimeoutStopSec"] == ["20"]
    env = dict(shlex.split(v)[0].split("=", 1) for v in keys["Environment"])
    assert env["PYTHONUNBUFFERED"] == "1" and env["PATH"] == os.environ["PATH"]
    assert "WantedBy=default.target" in unit_file(private_home).read_text()
    log = (systemd / "calls").read_text().splitlines()
    assert log[-2:] == ["--user daemon-reload", f"--user enable --now {UNIT}"]
    status = asrd("status", "--config", str(config))
    assert "systemd: loaded, running (pid 5150)" in status.stdout, status.stdout


def test_reinstall_restarts_restart_and_uninstall(systemd, private_home):
    assert asrd("install").returncode == 0
    assert asrd("install").returncode == 0  # an upgrade restarts the running daemon
    assert f"--user try-restart {UNIT}" in (systemd / "calls").read_text()
    assert "running (pid 5151)" in asrd("status").stdout
    assert asrd("restart").returncode == 0
    assert "running (pid 5152)" in asrd("status").stdout
    result = asrd("uninstall")
    assert result.returncode == 0 and "uninstalled" in result.stdout
    assert not unit_file(private_home).exists()
    assert "systemd: not loaded" in asrd("status").stdout
    again = asrd("restart")
    assert again.returncode == 1 and "agent install" in again.stderr


def test_dry_run_prints_the_unit_and_changes_nothing(systemd, private_home):
    result = asrd("install", "--dry-run")
    assert result.returncode == 0 and "Restart=on-failure" in result.stdout
    assert f"systemctl --user enable --now {UNIT}" in result.stdout
    assert not unit_file(private_home).exists() and not (systemd / "calls").exists()
