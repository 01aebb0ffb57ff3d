"""The systemd user unit that starts `asrd run` at login on Linux (`systemctl --user`).

Restart=on-failure with RestartSec spaces restarts after a crash, as launchd's ThrottleInterval does
on a Mac; TimeoutStopSec matches launchd's ExitTimeOut. The unit file is checked for systemctl
before it is written, so a machine without systemd is left as it was.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
from pathlib import Path

from asrd.agent import AgentError, AgentStatus, environment, program

UNIT = "asrd.service"
RESTART_S = 30
STOP_TIMEOUT_S = 20
NAME = "systemd"


def definition_path(unit: str = UNIT) -> Path:
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "systemd" / "user" / unit


def _quote(value: str) -> str:
    """One systemd word: double-quoted, backslash and quote escaped, % doubled (a specifier otherwise)."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("%", "%%") + '"'


def render(config_path: Path | None, log_dir: Path | None = None, python: str | None = None) -> str:
    env = "\n".join(f"Environment={_quote(f'{k}={v}')}" for k, v in sorted(environment().items()))
    return (
        "[Unit]\n"
        "Description=asrd: local speech transcription (watches the inbox)\n\n"
        "[Service]\n"
        "Type=simple\n"
        f"ExecStart={' '.join(_quote(a) for a in program(config_path, python))}\n"
        "Restart=on-failure\n"
        f"RestartSec={RESTART_S}\n"
        f"TimeoutStopSec={STOP_TIMEOUT_S}\n"
        f"{env}\n\n"
        "[Install]\n"
        "WantedBy=default.target\n"
    )


def _exe() -> str:
    exe = shutil.which("systemctl")
    if exe is None:
        raise AgentError("systemctl not found: the login agent on Linux is a systemd user unit; "
                         "without systemd run `asrd run` from your session's autostart instead")
    return exe


def _systemctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([_exe(), "--user", *args], capture_output=True, text=True, timeout=60)
    if check and result.returncode != 0:
        raise AgentError(f"systemctl --user {' '.join(args)} failed ({result.returncode}): "
                         f"{(result.stderr or result.stdout).strip()}")
    return result


def install_plan(unit: str = UNIT) -> list[str]:
    return ["systemctl --user daemon-reload", f"systemctl --user enable --now {unit}",
            f"systemctl --user try-restart {unit}  # only when it was already running (an upgrade)"]


def uninstall_plan(unit: str = UNIT) -> list[str]:
    return [f"systemctl --user disable --now {unit}", f"rm {shlex.quote(str(definition_path(unit)))}",
            "systemctl --user daemon-reload"]


def install(config_path: Path | None, log_dir: Path, unit: str = UNIT) -> Path:
    """Write the unit, enable it and start it (restart it when it was running: reinstall/upgrade)."""
    _exe()
    was_active = _systemctl("is-active", unit, check=False).stdout.strip() == "active"
    path = definition_path(unit)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(render(config_path, log_dir))
    os.chmod(tmp, 0o644)
    os.replace(tmp, path)
    _systemctl("daemon-reload")
    _systemctl("enable", "--now", unit)
    if was_active:
        _systemctl("try-restart", unit)
    return path


def uninstall(unit: str = UNIT) -> bool:
    path = definition_path(unit)
    if shutil.which("systemctl"):
        _systemctl("disable", "--now", unit, check=False)
    if not path.exists():
        return False
    path.unlink()
    if shutil.which("systemctl"):
        _systemctl("daemon-reload", check=False)
    return True


def restart(unit: str = UNIT) -> None:
    if not definition_path(unit).exists():
        raise AgentError(f"{definition_path(unit)} is not installed: `asrd agent install` first")
    _systemctl("restart", unit)


def installed_interpreter(unit: str = UNIT) -> str | None:
    try:
        text = definition_path(unit).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        if line.startswith("ExecStart="):
            words = shlex.split(line.partition("=")[2].replace("%%", "%"))
            return words[0] if words else None
    return None


def status(unit: str = UNIT) -> AgentStatus:
    path = definition_path(unit)
    state = AgentStatus(NAME, path, path.exists(), False, None, None, installed_interpreter(unit))
    if shutil.which("systemctl") is None:
        return state
    result = _systemctl("show", unit, "-p", "LoadState,ActiveState,MainPID,ExecMainStatus", check=False)
    fields = dict(line.partition("=")[::2] for line in result.stdout.splitlines() if "=" in line)
    state.loaded = fields.get("LoadState") == "loaded"
    pid = fields.get("MainPID", "0")
    state.pid = int(pid) if pid.isdigit() and int(pid) > 0 else None
    if fields.get("ExecMainStatus") and state.loaded:
        state.last_exit = fields["ExecMainStatus"]
    return state
