"""Keep FunASR's raw stdout prints and tqdm bars out of the terminal and the log's JSON lines.

Lines written to stdout/stderr inside `captured_output()` become `funasr.output` debug events.
"""

from __future__ import annotations

import contextlib
import io
import logging
import sys
from typing import Iterator

# stdlib, not structlog: structlog's unconfigured default prints to sys.stdout, i.e. back into us.
_log = logging.getLogger("funasr.output")


class _LineLogger(io.TextIOBase):
    def __init__(self, stream: str):
        self._stream = stream
        self._buffer = ""
        self._busy = False

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text.replace("\r", "\n")
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            self._emit(line)
        return len(text)

    def _emit(self, line: str) -> None:
        if line.strip() and not self._busy:  # a handler writing to us must not loop
            self._busy = True
            try:
                _log.debug("%s: %s", self._stream, line.strip()[:500])
            finally:
                self._busy = False

    def flush(self) -> None:
        self._emit(self._buffer)
        self._buffer = ""


@contextlib.contextmanager
def captured_output() -> Iterator[None]:
    out, err = _LineLogger("stdout"), _LineLogger("stderr")
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            yield
        finally:
            out.flush()
            err.flush()
            sys.stdout.flush()
