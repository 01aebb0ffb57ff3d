"""Keep FunASR's raw stdout prints and tqdm bars out of the terminal and the log's JSON lines.

Lines written to stdout/stderr inside `captured_output()` become `funasr.output` debug events.
"""

from __future__ import annotations

import contextlib
import io
import sys
from typing import Iterator

from asrd.logging import get_logger


class _LineLogger(io.TextIOBase):
    def __init__(self, stream: str):
        self._stream = stream
        self._buffer = ""
        self._log = get_logger("asrd.engine")

    def writable(self) -> bool:
        return True

    def write(self, text: str) -> int:
        self._buffer += text.replace("\r", "\n")
        *lines, self._buffer = self._buffer.split("\n")
        for line in lines:
            if line.strip():
                self._log.debug("funasr.output", stream=self._stream, line=line.strip()[:500])
        return len(text)

    def flush(self) -> None:
        if self._buffer.strip():
            self._log.debug("funasr.output", stream=self._stream, line=self._buffer.strip()[:500])
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
