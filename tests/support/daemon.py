"""Run the real `asrd run` as a subprocess and follow its JSON log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from asrd.logview import snapshot
from tests.support.configs import write_config
from tests.support.unprivileged import Unprivileged


def log_events(log_file: Path) -> list[dict]:
    """The JSON log's complete lines as events. A line still being written has no newline yet (the
    logging stream's buffer can reach the file in two writes, and a look can fall between them): it
    is left for the next look: `asrd logs`' own snapshot of complete lines."""
    return [json.loads(line) for line in snapshot(Path(log_file))[0]]


class DaemonRun:
    def __init__(self, root: Path, hooks: dict | None = None, new_session: bool = False,
                 user: Unprivileged | None = None, env: dict[str, str] | None = None, **config: Any):
        """new_session: start it as the leader of its own process group, as a terminal, `timeout` or
        a service manager does, so a test can signal the whole group (daemon and engine) at once.
        user: run it as that unprivileged user (root is the file owner of `root`'s set-up otherwise).
        env: variables set for it over this process's (a PATH with fake Mac tools first)."""
        fast = {"watch": {"settle_s": 0.5, "rescan_s": 2}, "engine": {"retry_delay_s": 0.5}}
        for key, value in config.items():
            fast[key] = {**fast.get(key, {}), **value} if isinstance(value, dict) else value
        self.root = root
        self.config = write_config(root, **fast)
        self.inbox = root / "inbox"
        self.log_file = root / "logs" / "asrd.log"
        self.hooks = hooks or {}
        self.env = env or {}
        self.new_session = new_session
        self.user = user
        if user is not None:
            user.own(root)
        self.proc: subprocess.Popen | None = None

    def start(self) -> "DaemonRun":
        env = {**os.environ, **self.env, "ASRD_TEST_HOOKS": json.dumps(self.hooks)}
        as_user = {} if self.user is None else self.user.popen_kwargs()
        if self.user is not None:
            env = self.user.env(env)
        self.proc = subprocess.Popen([sys.executable, "-m", "asrd", "run", "--config", str(self.config)],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                                     start_new_session=self.new_session, **as_user)
        self.wait_for(lambda e: e["event"] == "daemon.started" and e.get("pid") == self.proc.pid, 60)
        return self

    def events(self) -> list[dict]:
        return log_events(self.log_file)

    def count(self, event: str, **match: Any) -> int:
        return sum(1 for e in self.events() if e["event"] == event and all(e.get(k) == v for k, v in match.items()))

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 120, n: int = 1) -> list[dict]:
        deadline = time.time() + timeout
        while True:
            found = [e for e in self.events() if predicate(e)]
            if len(found) >= n:
                return found
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}: {self.proc.stderr.read()[-3000:]}")
            if time.time() > deadline:
                raise AssertionError(f"timed out waiting; last events: {[e['event'] for e in self.events()[-15:]]}")
            time.sleep(0.2)

    def wait_until(self, condition: Callable[[], bool], timeout: float = 120) -> None:
        """Until `condition()` holds (a ledger state, a file on disk), while the daemon stays up."""
        deadline = time.time() + timeout
        while not condition():
            if self.proc is not None and self.proc.poll() is not None:
                raise AssertionError(f"daemon exited {self.proc.returncode}: {self.proc.stderr.read()[-3000:]}")
            if time.time() > deadline:
                raise AssertionError(f"timed out; last events: {[e['event'] for e in self.events()[-15:]]}")
            time.sleep(0.2)

    def wait_done(self, n: int, timeout: float = 180) -> list[dict]:
        return self.wait_for(lambda e: e["event"] == "job.done", timeout, n)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> tuple[int, float]:
        assert self.proc is not None
        started = time.time()
        self.proc.send_signal(sig)
        code = self.proc.wait(timeout=timeout)
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code, time.time() - started

    def __enter__(self) -> "DaemonRun":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
