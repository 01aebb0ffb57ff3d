"""Model files on this machine: where each configured model is, whether it is complete, and
downloading hub models into the ModelScope cache.

asrd turns every hub id into its cached snapshot folder itself and gives FunASR that folder, so a
load never waits on the network once a model is downloaded, and checks every folder first:
FunASR quietly builds a model with random weights when model.pt is missing. A hub model that is
not cached yet is downloaded on first use (as FunASR would); with no network that fails at once
with a message naming the model, the cache and the fix.
Imports neither torch nor funasr (`asrd models` stays fast); modelscope only when needed.
"""

from __future__ import annotations

import importlib.util
import json
import os
import runpy
import socket
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from asrd.config import Config
from asrd.engine.errors import ModelLoadError, folder_fix, hub_fix
from asrd.logging import get_logger

log = get_logger("asrd.models")

DEFAULT_ENDPOINT = "https://modelscope.cn"  # modelscope's own default; MODELSCOPE_ENDPOINT overrides it
PROBE_TIMEOUT_S = 5.0
REQUIRED = {"config": "config.yaml", "init_param": "model.pt"}  # what FunASR reads when nothing else is named


@dataclass
class ModelLocation:
    """One configured model on this machine: its folder when there is one, and what is wrong."""

    role: str
    name: str  # as configured: a hub id, a FunASR alias ("fsmn-vad") or a local folder
    hub_id: str | None  # None for a local folder
    path: Path | None  # the folder found (cached snapshot or the local folder)
    where: str  # where asrd looked, for messages
    problem: str | None = None

    @property
    def ready(self) -> bool:
        return self.path is not None and self.problem is None


# --------------------------------------------------------------------------- names and places


def is_local(name: str) -> bool:
    """A folder, as FunASR decides (it exists), or anything written like a path."""
    return name.startswith(("/", "~", ".")) or os.path.exists(name)


@lru_cache(maxsize=1)
def _funasr_aliases() -> dict[str, str]:
    """FunASR's short names ("fsmn-vad", "ct-punc", "cam++") -> ModelScope ids, read from its
    own table without importing funasr (that takes seconds)."""
    spec = importlib.util.find_spec("funasr")
    if spec is None or not spec.submodule_search_locations:
        return {}
    table = Path(list(spec.submodule_search_locations)[0]) / "download" / "name_maps_from_hub.py"
    try:
        return dict(runpy.run_path(str(table)).get("name_maps_ms", {}))
    except (OSError, SyntaxError):
        return {}


def hub_id(name: str) -> str:
    return _funasr_aliases().get(name, name)


def cache_root() -> Path:
    """The ModelScope cache: $MODELSCOPE_CACHE, else ~/.cache/modelscope (as modelscope decides;
    asrd passes it to modelscope explicitly so both always mean the same folder)."""
    env = os.environ.get("MODELSCOPE_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "modelscope"


def cache_folder(model_id: str) -> Path:
    """Where modelscope keeps one model's snapshots."""
    return cache_root() / "models" / model_id.replace("/", "--")


def cached_snapshot(model_id: str) -> Path | None:
    """The downloaded snapshot folder of a hub model, without touching the network; None if absent."""
    try:
        from modelscope.hub.snapshot_download import snapshot_download

        return Path(snapshot_download(model_id, cache_dir=str(cache_root()), local_files_only=True))
    except Exception:  # CacheNotFound, a bad id, or modelscope missing: not available here
        return None


# --------------------------------------------------------------------------- completeness


def _named_files(metas: Any, prefix: str = "") -> dict[str, str]:
    """configuration.json's file_path_metas flattened: dotted key -> relative file name."""
    found: dict[str, str] = {}
    if isinstance(metas, dict):
        for key, value in metas.items():
            found.update(_named_files(value, f"{prefix}{key}."))
    elif isinstance(metas, (list, tuple)):
        for i, value in enumerate(metas):
            found.update(_named_files(value, f"{prefix}{i}."))
    elif isinstance(metas, str):
        found[prefix.rstrip(".")] = metas
    return found


def _metas(folder: Path) -> dict[str, Any]:
    try:
        data = json.loads((folder / "configuration.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    metas = data.get("file_path_metas") if isinstance(data, dict) else None
    return metas if isinstance(metas, dict) else {}


def folder_problem(folder: Path) -> str | None:
    """Why FunASR could not load this folder properly (None: complete). Every file its
    configuration.json names must exist, and the config and weights always."""
    if not folder.is_dir():
        return "the folder does not exist" if not folder.exists() else "it is not a folder"
    needed = {**REQUIRED, **_named_files(_metas(folder))}
    missing = sorted({name for name in needed.values() if not (folder / name).exists()})
    if missing:
        return f"the folder lacks {', '.join(missing)}"
    return None


# --------------------------------------------------------------------------- locating


def locate(role: str, name: str) -> ModelLocation:
    """Find one model on this machine (never downloads)."""
    if is_local(name):
        folder = Path(name).expanduser()
        return ModelLocation(role, name, None, folder, str(folder), folder_problem(folder))
    model_id = hub_id(name)
    where = f"the ModelScope cache {cache_folder(model_id)}"
    snapshot = cached_snapshot(model_id)
    if snapshot is None:
        return ModelLocation(role, name, model_id, None, where, "it is not downloaded")
    return ModelLocation(role, name, model_id, snapshot, str(snapshot), folder_problem(snapshot))


def locate_all(models: dict[str, str | None]) -> list[ModelLocation]:
    return [locate(role, name) for role, name in models.items() if name]


# --------------------------------------------------------------------------- downloading


class DownloadFailed(Exception):
    """The hub could not be reached or the download broke off."""


def endpoint() -> str:
    return os.environ.get("MODELSCOPE_ENDPOINT", "").strip() or DEFAULT_ENDPOINT


def check_reachable() -> None:
    """Fail in seconds when offline, instead of modelscope's retry loop (~20 s per model)."""
    url = urlparse(endpoint() if "://" in endpoint() else f"https://{endpoint()}")
    host, port = url.hostname or "modelscope.cn", url.port or (80 if url.scheme == "http" else 443)
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise DownloadFailed(f"{host} cannot be reached ({exc})") from None


class DownloadProgressLog:
    """A modelscope progress callback (made per file as cls(filename, file_size)) that logs
    `models.download_progress` every PROGRESS_EVERY_S and when the file is complete, so a first-use
    download of ~900 MB inside the engine shows in the log (and on `asrd transcribe`'s terminal)."""

    PROGRESS_EVERY_S = 5.0

    def __init__(self, filename: str, file_size: int, clock=time.monotonic):
        self.filename, self.file_size, self.done = filename, file_size, 0
        self._clock = clock
        self._last = clock()

    def update(self, size: int) -> None:
        self.done += size
        if self._clock() - self._last >= self.PROGRESS_EVERY_S:
            self._last = self._clock()
            self._log()

    def end(self) -> None:
        self._log()

    def _log(self) -> None:
        log.info("models.download_progress", model_file=self.filename, done_mb=round(self.done / 2**20, 1),
                 total_mb=round(self.file_size / 2**20, 1),
                 fraction=round(self.done / self.file_size, 3) if self.file_size > 0 else None)


def download(model_id: str, progress: bool = False) -> Path:
    """Download (or complete) one hub model into the ModelScope cache; its snapshot folder.
    progress: a terminal progress bar (`asrd models pull`), else progress events in the log."""
    check_reachable()
    try:
        from modelscope.hub.callback import TqdmCallback
        from modelscope.hub.snapshot_download import snapshot_download

        callbacks = [TqdmCallback] if progress else [DownloadProgressLog]
        return Path(snapshot_download(model_id, cache_dir=str(cache_root()), progress_callbacks=callbacks))
    except ImportError as exc:
        raise DownloadFailed(f"modelscope is not installed ({exc}); install asrd[engine]") from None
    except Exception as exc:  # modelscope's many network and hub errors
        raise DownloadFailed(f"the download failed: {type(exc).__name__}: {exc}") from None


def ensure_ready(role: str, name: str, allow_download: bool = True) -> Path:
    """The complete local folder for one model, downloading a missing hub model first;
    ModelLoadError naming the model, where asrd looked and the fix otherwise."""
    found = locate(role, name)
    if found.hub_id is None:
        if found.problem:
            raise ModelLoadError(role, name, found.where, found.problem, folder_fix(role))
        return found.path
    if not found.ready and allow_download:
        log.info("models.downloading", role=role, model=found.hub_id, cache=str(cache_root()))
        try:
            found.path = download(found.hub_id)
            found.where, found.problem = str(found.path), folder_problem(found.path)
        except DownloadFailed as exc:
            found.problem = f"{found.problem or 'it is incomplete'} and {exc}"
    if found.problem:
        raise ModelLoadError(role, name, found.where, found.problem, hub_fix(role))
    return found.path


def prepare(config: Config, allow_download: bool = True) -> dict[str, str]:
    """role -> complete local folder for every configured model (what AutoModel is given)."""
    return {role: str(ensure_ready(role, name, allow_download))
            for role, name in config.models().items() if name}
