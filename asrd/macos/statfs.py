"""The file system type of a path on macOS: statfs(2)'s f_fstypename ("apfs", "smbfs", ...).

The struct is the 64-bit-inode `struct statfs` of <sys/mount.h>, the only one on arm64; on x86_64 the
plain `statfs` symbol still fills the old 32-bit-inode layout, so there the `statfs$INODE64` variant
is called, as the C headers do under _DARWIN_FEATURE_64_BIT_INODE.
"""

from __future__ import annotations

import ctypes
import os
import platform
from pathlib import Path

MFSTYPENAMELEN = 16
MAXPATHLEN = 1024


class StatFS(ctypes.Structure):
    _fields_ = [
        ("f_bsize", ctypes.c_uint32),
        ("f_iosize", ctypes.c_int32),
        ("f_blocks", ctypes.c_uint64),
        ("f_bfree", ctypes.c_uint64),
        ("f_bavail", ctypes.c_uint64),
        ("f_files", ctypes.c_uint64),
        ("f_ffree", ctypes.c_uint64),
        ("f_fsid", ctypes.c_int32 * 2),
        ("f_owner", ctypes.c_uint32),  # uid_t
        ("f_type", ctypes.c_uint32),
        ("f_flags", ctypes.c_uint32),
        ("f_fssubtype", ctypes.c_uint32),
        ("f_fstypename", ctypes.c_char * MFSTYPENAMELEN),
        ("f_mntonname", ctypes.c_char * MAXPATHLEN),
        ("f_mntfromname", ctypes.c_char * MAXPATHLEN),
        ("f_flags_ext", ctypes.c_uint32),
        ("f_reserved", ctypes.c_uint32 * 7),
    ]


assert ctypes.sizeof(StatFS) == 2168  # sizeof(struct statfs) on 64-bit macOS


def _statfs_function():
    libc = ctypes.CDLL("/usr/lib/libSystem.B.dylib", use_errno=True)
    name = "statfs$INODE64" if platform.machine() == "x86_64" else "statfs"
    function = getattr(libc, name)
    function.argtypes = [ctypes.c_char_p, ctypes.POINTER(StatFS)]
    function.restype = ctypes.c_int
    return function


def fstypename(path: Path) -> tuple[str, str]:
    """(type name, mount point) of the file system holding `path`; OSError if statfs fails."""
    result = StatFS()
    if _statfs_function()(os.fsencode(path), ctypes.byref(result)) != 0:
        errno = ctypes.get_errno()
        raise OSError(errno, os.strerror(errno), str(path))
    return result.f_fstypename.decode(errors="replace"), os.fsdecode(result.f_mntonname)
