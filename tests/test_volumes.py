"""Which file system an inbox is on: Linux's /proc/self/mountinfo read for real (and fabricated for an
nfs mount this machine lacks), macOS's statfs struct and symbol checked with the libc call faked."""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

import pytest

from asrd import volumes
from asrd.macos import statfs
from asrd.volumes import Volume, from_mountinfo, volume_of

MOUNTINFO = """\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
30 22 0:40 / /home/ana/Transcribe rw,relatime shared:9 - nfs4 nas:/export/memos rw,vers=4.2
31 22 0:41 / /mnt/my\\040share rw,relatime - cifs //nas/share rw,vers=3.1.1
32 31 0:42 / /mnt/my\\040share rw,relatime - fuse.sshfs ana@host:/x rw
33 22 0:43 / /home/ana/Transcribe-local rw - ext4 /dev/sdb1 rw
"""


@pytest.mark.skipif(not Path("/proc/self/mountinfo").exists(), reason="Linux only")
def test_a_real_tmpfs_is_found_and_is_not_a_network_volume():
    shm = next((line.split()[4] for line in Path("/proc/self/mountinfo").read_text().splitlines()
                if line.split(" - ")[1].startswith("tmpfs ") and os.access(line.split()[4], os.W_OK)), None)
    assert shm is not None, "no writable tmpfs on this machine"
    inbox = Path(shm) / f"asrd-test-{os.getpid()}" / "inbox"
    inbox.mkdir(parents=True)
    try:
        found = volume_of(inbox)
        assert found == Volume("tmpfs", shm) and not found.network
        assert volume_of(inbox / "not yet" / "made") == found  # its nearest existing folder decides
    finally:
        inbox.rmdir()
        inbox.parent.rmdir()


def test_mountinfo_longest_mount_point_wins_and_network_types_are_known():
    assert from_mountinfo("/home/ana/Transcribe/inbox", MOUNTINFO) == Volume("nfs4", "/home/ana/Transcribe")
    assert from_mountinfo("/home/ana/Transcribe/inbox", MOUNTINFO).network
    assert from_mountinfo("/home/ana/Transcribe", MOUNTINFO).fstype == "nfs4"
    local = from_mountinfo("/home/ana/Transcribe-local/inbox", MOUNTINFO)  # a prefix by text, not by folder
    assert local == Volume("ext4", "/home/ana/Transcribe-local") and not local.network
    assert from_mountinfo("/home/ana/other", MOUNTINFO) == Volume("ext4", "/")
    on_top = from_mountinfo("/mnt/my share/inbox", MOUNTINFO)  # escaped space; the later mount is on top
    assert on_top == Volume("fuse.sshfs", "/mnt/my share") and on_top.network
    for name in ("smbfs", "nfs", "afpfs", "webdav", "cifs", "smb3"):
        assert Volume(name, "/").network
    for name in ("apfs", "hfs", "ext4", "btrfs", "tmpfs", "msdos", "exfat"):
        assert not Volume(name, "/").network


def test_the_macos_statfs_struct_matches_the_64_bit_inode_header():
    offsets = {name: getattr(statfs.StatFS, name).offset for name, _ in statfs.StatFS._fields_}
    assert offsets["f_fsid"] == 48 and offsets["f_owner"] == 56 and offsets["f_fstypename"] == 72
    assert offsets["f_mntonname"] == 88 and offsets["f_mntfromname"] == 1112 and offsets["f_flags_ext"] == 2136
    assert ctypes.sizeof(statfs.StatFS) == 2168


@pytest.mark.parametrize(("machine", "symbol"), [("arm64", "statfs"), ("x86_64", "statfs$INODE64")])
def test_the_macos_path_calls_the_right_statfs_and_reads_the_type(monkeypatch, tmp_path, machine, symbol):
    called = []

    def fake_statfs(path: bytes, result) -> int:  # fills the struct as the kernel would for an SMB share
        called.append(path)
        out = result._obj
        out.f_fstypename = b"smbfs"
        out.f_mntonname = b"/Volumes/Memos"
        return 0

    class FakeLibSystem:
        def __getattr__(self, name: str):
            assert name == symbol
            return fake_statfs

    loaded = []
    monkeypatch.setattr(statfs.ctypes, "CDLL", lambda name, **kw: loaded.append(name) or FakeLibSystem())
    monkeypatch.setattr(statfs.platform, "machine", lambda: machine)
    monkeypatch.setattr(volumes.sys, "platform", "darwin")
    found = volume_of(tmp_path)
    assert found == Volume("smbfs", "/Volumes/Memos") and found.network
    assert called == [os.fsencode(tmp_path)] and loaded == ["/usr/lib/libSystem.B.dylib"]


def test_a_failing_statfs_means_unknown_not_a_crash(monkeypatch, tmp_path):
    def failing(path: bytes, result) -> int:
        ctypes.set_errno(5)
        return -1

    monkeypatch.setattr(statfs, "_statfs_function", lambda: failing)
    monkeypatch.setattr(volumes.sys, "platform", "darwin")
    assert volume_of(tmp_path) is None
