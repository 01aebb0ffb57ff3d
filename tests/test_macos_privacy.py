"""The binary macOS privacy protection must be told about: the image the process runs, never a
venv's symlink. The Mac's proc_pidpath is faked; the fallback is checked for real."""

from __future__ import annotations

import ctypes
import os
import sys
from pathlib import Path

from asrd.macos import privacy

FRAMEWORK_APP = "/opt/homebrew/Cellar/python@3.12/3.12.7/Frameworks/Python.framework/Versions/3.12/" \
                "Resources/Python.app/Contents/MacOS/Python"


def test_off_a_mac_it_is_the_resolved_base_interpreter():
    binary = privacy.binary_to_grant()
    assert binary == Path(os.path.realpath(sys._base_executable)) and not binary.is_symlink()
    assert binary.is_file() and os.access(binary, os.X_OK)


def test_on_a_mac_it_is_the_image_the_kernel_runs(monkeypatch):
    asked = []

    def proc_pidpath(pid: int, buffer: int, size: int) -> int:  # as libproc fills it
        asked.append((pid, size))
        ctypes.memmove(buffer, FRAMEWORK_APP.encode(), len(FRAMEWORK_APP))
        return len(FRAMEWORK_APP)

    class FakeLibSystem:
        def __init__(self, name: str, **_: object):
            assert name == "/usr/lib/libSystem.B.dylib"
            self.proc_pidpath = ctypes.CFUNCTYPE(ctypes.c_int, ctypes.c_int, ctypes.c_void_p,
                                                 ctypes.c_uint32)(proc_pidpath)

    monkeypatch.setattr(privacy.sys, "platform", "darwin")
    monkeypatch.setattr(privacy.ctypes, "CDLL", FakeLibSystem)
    assert privacy.binary_to_grant() == Path(FRAMEWORK_APP)
    assert asked == [(os.getpid(), privacy.PROC_PIDPATHINFO_MAXSIZE)]


def test_eperm_on_a_mac_points_at_full_disk_access_even_outside_the_known_folders(monkeypatch, tmp_path):
    monkeypatch.setattr(privacy, "binary_to_grant", lambda: Path("/usr/local/bin/python3.12"))
    tcc = privacy.explain(tmp_path / "inbox", PermissionError(1, "Operation not permitted"), platform="darwin")
    assert tcc["grant_full_disk_access_to"] == "/usr/local/bin/python3.12" and "protected" not in tcc
    assert tcc["fix"].startswith("grant Full Disk Access to /usr/local/bin/python3.12")
    mode = privacy.explain(tmp_path / "inbox", PermissionError(13, "Permission denied"), platform="darwin")
    assert mode == {"fix": f"chmod u+rx '{tmp_path / 'inbox'}' (or give it to the user asrd runs as); "
                           "asrd retries by itself"}
    volume = privacy.explain(Path("/Volumes/Memos/inbox"), PermissionError(13, "Permission denied"), platform="darwin")
    assert volume["protected"].startswith("the volume Memos") and "grant_full_disk_access_to" in volume
    assert privacy.explain(Path("/Volumes/Memos/inbox"), None, platform="linux")["fix"].startswith("chmod")
    stale = privacy.explain(Path("/Volumes/Memos/inbox"), OSError(5, "Input/output error"), platform="darwin")
    assert stale == {"fix": "check that its volume is connected and healthy; asrd retries by itself"}
