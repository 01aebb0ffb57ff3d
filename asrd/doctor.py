"""`asrd doctor`'s checks: one result each, ok/warn/fail, with the fix in words a user can act on.

The doctor never imports torch or funasr itself (seconds, and a broken install must still be
diagnosable): versions come from the package metadata, and the device `auto` picks is asked of a
child Python that imports torch the way the engine does.
"""

from __future__ import annotations

import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass
from importlib import metadata, util
from pathlib import Path
from typing import Callable

from asrd.config import Config
from asrd.macos import privacy
from asrd.volumes import volume_of
from asrd.watcher import POLLING_INTERVAL_S, listing_error

MIN_PYTHON = (3, 10)
MINIMUMS = {"torch": (2, 1), "funasr": (1, 2)}
# below these asrd works around the gap (asrd.engine.placement), so a warning, not a failure
RECOMMENDED = {
    "funasr": ((1, 4, 16), "older releases build VAD, punc and spk on the ASR device; asrd moves them after loading"),
    "torch": ((2, 9), ("older torch gives wrong CAM++ speaker labels on MPS (pytorch#160743); asrd runs CAM++ "
                       "on the CPU")),
}
MPS_MIN_MACOS = 14  # current torch wheels need macOS 14 for MPS
DISK_WARN_BYTES, DISK_FAIL_BYTES = 2 * 1024**3, 200 * 1024**2
DEVICE_TIMEOUT_S = 120


@dataclass
class Check:
    name: str
    status: str  # "ok", "warn" or "fail"
    detail: str
    fix: str = ""


def _version_tuple(text: str) -> tuple[int, ...]:
    parts = []
    for piece in text.split(".")[:3]:
        digits = "".join(ch for ch in piece if ch.isdigit())
        if not digits:
            break
        parts.append(int(digits))
    return tuple(parts)


def check_python() -> Check:
    version = platform.python_version()
    if sys.version_info[:2] < MIN_PYTHON:
        return Check("python", "fail", f"{version} at {sys.executable}",
                     f"asrd needs Python {'.'.join(map(str, MIN_PYTHON))} or newer")
    return Check("python", "ok", f"{version} at {sys.executable}")


def check_package(name: str) -> Check:
    try:
        version = metadata.version(name)
    except metadata.PackageNotFoundError:
        return Check(name, "fail", "not installed", f"{sys.executable} -m pip install 'asrd[engine]'")
    minimum = MINIMUMS.get(name)
    if minimum and _version_tuple(version) < minimum:
        return Check(name, "fail", f"{version} (asrd needs {'.'.join(map(str, minimum))}+)",
                     f"{sys.executable} -m pip install -U {name}")
    recommended, why = RECOMMENDED.get(name, ((), ""))
    if _version_tuple(version) < recommended and (name != "torch" or platform.system() == "Darwin"):
        return Check(name, "warn", f"{version}: {why}",
                     f"{sys.executable} -m pip install -U '{name}>={'.'.join(map(str, recommended))}'")
    return Check(name, "ok", version)


def check_fbank() -> Check:
    for module, label in (("kaldi_native_fbank", "kaldi-native-fbank"), ("torchaudio", "torchaudio")):
        if util.find_spec(module) is not None:
            return Check("fbank", "ok", label)
    return Check("fbank", "fail", "neither kaldi-native-fbank nor torchaudio is installed",
                 f"{sys.executable} -m pip install kaldi-native-fbank")


DEVICE_PROBE = """
import json, sys
from asrd.engine import device as d
requested, priority, fallback = sys.argv[1], sys.argv[2].split(","), sys.argv[3] == "1"
d.prepare_environment(requested, priority)
import torch
try:
    c = d.choose_device(requested, priority, fallback, torch)
    print(json.dumps({"device": c.device, "reason": c.reason, "fell_back": c.fell_back}))
except d.DeviceUnavailable as exc:
    print(json.dumps({"error": str(exc)}))
"""


def check_device(config: Config) -> Check:
    engine = config.engine
    try:
        result = subprocess.run([sys.executable, "-c", DEVICE_PROBE, engine.device, ",".join(engine.device_priority),
                                 "1" if engine.fallback_on_error else "0"],
                                capture_output=True, text=True, timeout=DEVICE_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        return Check("device", "fail", f"importing torch took over {DEVICE_TIMEOUT_S} s",
                     f"{sys.executable} -c 'import torch' shows why")
    try:
        answer = json.loads(result.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError):
        last = (result.stderr.strip().splitlines() or ["no answer"])[-1]
        return Check("device", "fail", f"torch could not be imported: {last}", f"{sys.executable} -m pip install -U torch")
    if "error" in answer:
        return Check("device", "fail", answer["error"], "set engine.device: auto")
    detail = f"engine.device={engine.device} -> {answer['device']} ({answer['reason']})"
    if sys.platform == "darwin" and answer["device"] != "mps":
        major = _version_tuple(platform.mac_ver()[0] or "0")[:1] or (0,)
        if major[0] and major[0] < MPS_MIN_MACOS:
            return Check("device", "warn", f"{detail}; macOS {platform.mac_ver()[0]}",
                         f"MPS with current torch needs macOS {MPS_MIN_MACOS}; update macOS for the GPU")
        return Check("device", "warn", detail, "asrd is slow on the CPU; see `asrd devices`")
    return Check("device", "warn" if answer.get("fell_back") else "ok", detail)


def check_models(config: Config) -> list[Check]:
    from asrd import models

    found = []
    for place in models.locate_all(config.models()):
        name = f"model.{place.role}"
        if place.ready:
            found.append(Check(name, "ok", f"{place.name}: {place.path}"))
        elif place.hub_id is not None and place.path is None:
            found.append(Check(name, "fail", f"{place.name} is not downloaded (it goes to {place.where})",
                               "run `asrd models pull` while online"))
        else:
            found.append(Check(name, "fail", f"{place.name}: {place.problem} ({place.where})",
                               "fix the folder, or `asrd models pull` for a hub model"))
    return found


def check_inbox(config: Config) -> Check:
    inbox = Path(config.inbox)
    if not inbox.exists():
        return Check("inbox", "fail", f"{inbox} does not exist", f"mkdir -p '{inbox}' (or set inbox: in the config)")
    if not inbox.is_dir():
        return Check("inbox", "fail", f"{inbox} is not a folder", "set inbox: to a folder")
    error = listing_error(inbox)
    if error is not None:
        return Check("inbox", "fail", f"{inbox} cannot be read ({error.strerror or error})",
                     privacy.explain(inbox, error)["fix"])
    if not os.access(inbox, os.W_OK | os.X_OK):
        return Check("inbox", "fail", f"{inbox} is not writable (transcripts are written beside recordings)",
                     f"chmod u+w '{inbox}'")
    return Check("inbox", "ok", str(inbox))


def check_dataless(config: Config) -> Check:
    """Recordings evicted to iCloud (dataless) wait in the inbox until someone downloads them."""
    from asrd.macos.dataless import is_dataless
    from asrd.watcher import is_candidate

    inbox = Path(config.inbox).expanduser().absolute()
    waiting: list[Path] = []
    for dirpath, _dirs, files in os.walk(inbox):
        for name in files:
            path = Path(dirpath, name)
            try:
                if is_candidate(path, inbox) and is_dataless(os.stat(path)):
                    waiting.append(path)
            except OSError:
                continue
    if not waiting:
        return Check("dataless", "ok", "no recordings in the inbox are in iCloud only")
    shown = ", ".join(p.name for p in sorted(waiting)[:3]) + (", …" if len(waiting) > 3 else "")
    return Check("dataless", "warn",
                 f"{len(waiting)} dataless file{'s' if len(waiting) != 1 else ''} waiting in the inbox, in iCloud "
                 f"only and not read until downloaded: {shown}",
                 f"download them in Finder (Download Now), or `brctl download {shlex.quote(str(min(waiting)))}` "
                 "for each; asrd picks them up then")


def check_privacy(config: Config, platform: str = sys.platform, home: Path | None = None) -> list[Check]:
    """macOS only: an inbox where privacy protection stops a login agent until it is granted access."""
    if platform != "darwin":
        return []
    area = privacy.protected_area(Path(config.inbox), home)
    if area is None:
        return [Check("privacy", "ok", f"{config.inbox} is not in a folder macOS protects")]
    return [Check("privacy", "warn", f"{config.inbox} is in {area}, which macOS protects: the login agent "
                                     f"cannot read it until {privacy.binary_to_grant()} has Full Disk Access",
                  privacy.grant_hint())]


def check_volume(config: Config) -> Check:
    volume = volume_of(Path(config.inbox))
    if volume is None:
        return Check("volume", "ok", f"the file system of {config.inbox} could not be told")
    where = f"{config.inbox} is on {volume.mount_point} ({volume.fstype})"
    if not volume.network:
        return Check("volume", "ok", f"{where}, a local file system")
    if config.watch.polling == "false":
        return Check("volume", "warn", f"{where}, a network volume: it sends no file events, and watch.polling "
                                       f"is false, so new recordings wait for the rescan (every {config.watch.rescan_s:g} s)",
                     "set watch.polling: auto")
    return Check("volume", "warn", f"{where}, a network volume: it sends no file events, so asrd polls it "
                                   f"every {POLLING_INTERVAL_S:g} s", "none needed; a local inbox notices recordings at once")


def _existing(path: Path) -> Path:
    path = path.expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def check_disk(config: Config) -> Check:
    where = _existing(Path(config.state_dir))
    free = shutil.disk_usage(where).free
    detail = f"{free / 1024**3:.1f} GB free at {where}"
    if free < DISK_FAIL_BYTES:
        return Check("disk", "fail", detail, "free some space: models, the ledger and transcripts need room")
    if free < DISK_WARN_BYTES:
        return Check("disk", "warn", detail, "less than 2 GB left; a model download may not fit")
    return Check("disk", "ok", detail)


def check_log(config: Config) -> Check:
    log = Path(config.log_file).expanduser()
    target = log if log.exists() else _existing(log.parent)
    if target != log and not target.is_dir():
        return Check("log", "fail", f"{log} cannot be created: {target} is a file", "set log_file: elsewhere")
    if not os.access(target, os.W_OK) or (target.is_dir() and not os.access(target, os.X_OK)):
        return Check("log", "fail", f"{log} cannot be written ({target} is not writable)",
                     f"fix the permissions of {target}, or set log_file: elsewhere")
    return Check("log", "ok", str(log))


def check_agent(config_path: Path | None) -> Check:
    from asrd import agent

    try:
        state = agent.manager().status()
    except agent.AgentError as exc:
        return Check("agent", "warn", str(exc))
    if not state.installed:
        return Check("agent", "ok", "not installed (asrd starts only by hand)", "")
    if state.stale:
        return Check("agent", "fail", f"{state.definition} runs {state.interpreter}, which no longer exists",
                     f"reinstall: {agent.reinstall_command(config_path)}")
    running = f"running (pid {state.pid})" if state.pid else "not running"
    return Check("agent", "ok", f"{state.manager}: {state.definition}, {running if state.loaded else 'not loaded'}")


def run_checks(config: Config, config_path: Path | None) -> list[Check]:
    steps: list[Callable[[], Check | list[Check]]] = [
        check_python, lambda: check_package("torch"), lambda: check_package("funasr"), check_fbank,
        lambda: check_device(config), lambda: check_models(config), lambda: check_inbox(config),
        lambda: check_dataless(config), lambda: check_privacy(config), lambda: check_volume(config),
        lambda: check_disk(config), lambda: check_log(config), lambda: check_agent(config_path)]
    results: list[Check] = []
    for step in steps:
        try:
            found = step()
        except Exception as exc:  # a check that breaks is a finding, not a crash of the doctor
            found = Check(getattr(step, "__name__", "check"), "fail", f"the check itself failed: {exc!r}")
        results += found if isinstance(found, list) else [found]
    return results


def render(check: Check) -> str:
    line = f"{check.status:<4}  {check.name:<10} {check.detail}"
    return line + (f"\n      fix: {check.fix}" if check.fix and check.status != "ok" else "")


def as_json(checks: list[Check]) -> str:
    return json.dumps([asdict(c) for c in checks], indent=1)
