"""Run the subject of a permission test as an unprivileged user.

As root, chmod proves nothing: root reads a 0000 file and writes into a 0500 folder. CI runs as root,
so `.ci/run` creates the user `asrd-test` (ASRD_TEST_USER overrides the name) and the permission
tests start their `asrd` subprocesses as that user, in a folder it owns. Run as an ordinary user,
the tests are already unprivileged and run as themselves.

Every test asserts its precondition with `cannot_read`/`cannot_write` (run as that user), so a
set-up that silently gave the user access fails the test instead of passing it.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

USER = os.environ.get("ASRD_TEST_USER", "asrd-test")


@dataclass(frozen=True)
class Unprivileged:
    uid: int
    gid: int
    home: Path  # a folder the user owns: put the test's inbox, state and logs under it
    switch: bool = field(default=False)  # True when the tests run as root and must drop to uid

    def popen_kwargs(self) -> dict:
        """Keyword arguments for subprocess.Popen/run that start the child as this user."""
        if not self.switch:
            return {}
        return {"user": self.uid, "group": self.gid, "extra_groups": []}

    def env(self, base: dict[str, str] | None = None) -> dict[str, str]:
        env = dict(os.environ if base is None else base)
        env["HOME"] = str(self.home)
        return env

    def own(self, *paths: Path) -> None:
        """Give paths (recursively) to the user, as if it had created them."""
        if not self.switch:
            return
        for path in paths:
            for p in [Path(path), *(Path(path).rglob("*") if Path(path).is_dir() else [])]:
                os.lchown(p, self.uid, self.gid)

    def can(self, test: str, path: Path) -> bool:
        """`test -r|-w|-x path` run as the user: what it can do, whatever root could."""
        return subprocess.run(["test", test, str(path)], check=False, **self.popen_kwargs()).returncode == 0

    def cannot_read(self, path: Path) -> bool:
        return not self.can("-r", path)

    def cannot_write(self, path: Path) -> bool:
        return not self.can("-w", path)


def _ensure_user() -> pwd.struct_passwd:
    try:
        return pwd.getpwnam(USER)
    except KeyError:
        subprocess.run(["useradd", "--no-create-home", "--shell", "/usr/sbin/nologin", USER], check=True)
        return pwd.getpwnam(USER)


def _open_for_reading(path: Path) -> None:
    """Let others read the test's inputs (tiny models live in a 0700 temp dir)."""
    for p in [path, *path.rglob("*")]:
        mode = p.lstat().st_mode
        if stat.S_ISLNK(mode):
            continue
        extra = stat.S_IROTH | stat.S_IRGRP | ((stat.S_IXOTH | stat.S_IXGRP) if stat.S_ISDIR(mode) else 0)
        os.chmod(p, stat.S_IMODE(mode) | extra)


def unprivileged(readable: list[Path] = ()) -> Unprivileged:
    """The unprivileged user, with a fresh home under /tmp; `readable` folders are opened to it."""
    for folder in readable:
        _open_for_reading(Path(folder))
        for parent in Path(folder).resolve().parents:
            if parent != Path("/") and os.geteuid() == 0:
                os.chmod(parent, stat.S_IMODE(parent.stat().st_mode) | stat.S_IXOTH)
    home = Path(tempfile.mkdtemp(prefix="asrd-unpriv-"))
    if os.geteuid() != 0:
        return Unprivileged(os.getuid(), os.getgid(), home)
    entry = _ensure_user()
    user = Unprivileged(entry.pw_uid, entry.pw_gid, home, switch=True)
    user.own(home)
    probe = subprocess.run([sys.executable, "-c", "import asrd, watchdog, yaml"], check=False, capture_output=True,
                           text=True, env=user.env(), **user.popen_kwargs())
    if probe.returncode != 0:
        raise RuntimeError(f"the test user {USER} cannot run {sys.executable} with asrd and funasr "
                           f"(is the checkout readable by others? .ci/run opens it): {probe.stderr[-800:]}")
    return user
