"""The engine's memory on macOS: the process's physical footprint, as Activity Monitor's "Memory".

On Apple Silicon the GPU's buffers (MPS tensors, MPSGraph's compiled graphs: IOAccelerator memory)
are charged to the process but not to its RSS: RSS can read 1.4 GB while the footprint is 18 GB. The
kernel's figure is `ri_phys_footprint` of `proc_pid_rusage(pid, RUSAGE_INFO_V2, &info)` (libproc,
in libSystem), read here through ctypes. No torch: the daemon may call it too.
"""

from __future__ import annotations

import ctypes
import os
import sys
from typing import Any

RUSAGE_INFO_V2 = 2
LIBSYSTEM = "/usr/lib/libSystem.B.dylib"


class RusageInfoV2(ctypes.Structure):
    """`struct rusage_info_v2` of <sys/resource.h>, field for field."""

    _fields_ = [
        ("ri_uuid", ctypes.c_uint8 * 16),
        ("ri_user_time", ctypes.c_uint64),
        ("ri_system_time", ctypes.c_uint64),
        ("ri_pkg_idle_wkups", ctypes.c_uint64),
        ("ri_interrupt_wkups", ctypes.c_uint64),
        ("ri_pageins", ctypes.c_uint64),
        ("ri_wired_size", ctypes.c_uint64),
        ("ri_resident_size", ctypes.c_uint64),
        ("ri_phys_footprint", ctypes.c_uint64),
        ("ri_proc_start_abstime", ctypes.c_uint64),
        ("ri_proc_exit_abstime", ctypes.c_uint64),
        ("ri_child_user_time", ctypes.c_uint64),
        ("ri_child_system_time", ctypes.c_uint64),
        ("ri_child_pkg_idle_wkups", ctypes.c_uint64),
        ("ri_child_interrupt_wkups", ctypes.c_uint64),
        ("ri_child_pageins", ctypes.c_uint64),
        ("ri_child_elapsed_abstime", ctypes.c_uint64),
        ("ri_diskio_bytesread", ctypes.c_uint64),
        ("ri_diskio_byteswritten", ctypes.c_uint64),
    ]


PROTOTYPE = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_int, ctypes.POINTER(RusageInfoV2))
_function: Any = None


def proc_pid_rusage() -> Any:
    """libproc's `int proc_pid_rusage(int pid, int flavor, rusage_info_t *buffer)`, loaded once."""
    global _function
    if _function is None:
        function = ctypes.CDLL(LIBSYSTEM, use_errno=True).proc_pid_rusage
        function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.POINTER(RusageInfoV2)]
        function.restype = ctypes.c_int
        _function = function
    return _function


def phys_footprint(pid: int | None = None, platform: str = sys.platform) -> int | None:
    """Bytes of physical footprint of `pid` (this process by default); None off macOS or on error."""
    if platform != "darwin":
        return None
    info = RusageInfoV2()
    try:
        status = proc_pid_rusage()(os.getpid() if pid is None else pid, RUSAGE_INFO_V2, ctypes.byref(info))
    except (OSError, AttributeError):  # no libSystem, or no such function: not a Mac after all
        return None
    return int(info.ri_phys_footprint) if status == 0 else None
