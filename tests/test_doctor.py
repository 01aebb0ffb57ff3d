"""`asrd doctor`: a good set-up passes every check; each failure that can be provoked here is reported
with its fix (and makes the command exit 1)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from asrd import doctor
from asrd.config import load_config
from tests.support.configs import write_config


def run_doctor(config: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "asrd", "doctor", "--config", str(config), *args],
                          capture_output=True, text=True, timeout=300, env=os.environ.copy())


@pytest.fixture
def good(tmp_path, tiny_models):
    (tmp_path / "inbox").mkdir()
    return write_config(tmp_path)


def test_a_good_set_up_passes_every_check(good):
    result = run_doctor(good, "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert {c["status"] for c in checks.values()} == {"ok"}, checks
    assert set(checks) >= {"python", "torch", "funasr", "fbank", "device", "model.asr", "model.vad", "inbox",
                           "disk", "log", "agent"}
    assert "-> cpu" in checks["device"]["detail"]  # the config asks for cpu; the child process said so


def test_a_missing_inbox_fails_with_the_fix(good, tmp_path):
    (tmp_path / "inbox").rmdir()
    result = run_doctor(good)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    assert f"fail  inbox      {tmp_path / 'inbox'} does not exist" in lines
    assert f"      fix: mkdir -p '{tmp_path / 'inbox'}' (or set inbox: in the config)" in lines
    assert sum(line.startswith("fail") for line in lines) == 1


def test_a_model_not_downloaded_or_incomplete(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "empty-cache"))
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "config.yaml").write_text("{}\n")
    config_file = tmp_path / "c.yaml"
    config_file.write_text(f"model:\n  asr: iic/SenseVoiceSmall\n  vad: {tmp_path / 'half'}\n")
    checks = {c.name: c for c in doctor.check_models(load_config(config_file))}
    assert checks["model.asr"].status == "fail" and "not downloaded" in checks["model.asr"].detail
    assert str(tmp_path / "empty-cache") in checks["model.asr"].detail and "models pull" in checks["model.asr"].fix
    assert checks["model.vad"].status == "fail" and "lacks model.pt" in checks["model.vad"].detail


def test_inbox_and_log_that_cannot_be_used(tmp_path):
    (tmp_path / "a-file").write_text("x")
    config_file = tmp_path / "c.yaml"
    config_file.write_text(f"inbox: {tmp_path}\nlog_file: {tmp_path / 'a-file' / 'asrd.log'}\n")
    config = load_config(config_file)
    assert doctor.check_log(config).status == "fail" and "is a file" in doctor.check_log(config).detail
    config_file.write_text(f"inbox: {tmp_path / 'a-file'}\n")
    with pytest.raises(Exception):  # the config itself refuses an inbox that is a file
        load_config(config_file)


def test_packages_below_the_minimum_or_missing(monkeypatch):
    assert doctor.check_package("asrd-no-such-package").status == "fail"
    monkeypatch.setitem(doctor.MINIMUMS, "pytest", (999,))
    low = doctor.check_package("pytest")
    assert low.status == "fail" and "asrd needs 999+" in low.detail and "pip install -U pytest" in low.fix


def test_packages_below_the_recommended_floor_warn(monkeypatch):
    monkeypatch.setattr(doctor.metadata, "version", lambda name: {"funasr": "1.4.15", "torch": "2.8.0"}[name])
    old = doctor.check_package("funasr")
    assert old.status == "warn" and "asrd moves them" in old.detail and "funasr>=1.4.16" in old.fix
    monkeypatch.setattr(doctor.platform, "system", lambda: "Darwin")
    assert doctor.check_package("torch").status == "warn"
    monkeypatch.setattr(doctor.platform, "system", lambda: "Linux")
    assert doctor.check_package("torch").status == "ok"  # the pooling bug is MPS's


def test_an_agent_whose_interpreter_is_gone(tmp_path, monkeypatch):
    from asrd.macos import agent as launchd

    monkeypatch.setenv("ASRD_AGENT_MANAGER", "launchd")
    launchd.write_plist(launchd.build_plist(None, tmp_path, python=str(tmp_path / "gone" / "python")),
                        launchd.definition_path())
    check = doctor.check_agent(None)
    assert check.status == "fail" and "no longer exists" in check.detail
    assert check.fix == f"reinstall: {sys.executable} -m asrd agent install"


def test_low_disk_is_reported(tmp_path, monkeypatch):
    config_file = tmp_path / "c.yaml"
    config_file.write_text(f"state_dir: {tmp_path / 'state'}\n")
    monkeypatch.setattr(doctor, "DISK_FAIL_BYTES", 1 << 62)  # more than any disk has free
    check = doctor.check_disk(load_config(config_file))
    assert check.status == "fail" and f"free at {tmp_path}" in check.detail


def test_an_unreadable_inbox_fails_with_the_fix(unprivileged_user):
    """Run as the user asrd runs as: root reads any folder."""
    user = unprivileged_user
    config = write_config(user.home / "x")
    inbox = user.home / "x" / "inbox"
    inbox.mkdir()
    user.own(user.home / "x")
    inbox.chmod(0)
    assert user.cannot_read(inbox)
    result = subprocess.run([sys.executable, "-m", "asrd", "doctor", "--json", "--config", str(config)],
                            capture_output=True, text=True, timeout=300, env=user.env(), check=False,
                            **user.popen_kwargs())
    assert result.returncode == 1, result.stdout + result.stderr
    checks = {c["name"]: c for c in json.loads(result.stdout)}
    assert checks["inbox"]["status"] == "fail" and f"{inbox} cannot be read" in checks["inbox"]["detail"]
    assert checks["inbox"]["fix"].startswith(f"chmod u+rx '{inbox}'")
    assert [name for name, c in checks.items() if c["status"] == "fail"] == ["inbox"]


@pytest.mark.parametrize(("where", "area"), [
    ("Desktop/inbox", "the Desktop folder"), ("Documents", "the Documents folder"),
    ("Downloads/memos/inbox", "the Downloads folder"),
    ("Library/Mobile Documents/com~apple~CloudDocs/inbox", "iCloud Drive"),
    ("Library/Group Containers/group.com.apple.VoiceMemos.shared/Recordings", "the Voice Memos container"),
])
def test_an_inbox_macos_protects_is_a_warning_naming_the_binary_to_grant(tmp_path, where, area):
    home = tmp_path / "home"
    config_file = tmp_path / "c.yaml"
    config_file.write_text(f"inbox: {home / where}\n")
    [check] = doctor.check_privacy(load_config(config_file), platform="darwin", home=home)
    assert check.status == "warn" and area in check.detail
    binary = os.path.realpath(sys._base_executable)  # here; on a Mac, the image the kernel runs
    assert f"cannot read it until {binary} has Full Disk Access" in check.detail
    assert check.fix.startswith(f"grant Full Disk Access to {binary} (System Settings")


def test_an_inbox_outside_the_protected_folders_or_not_on_a_mac(tmp_path):
    home = tmp_path / "home"
    config_file = tmp_path / "c.yaml"
    config_file.write_text(f"inbox: {home / 'Transcribe' / 'inbox'}\n")
    config = load_config(config_file)
    [check] = doctor.check_privacy(config, platform="darwin", home=home)
    assert check.status == "ok"
    assert doctor.check_privacy(config, platform="linux", home=home) == []
    config_file.write_text(f"inbox: {home / 'Desktop' / 'inbox'}\n")
    assert doctor.check_privacy(load_config(config_file), platform="linux", home=home) == []


def test_an_inbox_on_a_network_volume_is_polled_and_says_so(tmp_path, monkeypatch):
    from asrd.volumes import Volume

    config_file = tmp_path / "c.yaml"
    config_file.write_text(f"inbox: {tmp_path / 'inbox'}\n")
    local = doctor.check_volume(load_config(config_file))  # the real file system of tmp_path
    assert local.status == "ok" and "a local file system" in local.detail
    monkeypatch.setattr(doctor, "volume_of", lambda path: Volume("smbfs", "/Volumes/Memos"))
    polled = doctor.check_volume(load_config(config_file))
    assert polled.status == "warn" and "(smbfs), a network volume" in polled.detail and "polls it every" in polled.detail
    config_file.write_text(f"inbox: {tmp_path / 'inbox'}\nwatch:\n  polling: false\n")
    off = doctor.check_volume(load_config(config_file))
    assert off.status == "warn" and off.fix == "set watch.polling: auto"
