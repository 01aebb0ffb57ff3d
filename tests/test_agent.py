"""The launchd agent: a plist that reads back, and launchctl calls made to a fake launchctl on PATH."""

from __future__ import annotations

import os
import plistlib
import stat
import subprocess
import sys

import pytest

FAKE_LAUNCHCTL = """#!/bin/sh
echo "$@" >> "{calls}"
case "$1" in
  print) if [ -f "{loaded}" ]; then printf 'io.github.asrd = {{\\n\\tstate = running\\n\\tpid = 4242\\n\\tlast exit code = 0\\n}}\\n'; exit 0; fi
         echo "Could not find service" >&2; exit 113 ;;
  bootstrap) touch "{loaded}" ;;
  bootout) if [ -f "{loaded}" ]; then rm "{loaded}"; else echo "No such process" >&2; exit 3; fi ;;
esac
exit 0
"""


@pytest.fixture
def launchctl(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "launchctl.calls"
    script = bin_dir / "launchctl"
    script.write_text(FAKE_LAUNCHCTL.format(calls=calls, loaded=tmp_path / "loaded"))
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return calls


def asrd(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asrd", "agent", *args], capture_output=True, text=True,
                          timeout=60, env=os.environ.copy())


def test_install_writes_a_valid_plist_and_bootstraps_it(launchctl, private_home, tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("log_level: info\n")
    result = asrd("install", "--config", str(config))
    assert result.returncode == 0, result.stderr
    plist = private_home / "Library" / "LaunchAgents" / "io.github.asrd.plist"
    data = plistlib.loads(plist.read_bytes())
    assert data["Label"] == "io.github.asrd"
    assert data["ProgramArguments"] == [sys.executable, "-m", "asrd", "run", "--config", str(config)]
    assert data["RunAtLoad"] is True and data["KeepAlive"] == {"SuccessfulExit": False}
    assert data["ExitTimeOut"] >= 10 and data["ThrottleInterval"] >= 10
    assert stat.S_IMODE(plist.stat().st_mode) == 0o644
    uid = os.getuid()
    assert launchctl.read_text().splitlines() == [
        f"bootout gui/{uid}/io.github.asrd", f"bootstrap gui/{uid} {plist}", f"enable gui/{uid}/io.github.asrd"]
    status = asrd("status")
    assert "loaded, running (pid 4242)" in status.stdout and "present" in status.stdout


def test_uninstall_boots_out_and_removes_the_plist(launchctl, private_home):
    assert asrd("install").returncode == 0
    result = asrd("uninstall")
    assert result.returncode == 0 and "uninstalled" in result.stdout
    assert not (private_home / "Library" / "LaunchAgents" / "io.github.asrd.plist").exists()
    assert "not loaded" in asrd("status").stdout
    assert "not installed" in asrd("uninstall").stdout


def test_launchctl_failure_is_reported(tmp_path, monkeypatch, private_home):
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "launchctl").write_text("#!/bin/sh\necho 'Bootstrap failed: 5: Input/output error' >&2\nexit 5\n")
    (bin_dir / "launchctl").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    result = asrd("install")
    assert result.returncode == 1 and "Input/output error" in result.stderr and "Traceback" not in result.stderr


def test_a_broken_config_is_not_installed(launchctl, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("engine:\n  device: gpu\n")
    assert asrd("install", "--config", str(bad)).returncode == 2
    assert not launchctl.exists()
