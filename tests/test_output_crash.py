"""A SIGKILL between an output's rename and its manifest row costs nothing: the next write for the
same recording finds the file to be asrd's own and writes one set, at the original names."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from asrd.manifest import Manifest
from asrd.output import cleanup_temp_files, render_json, write_outputs
from tests.support.written import FMTS, listing, names, recording, temp_files

REPO = Path(__file__).resolve().parents[1]


def test_sigkill_right_after_the_second_rename_leaves_one_set_after_the_redo(tmp_path: Path) -> None:
    inbox, state = tmp_path / "inbox", tmp_path / "state"
    memo, t = recording(inbox / "memo.m4a", b"audio", "the only words")
    saved = tmp_path / "transcript.json"
    saved.write_text(render_json(t))
    child = textwrap.dedent(
        f"""
        import json, os, signal
        from pathlib import Path
        import asrd.output as output
        from asrd.manifest import Manifest
        from asrd.transcript import Transcript
        real_replace, renamed = output._replace, []

        def replace_then_die(src, dst):
            real_replace(src, dst)
            renamed.append(dst)
            if len(renamed) == 2:
                os.kill(os.getpid(), signal.SIGKILL)

        output._replace = replace_then_die
        t = Transcript.from_dict(json.loads(Path({str(saved)!r}).read_text()))
        output.write_outputs(t, Path({str(memo)!r}), {FMTS!r}, Manifest(Path({str(state)!r})))
        """
    )
    proc = subprocess.run([sys.executable, "-c", child], env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    [left] = temp_files(inbox)  # the third file's data, written before the first rename
    assert left.name.startswith(".memo.json.")
    assert [n for n in listing(inbox) if n != left.name] == ["memo.m4a", "memo.srt", "memo.txt"]  # two of three
    assert cleanup_temp_files(inbox) == [left]  # its writer is dead: what the daemon's start removes

    paths = write_outputs(t, memo, FMTS, Manifest(state))
    assert names(paths) == ["memo.txt", "memo.srt", "memo.json"]
    assert listing(inbox) == ["memo.json", "memo.m4a", "memo.srt", "memo.txt"]  # one set, no temp files
    assert all(Manifest(state).owns(p, memo, content_sha256=t.source.sha256) for p in paths)
