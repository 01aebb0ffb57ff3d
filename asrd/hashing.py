"""Content hashes: one place for how asrd fingerprints files (outputs, and the daemon's content keys)."""

from __future__ import annotations

import errno
import hashlib
import os
import stat

CHUNK_BYTES = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file, read in chunks so recordings of any size stay out of memory.

    Opened non-blocking and refused unless it is a regular file: a FIFO swapped in under a recording's
    name after its stat would otherwise block the reader (the daemon) for good.
    """
    digest = hashlib.sha256()
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise OSError(errno.EINVAL, "not a regular file", str(path))
    with os.fdopen(fd, "rb") as f:
        while chunk := f.read(CHUNK_BYTES):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex sha256 of bytes already in memory (what was just written), to avoid re-reading a file."""
    return hashlib.sha256(data).hexdigest()
