"""Error records: always written somewhere (beside the recording, else the caller's fallback folder),
never an exception in the error path, and a retry command that is safe to paste into a shell."""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from asrd.error_record import error_record_path, remove_error_record, write_error_record

REPO = Path(__file__).resolve().parents[1]


def test_error_record_of_a_255_byte_name_is_written_beside_it(tmp_path: Path) -> None:
    source = tmp_path / ("会" * 83 + "ab.wav")
    source.write_bytes(b"x")
    path = write_error_record(source, "cannot decode", 3, 0)
    assert path == error_record_path(source) and path.parent == tmp_path
    assert len(path.name.encode()) <= 255 and path.name.endswith(".asrd-error.json")
    assert json.loads(path.read_text())["file"] == str(source)
    remove_error_record(source)
    assert sorted(os.listdir(tmp_path)) == [source.name]


def _fail_beside(monkeypatch, folder: Path, err: int) -> None:
    """Any file opened in `folder` fails with the real errno `err` (root ignores chmod, so a
    read-only folder cannot be made that way)."""
    real_open = os.open

    def failing_open(path, flags, mode=0o777, **kw):
        if Path(path).parent == folder:
            raise OSError(err, os.strerror(err), str(path))
        return real_open(path, flags, mode, **kw)

    monkeypatch.setattr(os, "open", failing_open)


def test_disk_full_beside_the_recording_goes_to_the_fallback_folder(tmp_path: Path, monkeypatch) -> None:
    inbox, errors = tmp_path / "inbox", tmp_path / "state" / "errors"
    source = inbox / "memo.m4a"
    inbox.mkdir()
    source.write_bytes(b"x")
    _fail_beside(monkeypatch, inbox, errno.ENOSPC)
    path = write_error_record(source, "engine crashed", 1, 3, fallback_dir=errors)
    assert path is not None and path.parent == errors and path.name.endswith(".asrd-error.json")
    record = json.loads(path.read_text())
    assert record["file"] == str(source) and record["reason"] == "engine crashed"
    remove_error_record(source, fallback_dir=errors)
    assert not path.exists()


def test_nowhere_to_write_returns_none_and_never_raises(tmp_path: Path, monkeypatch) -> None:
    source = tmp_path / "memo.m4a"
    source.write_bytes(b"x")
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the fallback folder should be")
    _fail_beside(monkeypatch, tmp_path, errno.EROFS)
    assert write_error_record(source, "bad", 1, 0, fallback_dir=blocker / "errors") is None
    assert write_error_record(source, "bad", 1, 0) is None
    remove_error_record(source, fallback_dir=blocker / "errors")  # nothing to remove: no exception


def test_read_only_mount_goes_to_the_fallback_folder(tmp_path: Path) -> None:
    """A real read-only filesystem (a tmpfs remounted ro in a private mount namespace of a child)."""
    if sys.platform != "linux" or os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("needs root and unshare to mount a read-only filesystem")
    inbox, errors = tmp_path / "inbox", tmp_path / "errors"
    inbox.mkdir()
    child = textwrap.dedent(
        f"""
        import subprocess, sys
        from pathlib import Path
        from asrd.error_record import write_error_record
        inbox = {str(inbox)!r}
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", inbox], check=True)
        Path(inbox, "memo.m4a").write_bytes(b"x")
        subprocess.run(["mount", "-o", "remount,ro", inbox], check=True)
        print(write_error_record(Path(inbox, "memo.m4a"), "bad", 1, 0, fallback_dir=Path({str(errors)!r})))
        """
    )
    probe = subprocess.run(["unshare", "-m", "--propagation", "private", "true"], capture_output=True)
    if probe.returncode != 0:
        pytest.skip("unshare -m is not permitted here")
    proc = subprocess.run(["unshare", "-m", "--propagation", "private", sys.executable, "-c", child],
                          env={**os.environ, "PYTHONPATH": str(REPO)}, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    written = Path(proc.stdout.strip())
    assert written.parent == errors
    assert json.loads(written.read_text())["file"] == str(inbox / "memo.m4a")


NASTY_NAMES = ["a$(touch PWNED).m4a", 'it\'s "quoted" `touch PWNED`.m4a', "new\nline $HOME;touch PWNED.m4a",
               "-dash.m4a", "tab\there 'and' \\back.m4a"]


@pytest.mark.parametrize("name", NASTY_NAMES)
def test_suggested_retry_command_is_safe_to_paste(tmp_path: Path, name: str) -> None:
    source = tmp_path / name
    source.write_bytes(b"x")
    retry = json.loads(write_error_record(source, "bad", 1, 0).read_text())["retry"]
    assert retry.startswith("asrd retry ")
    shell = 'asrd() { printf "%s\\0" "$@"; }\n' + retry
    out = subprocess.run(["bash", "-c", shell], cwd=tmp_path, capture_output=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split(b"\0")[:-1] == [b"retry", str(source).encode()]
    assert not (tmp_path / "PWNED").exists()
