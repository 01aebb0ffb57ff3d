"""`asrd config check | head -1`: a reader that goes away early ends the command quietly (exit 141,
as a shell reports a death by SIGPIPE), never with a BrokenPipeError traceback."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support.configs import write_config


@pytest.mark.parametrize("command", [["config", "check"], ["status", "--json"], ["status"], ["config", "path"],
                                     ["--help"]])
def test_a_reader_that_closed_the_pipe_ends_the_command_quietly(tmp_path, command):
    config = write_config(tmp_path)
    read_end, write_end = os.pipe()
    os.close(read_end)  # the reader is gone before the first line: `| head -0`, or head after its line
    try:
        result = subprocess.run([sys.executable, "-m", "asrd", *command, "--config", str(config)],
                                stdout=write_end, stderr=subprocess.PIPE, text=True, timeout=60)
    finally:
        os.close(write_end)
    assert result.stderr == ""
    assert result.returncode == (0 if command == ["--help"] else 141)  # argparse ignores a failed --help itself

