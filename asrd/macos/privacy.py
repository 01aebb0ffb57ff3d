"""macOS privacy protection (TCC) as it meets a login agent: which folders it guards, and which
binary must be granted Full Disk Access for asrd to read them.

A launch agent gets EPERM, without any prompt, in the folders below until the binary is granted
access. TCC judges the executable image the process runs, not the command launchd was given: a
venv's `bin/python` is a symlink, and the python.org and Homebrew framework builds re-exec
`Python.framework/.../Resources/Python.app/Contents/MacOS/Python`. The kernel knows that image
(`proc_pidpath`); elsewhere the resolved base interpreter is the best answer.
"""

from __future__ import annotations

import ctypes
import errno
import os
import sys
from pathlib import Path

# under the home folder: what System Settings > Privacy & Security names them
HOME_PROTECTED = (
    ("Desktop", "the Desktop folder"),
    ("Documents", "the Documents folder"),
    ("Downloads", "the Downloads folder"),
    ("Library/Mobile Documents", "iCloud Drive"),
    ("Library/Group Containers/group.com.apple.VoiceMemos.shared", "the Voice Memos container"),
)
VOLUMES = Path("/Volumes")  # external (removable) and network volumes
PROC_PIDPATHINFO_MAXSIZE = 4 * 1024  # 4 * MAXPATHLEN, <libproc.h>
SETTINGS = "System Settings > Privacy & Security > Full Disk Access"


def protected_area(path: Path, home: Path | None = None) -> str | None:
    """What protected place `path` is in ("the Desktop folder", "iCloud Drive", ...), or None."""
    home = Path(home or Path.home())
    for candidate in {Path(os.path.abspath(path)), Path(os.path.realpath(path))}:
        for relative, name in HOME_PROTECTED:
            if candidate.is_relative_to(home / relative):
                return name
        parts = candidate.parts
        volume = Path(*parts[:3]) if len(parts) > 2 and Path(*parts[:2]) == VOLUMES else None
        if volume is not None and os.path.realpath(volume) != "/":  # /Volumes/Macintosh HD is the boot disk
            return f"the volume {parts[2]} (external and network volumes are protected)"
    return None


def binary_to_grant() -> Path:
    """The executable to add to Full Disk Access: the one this process runs as."""
    return _running_image() or Path(os.path.realpath(getattr(sys, "_base_executable", None) or sys.executable))


def grant_hint(binary: Path | None = None) -> str:
    binary = binary or binary_to_grant()
    return (f"grant Full Disk Access to {binary} ({SETTINGS}: +, then Cmd-Shift-G to type the path), "
            "or use an inbox outside the protected folders; asrd retries by itself "
            "(`asrd agent restart` if macOS only applies it to a new process)")


def _running_image() -> Path | None:
    """proc_pidpath(getpid()): the image the kernel runs for this process (macOS only)."""
    if sys.platform != "darwin":
        return None
    try:
        libc = ctypes.CDLL("/usr/lib/libSystem.B.dylib", use_errno=True)
        proc_pidpath = libc.proc_pidpath
    except (OSError, AttributeError):
        return None
    proc_pidpath.argtypes = [ctypes.c_int, ctypes.c_void_p, ctypes.c_uint32]
    proc_pidpath.restype = ctypes.c_int
    buffer = ctypes.create_string_buffer(PROC_PIDPATHINFO_MAXSIZE)
    length = proc_pidpath(os.getpid(), buffer, PROC_PIDPATHINFO_MAXSIZE)
    return Path(os.fsdecode(buffer.raw[:length])) if length > 0 else None


def explain(folder: Path, error: OSError | None = None, platform: str = sys.platform) -> dict[str, str]:
    """Log/doctor fields for a folder asrd may not read: on a Mac whether privacy protection is the
    likely cause (a protected place, or EPERM, TCC's answer) and the binary to grant; else chmod."""
    chmod = f"chmod u+rx '{folder}' (or give it to the user asrd runs as); asrd retries by itself"
    if error is not None and not isinstance(error, PermissionError):  # EIO, a share gone stale: not access
        return {"fix": "check that its volume is connected and healthy; asrd retries by itself"}
    if platform != "darwin":
        return {"fix": chmod}
    area = protected_area(folder)
    if area is None and not (error is not None and error.errno == errno.EPERM):
        return {"fix": chmod}
    binary = binary_to_grant()
    found = {"protected": area, "grant_full_disk_access_to": str(binary), "fix": grant_hint(binary)}
    return {key: value for key, value in found.items() if value is not None}
