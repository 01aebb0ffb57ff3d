"""The launchd agent that starts `asrd run` at login and restarts it if it crashes.

The plist is built with plistlib (as maestral does) and read back before launchctl sees it.
launchd sends SIGTERM at logout/stop and SIGKILL after ExitTimeOut; asrd stops well inside that.
KeepAlive restarts only after an unclean exit, and ThrottleInterval spaces restarts.

`launchctl bootout` is asynchronous: it returns while the job is still being torn down, and a
`bootstrap` in that window fails with "5: Input/output error" (so does one for a label a
`launchctl disable` override blocks). So (re)install is: enable, bootout, poll `print` until the
label is gone, then bootstrap, retrying error 5 for a few seconds.
"""

from __future__ import annotations

import os
import plistlib
import shlex
import shutil
import subprocess
import time
from pathlib import Path
from typing import Any, Callable

from asrd.agent import AgentError, AgentStatus, environment, program

LABEL = "io.github.asrd"
EXIT_TIMEOUT_S = 20  # asrd stops in < 10 s
THROTTLE_S = 30
GONE_WAIT_S = 10.0  # how long a bootout may take to finish
BOOTSTRAP_RETRY_S = 8.0  # error 5 is reported for ~5 s after a bootout
POLL_S = 0.25
EIO = 5
NAME = "launchd"


def definition_path(label: str = LABEL) -> Path:
    return Path.home() / "Library" / "LaunchAgents" / f"{label}.plist"


def build_plist(config_path: Path | None, log_dir: Path, python: str | None = None,
                label: str = LABEL) -> dict[str, Any]:
    return {
        "Label": label,
        "ProgramArguments": program(config_path, python),
        "RunAtLoad": True,
        "KeepAlive": {"SuccessfulExit": False},  # restart after a crash, not after a clean stop
        "ThrottleInterval": THROTTLE_S,
        "ExitTimeOut": EXIT_TIMEOUT_S,
        "ProcessType": "Standard",  # "Background" would throttle the GPU work
        "StandardOutPath": str(log_dir / "launchd.out.log"),  # only what escapes the JSON log: early crashes
        "StandardErrorPath": str(log_dir / "launchd.err.log"),
        "EnvironmentVariables": environment(),
    }


def render(config_path: Path | None, log_dir: Path) -> str:
    return plistlib.dumps(build_plist(config_path, log_dir), sort_keys=True).decode()


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


def _target(label: str) -> str:
    return f"{_domain()}/{label}"


def _exe() -> str:
    exe = shutil.which("launchctl")
    if exe is None:
        raise AgentError("launchctl not found: the launchd agent is for macOS")
    return exe


def _launchctl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    result = subprocess.run([_exe(), *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise AgentError(f"launchctl {' '.join(args)} failed ({result.returncode}): "
                         f"{(result.stderr or result.stdout).strip()}")
    return result


def install_plan(label: str = LABEL) -> list[str]:
    """The commands install runs, as a user would type them (for --dry-run)."""
    target, path = _target(label), shlex.quote(str(definition_path(label)))
    return [f"launchctl enable {target}",
            f"launchctl bootout {target}  # 'not loaded' is fine",
            f"launchctl print {target}  # repeated until it fails: bootout finishes later (at most {GONE_WAIT_S:.0f} s)",
            f"launchctl bootstrap {_domain()} {path}  # retried while it fails with 5: Input/output error"]


def uninstall_plan(label: str = LABEL) -> list[str]:
    return [f"launchctl bootout {_target(label)}", f"rm {shlex.quote(str(definition_path(label)))}"]


def wait_gone(label: str = LABEL, timeout: float = GONE_WAIT_S,
              clock: Callable[[], float] = time.monotonic) -> bool:
    """Poll `launchctl print` until launchd no longer knows the label; False if it outlived timeout."""
    deadline = clock() + timeout
    while _launchctl("print", _target(label), check=False).returncode == 0:
        if clock() >= deadline:
            return False
        time.sleep(POLL_S)
    return True


def bootstrap(path: Path, label: str = LABEL, retry_s: float = BOOTSTRAP_RETRY_S) -> None:
    """`launchctl bootstrap`, retrying error 5 (the old job still tearing down) for up to retry_s."""
    deadline = time.monotonic() + retry_s
    while True:
        result = _launchctl("bootstrap", _domain(), str(path), check=False)
        if result.returncode == 0:
            return
        words = (result.stderr or result.stdout).strip()
        if result.returncode != EIO or time.monotonic() >= deadline:
            break
        time.sleep(POLL_S * 2)
    hint = ""
    if result.returncode == EIO:
        hint = (f"; launchd still holds the old job or the label is disabled: run `launchctl enable {_target(label)}`, "
                f"`launchctl bootout {_target(label)}`, wait a few seconds and `asrd agent install` again "
                f"(`plutil -lint {path}` checks the plist)")
    raise AgentError(f"launchctl bootstrap {_domain()} {path} failed ({result.returncode}): {words}{hint}")


def install(config_path: Path | None, log_dir: Path, label: str = LABEL,
            gone_wait_s: float = GONE_WAIT_S, retry_s: float = BOOTSTRAP_RETRY_S) -> Path:
    """Write the plist and (re)load it: asrd starts now and at every login. Safe to repeat (upgrade)."""
    _exe()  # no plist left behind where there is no launchd
    log_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = write_plist(build_plist(config_path, log_dir, label=label), definition_path(label))
    target = _target(label)
    _launchctl("enable", target)  # a `launchctl disable` override blocks bootstrap with error 5
    _launchctl("bootout", target, check=False)  # not loaded yet is fine
    if not wait_gone(label, gone_wait_s):
        raise AgentError(f"the old agent is still loaded {gone_wait_s:.0f} s after `launchctl bootout {target}`; "
                         "wait a moment and run `asrd agent install` again")
    bootstrap(path, label, retry_s)
    return path


def uninstall(label: str = LABEL) -> bool:
    """Stop the agent and remove its plist; False when it was not installed."""
    path = definition_path(label)
    if shutil.which("launchctl"):
        _launchctl("bootout", _target(label), check=False)
        wait_gone(label)
    if path.exists():
        path.unlink()
        return True
    return False


def restart(label: str = LABEL) -> None:
    """Stop the running asrd and start it again now (`kickstart -k`)."""
    result = _launchctl("kickstart", "-k", _target(label), check=False)
    if result.returncode != 0:
        raise AgentError(f"launchctl kickstart -k {_target(label)} failed ({result.returncode}): "
                         f"{(result.stderr or result.stdout).strip()}; is the agent installed? (`asrd agent install`)")


def installed_interpreter(label: str = LABEL) -> str | None:
    try:
        with open(definition_path(label), "rb") as handle:
            return str(plistlib.load(handle)["ProgramArguments"][0])
    except (OSError, ValueError, KeyError, IndexError, plistlib.InvalidFileException):
        return None


def status(label: str = LABEL) -> AgentStatus:
    path = definition_path(label)
    state = AgentStatus(NAME, path, path.exists(), False, None, None, installed_interpreter(label))
    if shutil.which("launchctl") is None:
        return state
    result = _launchctl("print", _target(label), check=False)
    if result.returncode != 0:
        return state
    fields: dict[str, str] = {}
    for line in result.stdout.splitlines():
        key, sep, value = line.strip().partition(" = ")
        if sep and key not in fields:  # the first (outer) block's keys
            fields[key] = value.strip()
    state.loaded = True
    state.pid = int(fields["pid"]) if fields.get("pid", "").isdigit() else None
    state.last_exit = fields.get("last exit code")
    return state
