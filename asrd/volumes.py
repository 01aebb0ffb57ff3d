"""Which file system an inbox is on, and whether it sends file events for changes made elsewhere.

Network file systems (and FUSE or VM shares) report no FSEvents/inotify events for files another
machine writes, so the watcher polls them instead. macOS asks statfs (asrd/macos/statfs.py); Linux
reads /proc/self/mountinfo, where the longest mount point containing the path is its file system.
"""

from __future__ import annotations

import os
import re
import sys
from dataclasses import dataclass
from pathlib import Path

MOUNTINFO = Path("/proc/self/mountinfo")
# macOS: smbfs, nfs, afpfs, webdav, ftp, macFUSE (sshfs and friends); Linux: nfs, cifs/smb3, FUSE
# remotes, cluster file systems, and shares of a VM's host (9p, vboxsf, virtiofs)
NETWORK_TYPES = frozenset({
    "smbfs", "nfs", "nfs4", "afpfs", "webdav", "ftp", "macfuse", "osxfuse",
    "cifs", "smb3", "smb2", "ncpfs", "afs", "coda", "ceph", "glusterfs", "lustre", "gpfs", "beegfs", "davfs",
    "9p", "vboxsf", "virtiofs", "vmhgfs", "fuse.sshfs", "fuse.rclone", "fuse.s3fs", "fuse.gcsfuse",
    "fuse.glusterfs", "fuse.cephfs", "fuse.davfs2", "fuse.vmhgfs-fuse", "fuse.goofys", "fuse.juicefs",
})


@dataclass(frozen=True)
class Volume:
    fstype: str
    mount_point: str

    @property
    def network(self) -> bool:
        return self.fstype.lower() in NETWORK_TYPES


def volume_of(path: Path) -> Volume | None:
    """The file system holding `path` (or its nearest existing parent); None if it cannot be told."""
    path = _existing(Path(path))
    try:
        if sys.platform == "darwin":
            from asrd.macos.statfs import fstypename

            return Volume(*fstypename(path))
        if MOUNTINFO.exists():
            return from_mountinfo(os.path.realpath(path), MOUNTINFO.read_text(errors="replace"))
    except OSError:
        return None
    return None


def from_mountinfo(path: str, text: str) -> Volume | None:
    """The mount of /proc/self/mountinfo `text` whose mount point is the longest prefix of `path`
    (a later line over the same point is mounted on top, so it wins a tie)."""
    best: Volume | None = None
    for line in text.splitlines():
        fields = line.split()
        if "-" not in fields[6:]:
            continue
        mount_point = _unescape(fields[4])
        fstype = fields[fields.index("-", 6) + 1]
        if _under(path, mount_point) and (best is None or len(mount_point) >= len(best.mount_point)):
            best = Volume(fstype, mount_point)
    return best


def _under(path: str, mount_point: str) -> bool:
    return mount_point == "/" or path == mount_point or path.startswith(mount_point.rstrip("/") + "/")


def _unescape(field: str) -> str:
    r"""mountinfo writes space, tab, newline and backslash in octal (\040 ...)."""
    return re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), field)


def _existing(path: Path) -> Path:
    path = path.expanduser().absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path
