"""Test-wide set-up: network guard everywhere, and a private HOME so no test touches the user's files."""

from __future__ import annotations

import os
import runpy
import signal
import socket
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
GUARD_DIR = ROOT / "tests" / "netguard"
FIXTURES = ROOT / "tests" / "fixtures"

# Every Python process started by the tests (asrd subprocesses, spawned engine children) gets the
# guard through PYTHONPATH; this process installs it directly.
os.environ["ASRD_NETGUARD"] = "1"
os.environ["PYTHONPATH"] = os.pathsep.join(
    p for p in (str(GUARD_DIR), str(ROOT), os.environ.get("PYTHONPATH", "")) if p
)
if not hasattr(socket, "NetworkBlocked"):
    runpy.run_path(str(GUARD_DIR / "sitecustomize.py"))

# Started in the background by a non-interactive shell (CI scripts, `… &`), pytest inherits SIGINT
# ignored, and so does every asrd it starts: a Ctrl-C test would then pass even with asrd's own
# handler gone. Behave as under a terminal (exec gives the children SIGINT's default back).
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

@pytest.fixture(autouse=True)
def private_home(tmp_path_factory, monkeypatch):
    """Point HOME and the XDG dirs at a temp folder: defaults never reach the real user's files."""
    home = tmp_path_factory.mktemp("home")
    monkeypatch.setenv("HOME", str(home))
    for var in ("XDG_CONFIG_HOME", "XDG_DATA_HOME", "XDG_STATE_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.delenv("ASRD_CONFIG", raising=False)
    return home


@pytest.fixture(autouse=True)
def isolated_logging():
    """A test that sets up logging (into its own temp folder) must not leave the next test writing
    there: the root logger's handlers, level and structlog's configuration are restored afterwards."""
    import logging

    import structlog

    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    config = structlog.get_config()
    yield
    for handler in list(root.handlers):
        if handler not in handlers:
            root.removeHandler(handler)
            handler.close()
    for handler in handlers:
        if handler not in root.handlers:
            root.addHandler(handler)
    root.setLevel(level)
    structlog.configure(**config)


@pytest.fixture(scope="session")
def tiny_models():
    """name -> folder of each tiny model, plus the real FSMN-VAD as "vad" (built once per run)."""
    from tests.support.tiny_models import tiny_model_dirs, vad_model_dir

    return {**tiny_model_dirs(), "vad": vad_model_dir()}


@pytest.fixture(scope="session")
def speech3():
    """The committed 3-utterance clip: its folder and known speech regions."""
    import json

    folder = FIXTURES / "audio"
    return folder, json.loads((folder / "speech3.json").read_text())


@pytest.fixture
def unprivileged_user(tiny_models):
    """An unprivileged user (created when the tests run as root) that can read the test models; its
    `home` is a fresh folder it owns. Start subjects with DaemonRun(..., user=unprivileged_user)."""
    import shutil

    from tests.support.unprivileged import unprivileged

    user = unprivileged(readable=sorted({Path(p).parent for p in tiny_models.values()}))
    yield user
    shutil.rmtree(user.home, ignore_errors=True)


@pytest.fixture
def webhook():
    """A factory of real HTTP servers on 127.0.0.1 (tests/support/webhook.py), all closed after the test."""
    from tests.support.webhook import Webhook

    made: list[Webhook] = []

    def make(**kwargs) -> Webhook:
        made.append(Webhook(**kwargs))
        return made[-1]

    yield make
    for hook in made:
        hook.close()


@pytest.fixture
def funasr_unpatched():
    """FunASR's own functions where asrd.engine.compat puts its drop-ins (an engine loaded earlier in
    this process put them there), for this test only."""
    from asrd.engine.compat import funasr_own

    with funasr_own():
        yield
