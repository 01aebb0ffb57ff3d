"""The launchd agent against a fake launchctl that behaves like launchd (asynchronous bootout,
error 5, disabled overrides): install, reinstall, restart, status, uninstall --purge, dry runs."""

from __future__ import annotations

import os
import plistlib
import site
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from asrd.agent import PASSED_ENV, AgentError

FAKES = Path(__file__).parent / "fakes"
LABEL = "io.github.asrd"


def fake_path(tmp_path: Path, *tools: str) -> str:
    """A bin folder holding only the named fakes, first on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    for tool in tools:
        (bin_dir / tool).symlink_to(FAKES / tool)
    return f"{bin_dir}{os.pathsep}{os.environ['PATH']}"


@pytest.fixture
def launchd(tmp_path, monkeypatch):
    state = tmp_path / "launchd"
    state.mkdir()
    monkeypatch.setenv("FAKE_LAUNCHD_STATE", str(state))
    monkeypatch.setenv("PATH", fake_path(tmp_path, "launchctl"))
    monkeypatch.setenv("ASRD_AGENT_MANAGER", "launchd")
    return state


def calls(state: Path) -> list[str]:
    path = state / "calls"
    return path.read_text().splitlines() if path.exists() else []


def launchctl(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["launchctl", *args], capture_output=True, text=True, timeout=10)


def asrd(*args: str, python: str = sys.executable) -> subprocess.CompletedProcess:
    env = os.environ.copy()
    if python != sys.executable:  # another path to this interpreter: give it this venv's packages
        env["PYTHONPATH"] = os.pathsep.join([env.get("PYTHONPATH", ""), *site.getsitepackages()])
    return subprocess.run([python, "-m", "asrd", "agent", *args], capture_output=True, text=True,
                          timeout=60, env=env, stdin=subprocess.DEVNULL)


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(f"inbox: {tmp_path / 'inbox'}\nstate_dir: {tmp_path / 'state'}\n"
                    f"log_file: {tmp_path / 'logs' / 'asrd.log'}\n")
    (tmp_path / "inbox").mkdir()
    return path


def plist_file(home: Path) -> Path:
    return home / "Library" / "LaunchAgents" / f"{LABEL}.plist"


def target() -> str:
    return f"gui/{os.getuid()}/{LABEL}"


def test_install_writes_every_plist_key_and_bootstraps(launchd, private_home, config, tmp_path, monkeypatch):
    for name in PASSED_ENV:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(tmp_path / "ms"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    monkeypatch.setenv("HF_ENDPOINT", "https://hf-mirror.example")
    result = asrd("install", "--config", str(config))
    assert result.returncode == 0, result.stderr
    plist = plist_file(private_home)
    assert plistlib.loads(plist.read_bytes()) == {
        "Label": LABEL,
        "ProgramArguments": [sys.executable, "-m", "asrd", "run", "--config", str(config)],
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},
        "ThrottleInterval": 30,
        "ExitTimeOut": 20,
        "ProcessType": "Standard",
        "StandardOutPath": str(tmp_path / "logs" / "launchd.out.log"),
        "StandardErrorPath": str(tmp_path / "logs" / "launchd.err.log"),
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1", "PYTORCH_ENABLE_MPS_FALLBACK": "1",
                                 "PATH": os.environ["PATH"], "MODELSCOPE_CACHE": str(tmp_path / "ms"),
                                 "HF_HOME": str(tmp_path / "hf"), "HF_ENDPOINT": "https://hf-mirror.example",
                                 "HF_HUB_OFFLINE": "1"},  # the tests' network guard sets it in every asrd process
    }
    assert stat.S_IMODE(plist.stat().st_mode) == 0o644
    uid = os.getuid()
    assert calls(launchd) == [f"enable {target()}", f"bootout {target()}", f"print {target()}",
                              f"bootstrap gui/{uid} {plist}"]
    assert launchctl("print", target()).returncode == 0


def test_the_fake_fails_a_bootstrap_right_after_bootout_as_launchd_does(launchd, private_home):
    assert asrd("install").returncode == 0
    assert launchctl("bootout", target()).returncode == 0
    assert launchctl("print", target()).returncode == 0  # still tearing down
    again = launchctl("bootstrap", f"gui/{os.getuid()}", str(plist_file(private_home)))
    assert again.returncode == 5 and "Bootstrap failed: 5: Input/output error" in again.stderr


def test_reinstall_waits_out_the_asynchronous_bootout_and_retries_error_5(launchd, private_home):
    assert asrd("install").returncode == 0
    first = len(calls(launchd))
    result = asrd("install")  # an upgrade: the agent is loaded and running
    assert result.returncode == 0, result.stderr
    second = calls(launchd)[first:]
    assert second[:2] == [f"enable {target()}", f"bootout {target()}"]
    prints = [c for c in second if c.startswith("print")]
    bootstraps = [c for c in second if c.startswith("bootstrap")]
    assert len(prints) >= 2, second  # polled while the old job was still loaded
    assert len(bootstraps) >= 2, second  # error 5 after it was gone, then success
    assert second.index(bootstraps[0]) > second.index(prints[-1])
    assert "pid = 4243" in launchctl("print", target()).stdout  # a new process


def test_a_disabled_label_is_enabled_before_bootstrap(launchd, private_home, tmp_path):
    plist = tmp_path / f"{LABEL}.plist"
    plist.write_text(asrd("plist").stdout)
    assert launchctl("disable", target()).returncode == 0
    refused = launchctl("bootstrap", f"gui/{os.getuid()}", str(plist))
    assert refused.returncode == 5  # what a plain bootstrap gets
    result = asrd("install")
    assert result.returncode == 0, result.stderr
    assert "loaded, running (pid 4242)" in asrd("status").stdout


def test_bootstrap_that_keeps_failing_says_what_to_do(launchd, private_home, monkeypatch, tmp_path):
    from asrd.macos import agent as launchd_agent

    monkeypatch.setenv("FAKE_LAUNCHD_EIO_S", "600")
    monkeypatch.setenv("FAKE_LAUNCHD_TEARDOWN_S", "0")
    launchd_agent.install(None, tmp_path / "logs")
    with pytest.raises(AgentError) as failed:
        launchd_agent.install(None, tmp_path / "logs", retry_s=1.0)
    message = str(failed.value)
    assert "5: Input/output error" in message and f"launchctl enable {target()}" in message
    assert "asrd agent install" in message


def test_restart_kickstarts_a_new_process(launchd, private_home, config):
    assert asrd("restart").returncode == 1  # not installed: launchd does not know the label
    assert asrd("install", "--config", str(config)).returncode == 0
    result = asrd("restart", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert f"kickstart -k {target()}" in calls(launchd)
    assert "running (pid 4243)" in asrd("status", "--config", str(config)).stdout


def test_status_shows_launchd_and_the_daemons_own_status(launchd, private_home, config, tmp_path):
    not_installed = asrd("status", "--config", str(config))
    assert "(absent)" in not_installed.stdout and "launchd: not loaded" in not_installed.stdout
    assert asrd("install", "--config", str(config)).returncode == 0
    (launchd / f"{LABEL}.last_exit").write_text("78")
    result = asrd("status", "--config", str(config))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert f"{plist_file(private_home)} (present)" in out
    assert "launchd: loaded, running (pid 4242), last exit 78" in out
    assert f"interpreter: {sys.executable}" in out
    assert "asrd: not running" in out and f"inbox: {tmp_path / 'inbox'}" in out  # asrd status's summary


def test_status_reports_an_interpreter_that_no_longer_exists(launchd, private_home, config, tmp_path):
    venv = tmp_path / "old-venv" / "bin"
    venv.mkdir(parents=True)
    (venv / "python").symlink_to(sys.executable)
    assert asrd("install", "--config", str(config), python=str(venv / "python")).returncode == 0
    assert plistlib.loads(plist_file(private_home).read_bytes())["ProgramArguments"][0] == str(venv / "python")
    (venv / "python").unlink()  # the venv was removed
    result = asrd("status", "--config", str(config))
    assert result.returncode == 1
    assert f"{venv / 'python'} no longer exists" in result.stdout
    assert f"reinstall: {sys.executable} -m asrd agent install --config {config}" in result.stdout


def test_dry_runs_print_the_plist_and_commands_and_change_nothing(launchd, private_home, config, tmp_path):
    result = asrd("install", "--dry-run", "--config", str(config))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    plist_text = out[out.index("<?xml"):out.index("</plist>") + len("</plist>")]
    assert plistlib.loads(plist_text.encode())["ProgramArguments"][-1] == str(config)
    assert f"launchctl enable {target()}" in out and f"launchctl bootstrap gui/{os.getuid()}" in out
    assert not plist_file(private_home).exists() and calls(launchd) == []
    assert not (tmp_path / "logs").exists()
    assert asrd("install", "--config", str(config)).returncode == 0
    (tmp_path / "logs" / "asrd.log").write_text("{}\n")
    before = calls(launchd)
    dry = asrd("uninstall", "--purge", "--dry-run", "--config", str(config))
    assert dry.returncode == 0 and f"launchctl bootout {target()}" in dry.stdout
    assert f"rm -r {tmp_path / 'logs' / 'asrd.log'}" in dry.stdout
    assert calls(launchd) == before and plist_file(private_home).exists()


def test_uninstall_purge_removes_state_and_logs_but_not_the_config_or_model_caches(
        launchd, private_home, config, tmp_path, monkeypatch):
    cache = tmp_path / "ms"
    (cache / "models" / "iic--x").mkdir(parents=True)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(cache))
    assert asrd("install", "--config", str(config)).returncode == 0
    logs = tmp_path / "logs"
    (tmp_path / "state").mkdir()
    (tmp_path / "state" / "jobs.sqlite").write_text("x")
    for name in ("asrd.log", "asrd.log.1", "launchd.err.log", "launchd.out.log"):
        (logs / name).write_text("x")
    refused = asrd("uninstall", "--purge", "--config", str(config))  # not a tty, no --yes
    assert refused.returncode == 2 and "--yes" in refused.stderr
    assert plist_file(private_home).exists() and (tmp_path / "state").exists()
    result = asrd("uninstall", "--purge", "--yes", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert not plist_file(private_home).exists() and launchctl("print", target()).returncode == 113
    assert not (tmp_path / "state").exists() and not logs.exists()
    assert config.exists() and (cache / "models" / "iic--x").is_dir() and (tmp_path / "inbox").is_dir()


def test_purge_keeps_a_state_folder_that_holds_the_model_cache(launchd, private_home, tmp_path, monkeypatch):
    state = tmp_path / "state"
    (state / "modelscope").mkdir(parents=True)
    monkeypatch.setenv("MODELSCOPE_CACHE", str(state / "modelscope"))
    config = tmp_path / "c.yaml"
    config.write_text(f"state_dir: {state}\ninbox: {tmp_path}\nlog_file: {tmp_path / 'logs' / 'asrd.log'}\n")
    result = asrd("uninstall", "--purge", "--yes", "--config", str(config))
    assert result.returncode == 0, result.stderr
    assert (state / "modelscope").is_dir() and "kept" in result.stdout


def test_a_broken_config_is_not_installed(launchd, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("engine:\n  device: gpu\n")
    assert asrd("install", "--config", str(bad)).returncode == 2
    assert calls(launchd) == []
