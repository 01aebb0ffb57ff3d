"""Structured logs: one JSON object per line in `log_file`, a readable renderer on the console.

structlog's events and stdlib logging records (torch, funasr, watchdog) go through the same
processors, so the file holds only JSON lines with `event`, `level` and a UTC ISO `timestamp`.
Only one process writes the file: the engine child sends its events to the parent (see
`asrd.engine.process`), because two processes rotating one file corrupt it.
"""

from __future__ import annotations

import logging
import logging.handlers
import os
import sys
from pathlib import Path
from typing import Any, MutableMapping

import structlog

# Keys whose values are transcript text: shown at debug level only (privacy).
PRIVATE_KEYS = frozenset({"text", "transcript", "words"})
MAX_BYTES = 10 * 1024 * 1024
BACKUPS = 5


def hide_private_text(_: Any, method: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Replace transcript text by its length unless the event is a debug event."""
    if event.get("level", method) != "debug":
        for key in PRIVATE_KEYS & event.keys():
            value = event[key]
            event[key] = f"<{len(value)} chars hidden>" if isinstance(value, str) else "<hidden>"
    return event


def name_foreign_records(_: Any, __: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """stdlib records have a free-text message: keep it as `message`, name the event by logger."""
    record = event.get("_record")
    if record is not None and not event.get("_from_structlog", False):
        event["message"] = event.get("event")
        event["event"] = f"{record.name}.log"
    return event


_FUNASR_DIR = f"{os.sep}funasr{os.sep}"


def demote_library_chatter(record: logging.LogRecord) -> bool:
    """A logging filter: FunASR logs its progress through the root logger at info and warning
    ("trust_remote_code: False", "Loading ckpt ...") on every model load. Those records become
    debug records of a `funasr` logger (errors stay as they are), shown only with log_level debug."""
    if _FUNASR_DIR in (record.pathname or "") and record.levelno < logging.ERROR:
        record.levelno, record.levelname, record.name = logging.DEBUG, "DEBUG", "funasr"
        return logging.getLogger().isEnabledFor(logging.DEBUG)
    return True


class ConsoleLevel(logging.Filter):
    """The console's level, letting through events that start with one of `also` below it."""

    def __init__(self, level: str, also: tuple[str, ...] = ()):
        super().__init__()
        self.levelno, self.also = logging.getLevelName(level.upper()), also

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= self.levelno:
            return True
        event = record.msg.get("event") if isinstance(record.msg, dict) else None
        return isinstance(event, str) and event.startswith(self.also) if self.also else False


def shared_processors() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        structlog.processors.StackInfoRenderer(),
        structlog.processors.format_exc_info,
        hide_private_text,
    ]


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Size-rotated log file created 0600: logs name the user's recordings."""

    def _open(self):  # type: ignore[override]
        stream = super()._open()
        os.chmod(self.baseFilename, 0o600)
        return stream


def setup_logging(
    log_file: Path | None,
    level: str = "info",
    console: bool = True,
    console_level: str | None = None,
    console_also: tuple[str, ...] = (),
    max_bytes: int = MAX_BYTES,
    backups: int = BACKUPS,
) -> None:
    """Configure structlog + stdlib logging for this process (idempotent). console_also: prefixes of
    events shown on the console even below console_level (model download progress, say)."""
    shared = shared_processors()
    structlog.configure(
        processors=[structlog.stdlib.filter_by_level, *shared,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=False,
    )
    foreign = [structlog.stdlib.ExtraAdder(), name_foreign_records, *shared]
    handlers: list[logging.Handler] = []
    if log_file is not None:
        log_file = Path(log_file)
        log_file.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        handler = PrivateRotatingFileHandler(log_file, maxBytes=max_bytes, backupCount=backups, encoding="utf-8")
        handler.setFormatter(structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.processors.JSONRenderer(ensure_ascii=False)],
            foreign_pre_chain=foreign,
        ))
        handlers.append(handler)
    if console:
        stream = logging.StreamHandler(sys.stderr)
        if console_level:
            stream.addFilter(ConsoleLevel(console_level, console_also))
        stream.setFormatter(structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta,
                        structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())],
            foreign_pre_chain=foreign,
        ))
        handlers.append(stream)
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
        old.close()
    for handler in handlers:
        handler.addFilter(demote_library_chatter)
        root.addHandler(handler)
    root.setLevel(level.upper())
    # Chatty libraries stay at warning unless the user asks for debug.
    for noisy in ("watchdog", "urllib3", "modelscope", "numba", "matplotlib", "jieba"):
        logging.getLogger(noisy).setLevel(logging.DEBUG if level == "debug" else logging.WARNING)
    logging.captureWarnings(True)


def get_logger(name: str = "asrd", **bound: Any) -> structlog.stdlib.BoundLogger:
    return structlog.get_logger(name, **bound)
