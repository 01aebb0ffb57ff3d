"""Typed settings from YAML, with errors that name the key, the bad value and the fix.

Search order: `--config PATH`, then `$ASRD_CONFIG`, then the user config
(`~/Library/Application Support/asrd/config.yaml` on macOS), then built-in defaults. The first file
found is overlaid on the defaults; every value remembers where it came from (`asrd config check`).
The schema is the dataclasses below: field type + `choices`/`minimum` metadata drive validation.
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import types
import typing
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import platformdirs

from asrd.presets import MODEL_ROLES, PRESETS

APP = "asrd"
FORMATS = ("txt", "srt", "vtt", "json", "md")
DEVICES = ("mps", "cuda", "cpu")
LANGUAGES = ("auto", "zh", "en", "yue", "ja", "ko")
DEFAULT = "default"
NOTIFY_EVENTS = ("done", "failed")
JOB_TIMEOUT_FACTOR, JOB_TIMEOUT_BASE_S = 2.0, 120.0


def _choices(*allowed: str) -> dict[str, Any]:
    return {"choices": allowed}


def _physical_cores() -> int:
    try:
        import psutil

        return psutil.cpu_count(logical=False) or os.cpu_count() or 1
    except Exception:  # psutil missing or unsupported platform: logical count is a fine fallback
        return os.cpu_count() or 1


@dataclass(frozen=True)
class EngineConfig:
    device: str = field(default="auto", metadata=_choices("auto", *DEVICES))
    device_priority: tuple[str, ...] = field(default=DEVICES, metadata=_choices(*DEVICES))
    fallback_on_error: bool = True
    threads: int = field(default_factory=_physical_cores, metadata={"minimum": 1})
    # fast: asrd's FSMN-VAD (asrd/engine/vad.py), the same segments as FunASR's, several times
    # quicker; funasr: FunASR's own VAD call, for anyone who wants upstream exactly
    vad: str = field(default="fast", metadata=_choices("fast", "funasr"))
    # how the ASR model is called: batched (several speech regions per call, the CPU and CUDA way), or
    # sequential (one call at a time, adjacent regions merged up to model.merge_length_s: the MPS way,
    # batch_size=1); auto: sequential on mps, batched elsewhere
    calls: str = field(default="auto", metadata=_choices("auto", "batched", "sequential"))
    max_attempts: int = field(default=3, metadata={"minimum": 1})
    max_crashes: int = field(default=2, metadata={"minimum": 1})
    retry_delay_s: float = field(default=5.0, metadata={"minimum": 0})  # first retry's wait; doubles, max 5 min
    # None: scale with the recording, JOB_TIMEOUT_FACTOR x its duration + JOB_TIMEOUT_BASE_S
    job_timeout: float | None = field(default=None, metadata={"minimum": 1})
    # seconds the engine may spend loading the models without a sign of life (a download's progress
    # counts) before it is killed: a hung device initialisation or a stalled download
    load_timeout_s: float = field(default=600.0, metadata={"minimum": 1})
    recycle_after_jobs: int = field(default=50, metadata={"minimum": 0})
    # the engine's memory figure (macOS: physical footprint; else RSS) that recycles it between jobs;
    # None: half of this machine's RAM; 0: no limit
    max_memory_mb: int | None = field(default=None, metadata={"minimum": 0})
    # distinct input shapes the engine may run on MPS (each keeps a compiled graph for the process's
    # life) before it is recycled between jobs; 0: no limit
    max_shapes: int = field(default=128, metadata={"minimum": 0})
    idle_unload_s: float = field(default=600.0, metadata={"minimum": 0})

    def memory_limit_mb(self) -> int:
        """engine.max_memory_mb, or half of the machine's RAM when it is not set; 0: no limit."""
        if self.max_memory_mb is not None:
            return self.max_memory_mb
        import psutil

        return int(psutil.virtual_memory().total / 2**20 / 2)

    def timeout_for(self, audio_s: float) -> float:
        """Seconds a job may take before the engine is killed and the job retried."""
        if self.job_timeout is not None:
            return self.job_timeout
        return JOB_TIMEOUT_FACTOR * max(audio_s, 0.0) + JOB_TIMEOUT_BASE_S


@dataclass(frozen=True)
class ModelConfig:
    preset: str = field(default="sensevoice", metadata=_choices(*PRESETS))
    # None here means "not set: use the preset's". The resolved choice is in Config.models().
    asr: str | None = None
    vad: str | None = None
    punc: str | None = None
    spk: str | None = None
    language: str = field(default="auto", metadata=_choices(*LANGUAGES))
    use_itn: bool = True
    hotwords: tuple[str, ...] = ()
    max_segment_s: float = field(default=30.0, metadata={"minimum": 1})
    # batched calls (CPU): short speech regions share one ASR call up to this many padded seconds;
    # sequential calls (MPS): adjacent regions merged into one call up to this many seconds, cut back
    # into regions by token timestamps. Each region keeps its own segment; 0: one region per call.
    merge_length_s: float = field(default=15.0, metadata={"minimum": 0})
    num_speakers: int | None = field(default=None, metadata={"minimum": 1})
    rich_tags: bool = False  # show SenseVoice's emotion/event tags in txt/srt/vtt/md (json always has them)


@dataclass(frozen=True)
class WatchConfig:
    settle_s: float = field(default=2.0, metadata={"minimum": 0})
    rescan_s: float = field(default=60.0, metadata={"minimum": 1})
    # auto: poll network volumes (they send no file events for other machines' writes); true/false: always/never
    polling: str = field(default="auto", metadata=_choices("auto", "true", "false"))


@dataclass(frozen=True)
class NotifyConfig:
    # which finished jobs to announce; [] = none
    on: tuple[str, ...] = field(default=("failed",), metadata={**_choices(*NOTIFY_EVENTS), "empty_ok": True})
    webhook: str | None = field(default=None, metadata={"url": True})  # POSTed each announced job's summary
    webhook_timeout_s: float = field(default=5.0, metadata={"minimum": 1})


@dataclass(frozen=True)
class PowerConfig:
    keep_awake: bool = True  # macOS: no idle sleep while jobs are queued or running (caffeinate)


@dataclass(frozen=True)
class LimitsConfig:
    """Recordings refused from their header before anything is decoded (6 h of 16 kHz float32 is 1.4 GB)."""

    max_duration_s: float = field(default=6 * 3600.0, metadata={"minimum": 1})
    max_bytes: int = field(default=4 * 1024**3, metadata={"minimum": 1})


@dataclass(frozen=True)
class Config:
    inbox: Path = field(default_factory=lambda: Path("~/Transcribe/inbox").expanduser())
    outputs: tuple[str, ...] = field(default=("txt", "srt", "json"), metadata=_choices(*FORMATS))
    state_dir: Path = field(default_factory=lambda: Path(platformdirs.user_data_dir(APP)))
    log_file: Path = field(default_factory=lambda: user_log_file())
    log_level: str = field(default="info", metadata=_choices("debug", "info", "warning", "error"))
    watch: WatchConfig = field(default_factory=WatchConfig)
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    engine: EngineConfig = field(default_factory=EngineConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    notify: NotifyConfig = field(default_factory=NotifyConfig)
    power: PowerConfig = field(default_factory=PowerConfig)
    # dotted key -> where its value came from ("default" or the config file's path)
    sources: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    # model keys the config file set explicitly (null included: that switches a role off)
    explicit_models: Mapping[str, str | None] = field(default_factory=dict, compare=False, repr=False)

    def models(self) -> dict[str, str | None]:
        """The model for each role: an explicit `model.<role>` beats the preset's."""
        preset = PRESETS[self.model.preset]
        return {role: self.explicit_models.get(role, getattr(preset, role)) for role in MODEL_ROLES}

    def source_of(self, key: str) -> str:
        return self.sources.get(key, DEFAULT)


def user_log_file() -> Path:
    """The default log file: ~/Library/Logs/asrd/asrd.log on macOS, ~/.local/state/asrd/log/ on Linux."""
    return Path(platformdirs.user_log_dir(APP)) / "asrd.log"


class ConfigError(Exception):
    """One or more problems in a config file; each line names the key, the value and the fix."""

    def __init__(self, problems: list[str], origin: str | None = None):
        self.problems = problems
        self.origin = origin
        where = f" in {origin}" if origin else ""
        super().__init__(f"config error{where}:\n" + "\n".join(f"  - {p}" for p in problems))


# --- finding the file -------------------------------------------------------------------------


def user_config_path() -> Path:
    return Path(platformdirs.user_config_dir(APP, appauthor=False)) / "config.yaml"


def find_config_file(cli_path: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """The config file to read and why it was chosen; (None, 'default') when there is none."""
    if cli_path:
        return Path(cli_path).expanduser(), "--config"
    env = os.environ.get("ASRD_CONFIG")
    if env:
        return Path(env).expanduser(), "$ASRD_CONFIG"
    user = user_config_path()
    if user.is_file():
        return user, "user config"
    return None, DEFAULT


def load_config(cli_path: str | os.PathLike | None = None) -> Config:
    """Read, validate and type the config; raises ConfigError naming every bad key."""
    path, why = find_config_file(cli_path)
    if path is None:
        return build_config({}, origin=None)
    if not path.is_file():
        raise ConfigError([f"config file {path} (from {why}) does not exist; create it or fix the path"])
    return build_config(read_yaml(path), origin=str(path), base_dir=path.parent)


def read_yaml(path: Path) -> dict[str, Any]:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ConfigError([f"not valid YAML{where}: {getattr(exc, 'problem', exc)}"], str(path)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"cannot read the file: {exc}"], str(path)) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError([f"the top level must be a mapping of keys, not {_kind(data)}"], str(path))
    return data


# --- validation -------------------------------------------------------------------------------


def build_config(data: Mapping[str, Any], origin: str | None, base_dir: Path | None = None) -> Config:
    """Overlay `data` (parsed YAML) on the defaults of `Config`, collecting every problem."""
    problems: list[str] = []
    sources: dict[str, str] = {}
    explicit_models: dict[str, str | None] = {}
    context = _Context(origin or DEFAULT, base_dir or Path.cwd(), problems, sources)
    config = _build(Config, data, "", context)
    if isinstance(data.get("model"), Mapping):
        for role in MODEL_ROLES:
            if role in data["model"]:
                explicit_models[role] = getattr(config.model, role)
        if "asr" in data["model"] and data["model"]["asr"] is None:
            problems.append("model.asr: null is not allowed (there must be a speech model); "
                            "remove the key to use the preset's model, or give a hub id or local folder")
    for role, value in explicit_models.items():
        if value is not None and _looks_like_path(value) and not Path(value).is_dir():
            problems.append(f"model.{role}: local model folder {value!r} does not exist; "
                            "fix the path, or give a hub id such as 'iic/SenseVoiceSmall'")
    for key in FOLDER_KEYS:
        problem = _not_a_folder(key, getattr(config, key))
        if problem:
            problems.append(problem)
    if problems:
        raise ConfigError(problems, origin)
    return dataclasses.replace(config, sources=sources, explicit_models=explicit_models)


FOLDER_KEYS = ("inbox", "state_dir")  # folders asrd creates when missing, so a file in the way stops it


def _not_a_folder(key: str, path: Path) -> str | None:
    """A problem if `path`, or the nearest part of it that exists, is not a folder (a file in the way)."""
    for existing in (path, *path.parents):
        if existing.is_dir():
            return None
        if existing.exists() or existing.is_symlink():
            where = "is a file, not a folder" if existing == path else f"is inside {existing}, which is a file"
            return (f"{key}: {str(path)!r} {where}; point {key} at a folder "
                    "(asrd creates it if it is missing)")
    return None


@dataclass
class _Context:
    origin: str
    base_dir: Path
    problems: list[str]
    sources: dict[str, str]


def _build(cls: type, data: Any, prefix: str, ctx: _Context) -> Any:
    if not isinstance(data, Mapping):
        ctx.problems.append(f"{prefix.rstrip('.')}: expected a mapping of keys, got {_kind(data)} {data!r}")
        return cls()
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init and f.name not in ("sources", "explicit_models")}
    hints = typing.get_type_hints(cls)
    if True in data and "on" in fields and "on" not in data:  # YAML 1.1 reads a bare `on:` key as true
        data = {("on" if key is True else key): value for key, value in data.items()}
    for key in data:
        if key not in fields:
            ctx.problems.append(_unknown_key(prefix, str(key), list(fields)))
    values: dict[str, Any] = {}
    for name, f in fields.items():
        dotted = prefix + name
        hint = hints[name]
        if dataclasses.is_dataclass(hint):
            values[name] = _build(hint, data.get(name, {}), dotted + ".", ctx)
            continue
        ctx.sources[dotted] = DEFAULT
        if name in data:
            converted = _convert(dotted, data[name], hint, f.metadata, ctx)
            if converted is not _INVALID:
                values[name] = converted
                ctx.sources[dotted] = ctx.origin
    return cls(**values)


_INVALID = object()


def _convert(key: str, value: Any, hint: Any, meta: Mapping[str, Any], ctx: _Context) -> Any:
    """Check one value against its type hint and metadata; report and return _INVALID if bad."""
    optional, hint = _unwrap_optional(hint)
    if value is None:
        if optional:
            return None
        return _bad(ctx, key, value, f"a value is required ({_describe(hint, meta)})")
    origin = typing.get_origin(hint)
    if origin is tuple:
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list):
            return _bad(ctx, key, value, f"expected a list ({_describe(hint, meta)})")
        item_type = typing.get_args(hint)[0]
        converted = [_convert(f"{key}[{i}]", v, item_type, meta, ctx) for i, v in enumerate(items)]
        if any(c is _INVALID for c in converted):
            return _INVALID
        if meta.get("choices") and len(set(converted)) != len(converted):
            return _bad(ctx, key, value, "lists each entry more than once")
        if meta.get("choices") and not converted and not meta.get("empty_ok"):  # no outputs, no device to try: nothing could work
            return _bad(ctx, key, value, f"list at least one of: {', '.join(meta['choices'])}")
        return tuple(converted)
    if hint is bool:
        if isinstance(value, bool):
            return value
        return _bad(ctx, key, value, "expected true or false")
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            return _bad(ctx, key, value, "expected a whole number")
        if "minimum" in meta and value < meta["minimum"]:
            return _bad(ctx, key, value, f"must be at least {meta['minimum']}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return _bad(ctx, key, value, "expected a number")
        if "minimum" in meta and value < meta["minimum"]:
            return _bad(ctx, key, value, f"must be at least {meta['minimum']}")
        return float(value)
    if hint is Path:
        if not isinstance(value, str) or not value.strip():
            return _bad(ctx, key, value, "expected a path")
        return _resolve_path(value, ctx.base_dir)
    if hint is str:
        if isinstance(value, bool) and {"true", "false"} <= set(meta.get("choices", ())):
            value = "true" if value else "false"  # YAML reads `polling: true` as a bool
        if not isinstance(value, str):
            return _bad(ctx, key, value, f"expected text ({_describe(hint, meta)})")
        choices = meta.get("choices")
        if choices and value not in choices:
            return _bad(ctx, key, value, f"use one of: {', '.join(choices)}")
        if meta.get("url") and not _is_web_url(value):
            return _bad(ctx, key, value, "give an http:// or https:// URL (or null for none)")
        if key.startswith("model.") and _looks_like_path(value):
            return str(_resolve_path(value, ctx.base_dir))
        return value
    raise TypeError(f"config schema has an unsupported type for {key}: {hint!r}")  # a bug in asrd


def _unwrap_optional(hint: Any) -> tuple[bool, Any]:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return True, args[0]
    return False, hint


def _describe(hint: Any, meta: Mapping[str, Any]) -> str:
    if meta.get("choices"):
        return "one of: " + ", ".join(meta["choices"])
    if typing.get_origin(hint) is tuple:
        return "a list of text"
    return {bool: "true or false", int: "a whole number", float: "a number", Path: "a path"}.get(hint, "text")


def _bad(ctx: _Context, key: str, value: Any, fix: str) -> object:
    ctx.problems.append(f"{key}: {value!r} is not valid; {fix}")
    return _INVALID


def _unknown_key(prefix: str, key: str, known: list[str]) -> str:
    close = difflib.get_close_matches(key, known, n=1)
    hint = f"did you mean {prefix}{close[0]}?" if close else f"known keys here: {', '.join(prefix + k for k in known)}"
    return f"{prefix}{key}: unknown key; {hint}"


def _kind(value: Any) -> str:
    return {list: "a list", str: "text", int: "a number", float: "a number", bool: "true/false"}.get(
        type(value), type(value).__name__
    )


def _looks_like_path(value: str) -> bool:
    """Local folders start like paths; hub ids ('iic/SenseVoiceSmall') and aliases ('fsmn-vad') don't."""
    return value.startswith(("/", "~", "./", "../", ".\\")) or value in (".", "..")


def _is_web_url(value: str) -> bool:
    try:
        parts = urllib.parse.urlsplit(value)
        parts.port  # noqa: B018 -- raises ValueError for a port that is not a number
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname)


def _resolve_path(value: str, base_dir: Path) -> Path:
    """Expand ~ and $VARS; a relative path is relative to the config file's folder."""
    path = Path(os.path.expandvars(value)).expanduser()
    return path if path.is_absolute() else (base_dir / path).resolve()


# --- presenting -------------------------------------------------------------------------------


def describe(config: Config) -> list[tuple[str, Any, str]]:
    """(dotted key, value, source) rows for `asrd config check`, models resolved."""
    rows: list[tuple[str, Any, str]] = []

    def walk(obj: Any, prefix: str) -> None:
        for f in dataclasses.fields(obj):
            if f.name in ("sources", "explicit_models"):
                continue
            value = getattr(obj, f.name)
            if dataclasses.is_dataclass(value):
                walk(value, prefix + f.name + ".")
                continue
            key = prefix + f.name
            source = config.source_of(key)
            if key.startswith("model.") and f.name in MODEL_ROLES:
                value = config.models()[f.name]
                if f.name not in config.explicit_models:
                    source = f"preset {config.model.preset}"
            rows.append((key, value, source))

    walk(config, "")
    return rows
