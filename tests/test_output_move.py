"""A moved (or renamed) recording's transcripts follow it: move_outputs takes asrd's unedited outputs
to the recording's new place and name, and leaves edited or user files where they are."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

from asrd.manifest import Manifest
from asrd.output import write_outputs
from asrd.output_move import move_outputs
from tests.support.written import FMTS, listing, names, recording

REPO = Path(__file__).resolve().parents[1]


def _done_recording(tmp_path: Path) -> tuple[Manifest, Path, str, list[Path]]:
    inbox, manifest = tmp_path / "inbox", Manifest(tmp_path / "state")
    memo, t = recording(inbox / "memo.m4a", b"content A", "recording A")
    return manifest, memo, t.source.sha256, write_outputs(t, memo, FMTS, manifest)


def test_moved_recording_takes_its_unedited_transcripts_along(tmp_path: Path) -> None:
    manifest, memo, sha, outputs = _done_recording(tmp_path)
    before = {p.name: p.read_bytes() for p in outputs}
    (memo.parent / "memo.srt").write_text("my corrected subtitles\n")
    moved_to = memo.parent / "day1" / "memo.m4a"
    moved_to.parent.mkdir()
    memo.rename(moved_to)
    new = move_outputs(manifest, [str(p) for p in outputs], memo, moved_to, sha)
    day1 = moved_to.parent
    assert new == [day1 / "memo.txt", memo.parent / "memo.srt", day1 / "memo.json"]
    assert (day1 / "memo.txt").read_bytes() == before["memo.txt"]
    assert (memo.parent / "memo.srt").read_text() == "my corrected subtitles\n"  # edited: stays
    assert listing(day1) == ["memo.json", "memo.m4a", "memo.txt"]
    assert listing(memo.parent) == ["day1", "memo.srt"]
    assert manifest.owns(day1 / "memo.txt", moved_to, content_sha256=sha)
    assert manifest.lookup(memo.parent / "memo.txt") is None
    # asked again (a crash before the ledger recorded the move): the same answer, nothing moves
    assert move_outputs(manifest, [str(p) for p in outputs], memo, moved_to, sha) == new
    # a new recording under the old name now gets the plain names
    _, b = recording(memo, b"content B")
    assert names(write_outputs(b, memo, ["txt"], manifest)) == ["memo.txt"]


def test_moved_transcripts_never_replace_a_file_at_the_new_place(tmp_path: Path) -> None:
    manifest, memo, sha, outputs = _done_recording(tmp_path)
    day1 = memo.parent / "day1"
    day1.mkdir()
    (day1 / "memo.json").write_text("the user's own json\n")
    memo.rename(day1 / "memo.m4a")
    new = move_outputs(manifest, [str(p) for p in outputs], memo, day1 / "memo.m4a", sha)
    assert names(new) == ["memo.m4a.txt", "memo.m4a.srt", "memo.m4a.json"]  # the whole set moves on
    assert (day1 / "memo.json").read_text() == "the user's own json\n"


def test_rename_in_place_keeps_names_that_still_fit(tmp_path: Path) -> None:
    manifest, memo, sha, outputs = _done_recording(tmp_path)
    wav = memo.with_name("memo.wav")
    memo.rename(wav)
    assert move_outputs(manifest, [str(p) for p in outputs], memo, wav, sha) == outputs
    assert all(manifest.owns(p, wav, content_sha256=sha) for p in outputs)


def test_sigkill_midway_through_a_move_is_finished_by_the_next_call(tmp_path: Path) -> None:
    manifest, memo, sha, outputs = _done_recording(tmp_path)
    moved_to = memo.parent / "day1" / "memo.m4a"
    moved_to.parent.mkdir()
    memo.rename(moved_to)
    child = textwrap.dedent(
        f"""
        import os, signal
        from pathlib import Path
        import asrd.output_move as output_move
        from asrd.manifest import Manifest
        real_rename = output_move._rename

        def rename_then_die(src, dst):
            real_rename(src, dst)
            os.kill(os.getpid(), signal.SIGKILL)

        output_move._rename = rename_then_die
        output_move.move_outputs(Manifest(Path({str(manifest.state_dir)!r})), {[str(p) for p in outputs]!r},
                                 Path({str(memo)!r}), Path({str(moved_to)!r}), {sha!r})
        """
    )
    proc = subprocess.run([sys.executable, "-c", child], env={**os.environ, "PYTHONPATH": str(REPO)}, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    assert listing(moved_to.parent) == ["memo.m4a", "memo.txt"]  # killed after the first of three
    new = move_outputs(manifest, [str(p) for p in outputs], memo, moved_to, sha)
    assert new == [moved_to.parent / n for n in ("memo.txt", "memo.srt", "memo.json")]
    assert listing(memo.parent) == ["day1"]
    assert all(manifest.owns(p, moved_to, content_sha256=sha) for p in new)
    assert all(manifest.entry(p) is None for p in outputs)
    # and once more, with the old list the ledger may still hold: the same answer
    assert move_outputs(manifest, [str(p) for p in outputs], memo, moved_to, sha) == new
    assert all(manifest.entry(p).pending_sha256 is None for p in new)
