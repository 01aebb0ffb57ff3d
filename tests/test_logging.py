"""Structured logs: JSON lines with event/level/timestamp, stdlib records routed in, text kept private."""

from __future__ import annotations

import json
import logging
import stat
import subprocess
import sys
import warnings
from datetime import datetime

import pytest

from asrd.logging import get_logger, setup_logging


@pytest.fixture
def log_file(tmp_path):
    path = tmp_path / "logs" / "asrd.log"
    setup_logging(path, level="info", console=False)
    yield path
    logging.getLogger().handlers.clear()


def lines(path):
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_structlog_and_stdlib_records_become_json_lines(log_file):
    get_logger("asrd.test").info("job.done", job_id=7, file="/in/memo.m4a", rtf=0.05)
    logging.getLogger("funasr").warning("some %s message", "library")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("deprecated thing", UserWarning)
    records = lines(log_file)
    assert len(records) == 3
    for record in records:
        assert {"event", "level", "timestamp"} <= record.keys()
        assert datetime.fromisoformat(record["timestamp"].replace("Z", "+00:00")).utcoffset().total_seconds() == 0
    done, lib, warn = records
    assert done == {**done, "event": "job.done", "level": "info", "job_id": 7, "file": "/in/memo.m4a"}
    assert lib["event"] == "funasr.log" and lib["message"] == "some library message" and lib["level"] == "warning"
    assert "deprecated thing" in warn["message"]


def test_transcript_text_only_at_debug(tmp_path):
    path = tmp_path / "a.log"
    setup_logging(path, level="debug", console=False)
    log = get_logger("asrd.test")
    log.info("job.done", text="secret words here")
    log.debug("job.text", text="secret words here")
    info, debug = lines(path)
    assert "secret" not in json.dumps(info) and info["text"] == "<17 chars hidden>"
    assert debug["text"] == "secret words here"
    logging.getLogger().handlers.clear()


def test_rotation_by_size_and_private_mode(tmp_path):
    path = tmp_path / "r.log"
    setup_logging(path, level="info", console=False, max_bytes=2000, backups=2)
    log = get_logger("asrd.test")
    for i in range(100):
        log.info("file.seen", file=f"/inbox/{i:04d}.m4a", i=i)
    rotated = sorted(tmp_path.glob("r.log*"))
    assert [p.name for p in rotated] == ["r.log", "r.log.1", "r.log.2"]
    for p in rotated:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        assert all("event" in json.loads(line) for line in p.read_text().splitlines())
    logging.getLogger().handlers.clear()


def test_cli_import_and_help_never_import_torch_or_funasr():
    code = (
        "import sys, asrd.cli, asrd.config, asrd.logging, asrd.transcript, asrd.output\n"
        "try:\n    asrd.cli.main(['--help'])\nexcept SystemExit:\n    pass\n"
        "bad = [m for m in ('torch', 'funasr', 'av', 'soxr') if m in sys.modules]\n"
        "print('IMPORTED', bad)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert "IMPORTED []" in out.stdout, out.stdout + out.stderr


def test_funasr_chatter_through_the_root_logger_is_debug_only(log_file):
    """FunASR's own modules log "trust_remote_code: False" etc. at warning on every load."""
    def record(level, message):
        return logging.LogRecord("root", level, "/site-packages/funasr/auto/auto_model.py", 1, message, None, None)

    root = logging.getLogger()
    root.handle(record(logging.WARNING, "trust_remote_code: False"))
    root.handle(record(logging.ERROR, "a real failure"))
    logging.getLogger("elsewhere").warning("kept")
    assert [(r["event"], r["level"], r["message"]) for r in lines(log_file)] == [
        ("root.log", "error", "a real failure"), ("elsewhere.log", "warning", "kept")]


def test_console_shows_its_level_and_the_events_it_is_also_asked_for(tmp_path, capsys):
    setup_logging(None, "info", console=True, console_level="warning", console_also=("models.",))
    try:
        get_logger("asrd.test").info("job.started", file="/in/a.wav")
        get_logger("asrd.models").info("models.download_progress", fraction=0.5)
        get_logger("asrd.test").warning("job.failed", reason="bad")
        err = capsys.readouterr().err
    finally:
        logging.getLogger().handlers.clear()
    assert "models.download_progress" in err and "job.failed" in err and "job.started" not in err
