"""The launchd agent that starts `asrd run` at login and restarts it if it crashes.

The plist is built with plistlib (as maestral does) and read back to validate it before launchctl
sees it. launchd sends SIGTERM at logout/stop and SIGKILL after ExitTimeOut; asrd stops well inside
that. KeepAlive restarts only after an unclean exit, and ThrottleInterval spaces restarts so even a
broken install cannot spin.
"""

from __future__ import annotations

import os
import plistlib
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LABEL = "io.github.asrd"
EXIT_TIMEOUT_S = 20  # asrd stops in < 10 s
THROTTLE_S = 30


class AgentError(Exception):
    """launchctl refused; the message carries its words."""


def plist_path(label: str = LABEL) -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"{label}.plist"


def build_plist(config_path: Path | None, log_dir: Path, python: str = sys.executable,
                label: str = LABEL) -> dict[str, Any]:
    args = [python, "-m", "asrd", "run"]
    if config_path is not None:
        args += ["--config", str(Path(config_path).expanduser().absolute())]
    return {
        "Label": label,
        "ProgramArguments": args,
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # restart after a crash, not after a clean stop
        "ThrottleInterval": THROTTLE_S,
        "ExitTimeOut": EXIT_TIMEOUT_S,
        "ProcessType": "Standard",  # "Background" would throttle the GPU work
        "StandardOutPath": str(log_dir / "launchd.out.log"),  # only what escapes the JSON log: early crashes
        "StandardErrorPath": str(log_dir / "launchd.err.log"),
        "EnvironmentVariables": {"PYTHONUNBUFFERED": "1", "PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    }


def write_plist(data: dict[str, Any], path: Path) -> Path:
    """Write, then read back: launchd silently ignores a plist it cannot parse."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as handle:
        plistlib.dump(data, handle, sort_keys=True)
    with open(tmp, "rb") as handle:
        if plistlib.load(handle) != data:
            raise AgentError(f"{tmp} did not read back as written")
    os.chmod(tmp, 0o644)  # launchd refuses agents writable by group or others
    os.replace(tmp, path)
    return path


def _domain() -> str:
    return f"gui/{os.getuid()}"


def _launchctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    exe = shutil.which("launchctl")
    if exe is None:
        raise AgentError("launchctl not found: the launchd agent is for macOS")
    result = subprocess.run([exe, *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise AgentError(f"launchctl {' '.join(args)} failed ({result.returncode}): "
                         f"{(result.stderr or result.stdout).strip()}")
    return result


def install(config_path: Path | None, log_dir: Path, label: str = LABEL) -> Path:
    """Write the plist and (re)load it: asrd starts now and at every login."""
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = write_plist(build_plist(config_path, log_dir, label=label), plist_path(label))
    _launchctl("bootout", f"{_domain()}/{label}", check=False)  # not loaded yet is fine
    _launchctl("bootstrap", _domain(), str(path))
    _launchctl("enable", f"{_domain()}/{label}")
    return path


def uninstall(label: str = LABEL) -> bool:
    """Stop the agent and remove its plist; False when it was not installed."""
    path = plist_path(label)
    _launchctl("bootout", f"{_domain()}/{label}", check=False)
    if path.exists():
        path.unlink()
        return True
    return False


@dataclass
class AgentStatus:
    installed: bool
    loaded: bool
    pid: int | None
    last_exit: str | None


def status(label: str = LABEL) -> AgentStatus:
    installed = plist_path(label).exists()
    result = _launchctl("print", f"{_domain()}/{label}", check=False)
    if result.returncode != 0:
        return AgentStatus(installed, False, None, None)
    fields = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.strip().partition(" = ")
        if sep and key not in fields:
            fields[key] = value.strip()
    pid = int(fields["pid"]) if fields.get("pid", "").isdigit() else None
    return AgentStatus(installed, True, pid, fields.get("last exit code"))
