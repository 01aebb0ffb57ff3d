"""Tell the user a job finished: a macOS notification and/or a webhook POST (`notify` config).

Only the events in `notify.on` are announced (`failed` by default). Delivery runs on one background
thread fed by a bounded queue, so a slow osascript or a webhook that hangs never holds up the job
queue; a full queue drops the announcement (logged). Failures are logged as `notify.failed` and
never reach the daemon. What is sent is the job's summary (file, state, figures, reason, outputs),
never transcript text. A webhook URL often carries a secret token: logs name only its host.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from asrd import __version__
from asrd.config import NotifyConfig
from asrd.ledger import Job
from asrd.logging import get_logger
from asrd.macos.notify import DesktopNotifier

log = get_logger("asrd.notify")
QUEUE_MAX = 100
CLOSE_WAIT_S = 2.0  # at a stop, how long announcements still queued may take to go out
_STOP = object()
PROBLEM = "problem"  # not a job: something only the user can fix (a broken config, an unreadable inbox)

Post = Callable[[str, dict[str, Any], float], None]


def summary(job: Job) -> dict[str, Any]:
    """The job as a webhook receives it; no transcript text."""
    def rounded(value: float | None, digits: int) -> float | None:
        return None if value is None else round(value, digits)

    return {"job_id": job.id, "file": job.path, "state": job.state, "audio_s": rounded(job.audio_s, 2),
            "processing_s": rounded(job.processing_s, 2), "rtf": rounded(job.rtf, 4),
            "reason": job.last_error if job.state == "failed" else None, "outputs": list(job.outputs)}


def message(info: dict[str, Any]) -> str:
    """One line for Notification Center: the file name, and length + RTF, or why it failed."""
    name = Path(info["file"]).name
    if info["state"] == PROBLEM:
        return f"asrd is waiting: {info['reason']}"
    if info["state"] == "done":
        figures = [f"{clock(info['audio_s'])} of audio"] if info["audio_s"] is not None else []
        if info["rtf"] is not None:
            figures.append(f"RTF {info['rtf']:.2f}")
        return f"Transcribed {name}" + (f" ({', '.join(figures)})" if figures else "")
    return f"Failed: {name}: {info['reason'] or 'no reason recorded'}"


def announce_problem(event: str, where: str, reason: str, config: NotifyConfig | None = None) -> None:
    """The same, at once, where no daemon runs yet (`asrd run` waiting for its config to be fixed:
    the defaults then, as the config cannot be read). Bounded by osascript's and the webhook's
    timeouts; never raises."""
    notifier = Notifier(lambda: config or NotifyConfig())
    notifier.problem(event, where, reason)
    notifier.close(timeout=(config or NotifyConfig()).webhook_timeout_s + 1)


def clock(seconds: float) -> str:
    """1:02:03, 4:05 or 7.5 s."""
    if seconds < 60:
        return f"{seconds:.1f} s"
    whole = round(seconds)
    hours, rest = divmod(whole, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def post_json(url: str, data: dict[str, Any], timeout: float) -> None:
    """POST `data` as JSON; raises on a connection error, a timeout or an HTTP error status."""
    request = urllib.request.Request(url, data=json.dumps(data).encode(), method="POST", headers={
        "Content-Type": "application/json", "User-Agent": f"asrd/{__version__}"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        response.read(64 * 1024)


def where(url: str) -> str:
    """scheme://host[:port] of a webhook, without the path, query or credentials it may carry."""
    parts = urllib.parse.urlsplit(url)
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{parts.hostname}{port}"


def _why(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, urllib.error.HTTPError):
        return f"HTTP {exc.code} {exc.reason}"
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    return f"{type(exc).__name__}: {exc}"


class Notifier:
    """`job_finished(job)` after a job is done or failed for good; `close()` at the daemon's stop."""

    def __init__(self, config: Callable[[], NotifyConfig], desktop: DesktopNotifier | None = None,
                 post: Post = post_json, max_queue: int = QUEUE_MAX):
        self._config = config  # read at each job, so a reloaded config (SIGHUP) applies
        self._desktop = desktop or DesktopNotifier()
        self._post = post
        self._queue: queue.Queue = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._said_no_desktop = False

    def job_finished(self, job: Job) -> None:
        """Queue the announcement of a done/failed job, if `notify.on` asks for it. Never blocks or raises."""
        try:
            config = self._config()
            if job.state not in config.on:
                return
            self._start()
            self._queue.put_nowait((summary(job), config.webhook, config.webhook_timeout_s))
        except queue.Full:
            log.warning("notify.failed", job_id=job.id, file=job.path,
                        reason=f"{QUEUE_MAX} announcements are waiting already; this one is dropped")
        except Exception as exc:  # noqa: BLE001 -- a bug here must not cost the job or the daemon
            log.warning("notify.failed", job_id=job.id, file=job.path, reason=f"{type(exc).__name__}: {exc}")

    def problem(self, event: str, where: str, reason: str) -> None:
        """Queue the announcement of a problem only the user can fix (asrd waits for it), under the
        same `notify.on: [failed]` switch as a failed recording. Never blocks or raises."""
        try:
            config = self._config()
            if "failed" not in config.on:
                return
            self._start()
            info = {"job_id": None, "file": where, "state": PROBLEM, "event": event, "reason": reason}
            self._queue.put_nowait((info, config.webhook, config.webhook_timeout_s))
        except Exception as exc:  # noqa: BLE001 -- a bug here must not cost the daemon
            log.warning("notify.failed", event=event, reason=f"{type(exc).__name__}: {exc}")

    def _start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._deliver_all, name="asrd-notify", daemon=True)
            self._thread.start()

    def close(self, timeout: float = CLOSE_WAIT_S) -> None:
        """Let what is queued go out for up to `timeout` s; a hung webhook does not hold the stop."""
        if self._thread is None:
            return
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(_STOP, timeout=timeout)  # behind what is queued
        except queue.Full:
            pass
        self._thread.join(max(0.0, deadline - time.monotonic()))
        self._thread = None

    def _deliver_all(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            self._deliver(*item)

    def _deliver(self, info: dict[str, Any], webhook: str | None, timeout: float) -> None:
        ids = {"job_id": info["job_id"], "file": info["file"]}
        if self._desktop.available:
            try:
                self._desktop.send(message(info))
                log.debug("notify.sent", channel="desktop", state=info["state"], **ids)
            except Exception as exc:  # noqa: BLE001 -- whatever it is, it is logged, never raised
                log.warning("notify.failed", channel="desktop", reason=f"{type(exc).__name__}: {exc}", **ids)
        elif not self._said_no_desktop:
            self._said_no_desktop = True
            log.debug("notify.unavailable", channel="desktop", reason="no osascript on PATH (not a Mac)")
        if webhook:
            try:
                self._post(webhook, info, timeout)
                log.debug("notify.sent", channel="webhook", webhook=where(webhook), state=info["state"], **ids)
            except Exception as exc:  # noqa: BLE001 -- whatever it is, it is logged, never raised
                log.warning("notify.failed", channel="webhook", webhook=where(webhook), reason=_why(exc, timeout),
                            **ids)
