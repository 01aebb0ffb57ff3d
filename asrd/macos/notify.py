"""macOS notifications through `osascript -e 'display notification "…" with title "asrd"'`.

Every piece of text goes into the script as an AppleScript string literal, escaped here: a file
name with quotes or backslashes must neither break the script nor run AppleScript of its own. The
argv goes to osascript directly, never through a shell. Where there is no osascript (Linux), there
are no desktop notifications.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable

TOOL = "osascript"
TITLE = "asrd"
TIMEOUT_S = 10.0
MAX_CHARS = 240  # Notification Center shows about two lines; the rest is in `asrd logs`


def applescript_string(text: str) -> str:
    """`text` as an AppleScript string literal: backslash and double quote escaped, line breaks and
    other control characters made spaces (a notification is one line)."""
    flat = "".join(" " if ord(ch) < 32 or ord(ch) == 127 else ch for ch in text)
    return '"' + flat.replace("\\", "\\\\").replace('"', '\\"') + '"'


def notification_script(message: str, title: str = TITLE) -> str:
    if len(message) > MAX_CHARS:
        message = message[:MAX_CHARS - 1] + "…"
    return f"display notification {applescript_string(message)} with title {applescript_string(title)}"


class DesktopNotifier:
    """Posts one notification per call; `available` is False where there is no osascript."""

    def __init__(self, which: Callable[[str], str | None] = shutil.which):
        self._which = which

    @property
    def available(self) -> bool:
        return self._which(TOOL) is not None

    def send(self, message: str) -> None:
        """Raises OSError/subprocess errors on failure (the dispatcher logs them)."""
        exe = self._which(TOOL)
        if exe is None:
            raise FileNotFoundError(f"no {TOOL} on PATH")
        result = subprocess.run([exe, "-e", notification_script(message)], stdin=subprocess.DEVNULL,
                                capture_output=True, text=True, timeout=TIMEOUT_S, check=False)
        if result.returncode != 0:
            raise OSError(f"{TOOL} exited with code {result.returncode}: {result.stderr.strip()[:300]}")
