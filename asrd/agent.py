"""The login agent, whichever service manager this OS has: launchd on macOS (`asrd.macos.agent`),
a systemd user unit on Linux (`asrd.linux.agent`).

Both run `python -m asrd run` with the interpreter that installed them and the environment asrd
reads at install time, so the agent sees the same config and model caches as the user's shell.
`ASRD_AGENT_MANAGER` (launchd|systemd) overrides the choice: tests drive both on one machine.
"""

from __future__ import annotations

import os
import shlex
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

MANAGER_ENV = "ASRD_AGENT_MANAGER"
# Settings asrd (or the model hubs it drives) reads from the environment; the agent gets the install-time values.
PASSED_ENV = ("ASRD_CONFIG", "MODELSCOPE_CACHE", "MODELSCOPE_ENDPOINT", "MODELSCOPE_DOMAIN", "HF_HOME",
              "HF_ENDPOINT", "HF_HUB_OFFLINE", "TORCH_HOME",
              "XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME")
DEFAULT_PATH = "/usr/local/bin:/opt/homebrew/bin:/usr/bin:/bin:/usr/sbin:/sbin"


class AgentError(Exception):
    """The service manager refused or is missing; the message carries its words and the fix."""


@dataclass
class AgentStatus:
    manager: str  # "launchd" or "systemd"
    definition: Path  # the plist or unit file
    installed: bool
    loaded: bool
    pid: int | None
    last_exit: str | None
    interpreter: str | None  # the Python the installed definition runs

    @property
    def stale(self) -> bool:
        """The installed agent runs an interpreter that no longer exists (venv removed or upgraded)."""
        return self.interpreter is not None and not os.access(self.interpreter, os.X_OK)


def manager_name() -> str:
    chosen = os.environ.get(MANAGER_ENV, "").strip()
    if chosen:
        if chosen not in ("launchd", "systemd"):
            raise AgentError(f"{MANAGER_ENV}={chosen!r}: use launchd or systemd")
        return chosen
    return "launchd" if sys.platform == "darwin" else "systemd"


def manager() -> ModuleType:
    """The backend module for this OS; each has the same functions (install, uninstall, restart, status...)."""
    if manager_name() == "launchd":
        from asrd.macos import agent as backend
    else:
        from asrd.linux import agent as backend
    return backend


def program(config_path: Path | None, python: str | None = None) -> list[str]:
    args = [python or sys.executable, "-m", "asrd", "run"]
    if config_path is not None:
        args += ["--config", str(Path(config_path).expanduser().absolute())]
    return args


def environment(extra: dict[str, str] | None = None) -> dict[str, str]:
    """What the agent's process gets: unbuffered output, MPS fallback, a PATH, and asrd's own settings."""
    env = {"PYTHONUNBUFFERED": "1", "PYTORCH_ENABLE_MPS_FALLBACK": "1",
           "PATH": os.environ.get("PATH") or DEFAULT_PATH}
    env.update({key: os.environ[key] for key in PASSED_ENV if os.environ.get(key)})
    env.update(extra or {})
    return env


def reinstall_command(config_path: Path | None) -> str:
    """The command that installs the agent again with the Python running now."""
    args = [sys.executable, "-m", "asrd", "agent", "install"]
    if config_path is not None:
        args += ["--config", str(Path(config_path).expanduser().absolute())]
    return shlex.join(args)
