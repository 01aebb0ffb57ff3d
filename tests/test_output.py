"""Outputs: formats parse and follow the cue rules, writes are atomic and private, names never clobber."""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import sqlite3
import stat
import subprocess
import sys
import textwrap
import time
from dataclasses import replace
from datetime import timedelta
from pathlib import Path

import pytest
import srt
import webvtt

import asrd.output as output
from asrd.hashing import sha256_file
from asrd.manifest import Manifest
from asrd.output import (
    CUE_MAX_MS,
    FORMATS,
    build_cues,
    choose_base,
    cleanup_temp_files,
    render_json,
    render_srt,
    render_txt,
    render_vtt,
    write_atomic,
    write_outputs,
)
from asrd.recover import recover_outputs
from asrd.transcript import Segment, SourceInfo, Transcript
from tests.support.processes import dead_pid

REPO = Path(__file__).resolve().parents[1]

LONG_TEXT = " ".join(
    f"sentence{i} has some words in it and keeps going until the speaker is done" for i in range(6)
)[:400]
CJK_TEXT = (
    "我们今天讨论一下这个项目的进展情况，然后再决定下一步应该怎么做。"
    "我觉得我们需要更多的时间来完成测试工作，以及准备发布说明。"
)


def make_transcript(segments: list[Segment], path: str = "/in/memo.m4a") -> Transcript:
    return Transcript(
        source=SourceInfo(path=path, size=1234, sha256="ab" * 32),
        segments=segments,
        language="en",
        model={"name": "test-model"},
        device="cpu",
        duration_s=60.0,
        processing_s=6.0,
    )


def hard_transcript(speakers: bool) -> Transcript:
    """A long 25 s / 400-char segment, a CJK segment without spaces, and a short one."""
    spk = (lambda s: s) if speakers else (lambda s: None)
    return make_transcript(
        [
            Segment(1.0, 26.0, LONG_TEXT, speaker=spk("0")),
            Segment(26.5, 40.0, CJK_TEXT, speaker=spk("1")),
            Segment(41.0, 42.5, "Thanks, bye.", speaker=spk("0")),
        ]
    )


# --------------------------------------------------------------------------- subtitles


def srt_cues(text: str) -> list[tuple[float, float, list[str]]]:
    return [
        (s.start.total_seconds(), s.end.total_seconds(), s.content.split("\n"))
        for s in srt.parse(text)
    ]


def _vtt_seconds(stamp: str) -> float:
    h, m, s = stamp.split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def vtt_cues(tmp_path: Path, text: str) -> list[tuple[float, float, list[str]]]:
    path = tmp_path / "check.vtt"
    path.write_text(text, encoding="utf-8")
    return [
        (_vtt_seconds(c.start), _vtt_seconds(c.end), c.text.split("\n"))
        for c in webvtt.read(str(path))
    ]


def check_cue_rules(cues, transcript: Transcript) -> None:
    assert cues
    for start, end, lines in cues:
        assert end > start
        assert end - start <= CUE_MAX_MS / 1000 + 1e-9
        assert 1 <= len(lines) <= 2
        assert all(0 < len(line) <= 42 for line in lines), lines
    for (_, prev_end, _), (start, _, _) in zip(cues, cues[1:]):
        assert prev_end <= start  # ordered, non-overlapping
    for seg in transcript.segments:
        inside = [c for c in cues if seg.start - 1e-6 <= c[0] and c[1] <= seg.end + 1e-6]
        assert inside[0][0] == pytest.approx(seg.start)
        assert inside[-1][1] == pytest.approx(seg.end)
        for (_, prev_end, _), (start, _, _) in zip(inside, inside[1:]):
            assert start == pytest.approx(prev_end)  # no holes inside a segment


def cue_words(cues, prefixes: bool) -> str:
    """Cue text back as one string, speaker prefixes removed, to check nothing was lost."""
    out = []
    for _, _, lines in cues:
        first = lines[0].split(": ", 1)[1] if prefixes else lines[0]
        out.extend([first, *lines[1:]])
    return "".join(out).replace(" ", "")


@pytest.mark.parametrize("speakers", [False, True])
def test_srt_parses_and_follows_cue_rules(speakers: bool) -> None:
    t = hard_transcript(speakers)
    cues = srt_cues(render_srt(t))
    check_cue_rules(cues, t)
    expected = "".join(s.text for s in t.segments).replace(" ", "")
    assert cue_words(cues, prefixes=speakers) == expected


@pytest.mark.parametrize("speakers", [False, True])
def test_vtt_parses_and_follows_cue_rules(tmp_path: Path, speakers: bool) -> None:
    t = hard_transcript(speakers)
    text = render_vtt(t)
    assert text.startswith("WEBVTT\n\n")
    cues = vtt_cues(tmp_path, text)
    check_cue_rules(cues, t)
    assert [c[:2] for c in cues] == [c[:2] for c in srt_cues(render_srt(t))]


def test_srt_format_details() -> None:
    text = render_srt(hard_transcript(speakers=True))
    blocks = text.rstrip("\n").split("\n\n")
    assert [b.split("\n")[0] for b in blocks] == [str(i) for i in range(1, len(blocks) + 1)]
    timing = re.compile(r"^\d{2}:\d{2}:\d{2},\d{3} --> \d{2}:\d{2}:\d{2},\d{3}$")
    assert all(timing.match(b.split("\n")[1]) for b in blocks)
    assert blocks[0].split("\n")[1].startswith("00:00:01,000 --> ")
    assert text.endswith("\n") and not text.endswith("\n\n")


def test_speaker_prefix_on_every_cue_first_line() -> None:
    cues = build_cues(hard_transcript(speakers=True))
    assert all(c.lines[0].startswith(("Speaker 1: ", "Speaker 2: ")) for c in cues)
    assert not any(line.startswith("Speaker") for c in cues for line in c.lines[1:])
    named = make_transcript([Segment(0, 2, "hello there", speaker="Alice")])
    assert build_cues(named)[0].lines == ["Alice: hello there"]


def test_cjk_cues_split_between_characters_not_before_punctuation() -> None:
    t = make_transcript([Segment(0.0, 14.0, CJK_TEXT)])
    cues = build_cues(t)
    assert len(cues) > 1
    lines = [line for c in cues for line in c.lines]
    assert "".join(lines) == CJK_TEXT
    assert not any(line[0] in "，。" for line in lines)
    assert all(len(line) <= 21 for line in lines)  # wide characters count double


def test_degenerate_segments_still_give_positive_ordered_cues() -> None:
    t = make_transcript(
        [
            Segment(5.0, 5.0, "zero length segment with quite a few words in it to split up"),
            Segment(4.0, 9.0, "overlapping speaker", speaker=None),
            Segment(8.0, 7.0, "end before start"),
            Segment(-0.2, 0.5, "negative start"),
            Segment(10.0, 11.0, "   "),
            Segment(12.0, 100.0, "x"),
        ]
    )
    cues = srt_cues(render_srt(t))
    for start, end, _ in cues:
        assert end > start
        assert end - start <= 7.0
    for (_, prev_end, _), (start, _, _) in zip(cues, cues[1:]):
        assert prev_end <= start


def test_url_longer_than_a_line_is_cut() -> None:
    url = "https://example.com/" + "a" * 80
    cues = build_cues(make_transcript([Segment(0, 3, f"see {url} now")]))
    assert all(len(line) <= 42 for c in cues for line in c.lines)
    assert "".join("".join(c.lines) for c in cues).replace(" ", "") == f"see{url}now"


def test_a_speakers_unbreakable_run_is_cut_into_full_lines_beside_and_below_the_label() -> None:
    """The label takes room on a cue's first line only: each piece is as wide as the label's line
    allows (31 of 42 columns), never one character narrower, and pieces are not merged past it."""
    url = "https://example.com/" + "a" * 80
    cues = build_cues(make_transcript([Segment(0, 3, url, speaker="0")]))
    assert [c.lines for c in cues] == [["Speaker 1: " + url[:31], url[31:62]], ["Speaker 1: " + url[62:93], url[93:]]]


def test_vtt_escapes_markup() -> None:
    text = render_vtt(make_transcript([Segment(0, 2, "a <b> & c --> d")]))
    assert "a &lt;b&gt; &amp; c --&gt; d" in text


def test_empty_transcript_renders() -> None:
    t = make_transcript([])
    assert render_srt(t) == ""
    assert render_vtt(t) == "WEBVTT\n"
    assert render_txt(t) == ""
    assert json.loads(render_json(t))["segments"] == []


# --------------------------------------------------------------------------- txt and json


def test_txt_without_speakers_is_one_paragraph_per_segment() -> None:
    t = make_transcript([Segment(0, 1, " Hello. "), Segment(1, 2, ""), Segment(2, 3, "World.")])
    assert render_txt(t) == "Hello.\n\nWorld.\n"


def test_txt_with_speakers_groups_turns_under_timed_headers() -> None:
    t = make_transcript(
        [
            Segment(1.0, 2.0, "Hi.", speaker="0"),
            Segment(2.0, 3.0, "How are you?", speaker="0"),
            Segment(83.4, 85.0, "Fine.", speaker="1"),
            Segment(3725.0, 3726.0, "Back to me.", speaker="0"),
            Segment(3727.0, 3728.0, "Who?", speaker="Alice"),
        ]
    )
    assert render_txt(t) == (
        "[00:00:01] Speaker 1:\nHi. How are you?\n\n"
        "[00:01:23] Speaker 2:\nFine.\n\n"
        "[01:02:05] Speaker 1:\nBack to me.\n\n"
        "[01:02:07] Alice:\nWho?\n"
    )


def test_txt_joins_cjk_segments_without_spaces() -> None:
    t = make_transcript([Segment(0, 1, "你好。", speaker="0"), Segment(1, 2, "谢谢。", speaker="0")])
    assert render_txt(t) == "[00:00:00] Speaker 1:\n你好。谢谢。\n"


def test_txt_keeps_the_space_between_korean_segments() -> None:
    """Hangul is written with spaces between words, unlike Chinese and Japanese."""
    t = make_transcript([Segment(0, 1, "네 알겠습니다", speaker="0"), Segment(1, 2, "감사합니다", speaker="0")])
    assert render_txt(t) == "[00:00:00] Speaker 1:\n네 알겠습니다 감사합니다\n"


def test_json_round_trips_with_contract_keys() -> None:
    t = hard_transcript(speakers=True)
    data = json.loads(render_json(t))
    for key in ("source", "text", "language", "segments", "model", "device"):
        assert key in data
    for key in ("duration_s", "processing_s", "rtf", "asrd_version"):
        assert key in data
    assert set(data["source"]) >= {"path", "size", "sha256"}
    assert all({"start", "end", "text", "speaker"} <= set(s) for s in data["segments"])
    assert Transcript.from_dict(data) == t
    assert CJK_TEXT in render_json(t)  # ensure_ascii=False


def test_unknown_format_is_named_with_the_allowed_list(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"'docx'.*txt.*srt.*vtt.*json"):
        write_outputs(make_transcript([]), tmp_path / "a.m4a", ["txt", "docx"], Manifest(tmp_path / "s"))


def test_formats_registry_keys() -> None:
    assert set(FORMATS) >= {"txt", "srt", "vtt", "json"}


# --------------------------------------------------------------------------- atomic writes


def temp_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.name.endswith(".asrd-tmp"))


def test_write_atomic_writes_private_file_via_dot_temp(tmp_path: Path, monkeypatch) -> None:
    seen = {}
    real_replace = output._replace

    def spy(src, dst):
        seen["tmp"], seen["mode"] = Path(src), stat.S_IMODE(os.stat(src).st_mode)
        real_replace(src, dst)

    monkeypatch.setattr(output, "_replace", spy)
    old = os.umask(0)
    try:
        write_atomic(tmp_path / "memo.txt", "héllo\n")
    finally:
        os.umask(old)
    assert (tmp_path / "memo.txt").read_bytes() == "héllo\n".encode()
    assert seen["tmp"].name.startswith(".memo.txt.") and seen["tmp"].name.endswith(".asrd-tmp")
    assert seen["mode"] == 0o600
    assert stat.S_IMODE(os.stat(tmp_path / "memo.txt").st_mode) == 0o600
    assert temp_files(tmp_path) == []


@pytest.mark.parametrize("existing", [None, b"the user's old content\n"])
def test_crash_before_replace_leaves_target_untouched(tmp_path: Path, monkeypatch, existing) -> None:
    target = tmp_path / "memo.txt"
    if existing is not None:
        target.write_bytes(existing)

    def boom(src, dst):
        raise OSError("simulated crash between write and replace")

    monkeypatch.setattr(output, "_replace", boom)
    with pytest.raises(OSError, match="simulated"):
        write_atomic(target, "new content " * 1000)
    if existing is None:
        assert not target.exists()
    else:
        assert target.read_bytes() == existing
    assert temp_files(tmp_path) == []


def test_failure_while_writing_removes_temp(tmp_path: Path, monkeypatch) -> None:
    def no_sync(fd):
        raise OSError("disk full")

    monkeypatch.setattr(output, "_full_fsync", no_sync)
    with pytest.raises(OSError, match="disk full"):
        write_atomic(tmp_path / "memo.txt", "text")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("existing", [None, b"old\n"])
def test_sigkill_before_replace_leaves_no_partial_target(tmp_path: Path, existing) -> None:
    target = tmp_path / "memo.srt"
    if existing is not None:
        target.write_bytes(existing)
    child = textwrap.dedent(
        f"""
        import os, signal, sys
        import asrd.output as output
        output._replace = lambda src, dst: os.kill(os.getpid(), signal.SIGKILL)
        output.write_atomic({str(target)!r}, "x" * 3_000_000)
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-c", child], env=env, cwd=tmp_path, timeout=60)
    assert proc.returncode == -signal.SIGKILL
    if existing is None:
        assert not target.exists()
    else:
        assert target.read_bytes() == existing
    leftovers = temp_files(tmp_path)
    assert len(leftovers) == 1 and leftovers[0].name.startswith(".memo.srt.")
    (tmp_path / ".hidden-user-file").write_text("keep")
    assert cleanup_temp_files(tmp_path, min_age_s=3600) == []
    assert cleanup_temp_files(tmp_path) == leftovers
    assert temp_files(tmp_path) == []
    assert (tmp_path / ".hidden-user-file").read_text() == "keep"


def test_a_temp_file_is_left_over_once_its_writer_is_gone_or_it_is_a_day_old(tmp_path: Path) -> None:
    """A live writer's temp file is kept (it is being written) until it is a day old: by then its pid
    was reused. One without a pid (an older asrd's) is kept for an hour."""
    now = time.time()
    live = tmp_path / f".memo.srt.{os.getpid()}-0a1b2c3d{output.TEMP_SUFFIX}"
    gone = tmp_path / f".memo.txt.{dead_pid()}-0a1b2c3d{output.TEMP_SUFFIX}"
    old_style = tmp_path / f".memo.json.0a1b2c3d{output.TEMP_SUFFIX}"
    ages = {live: 86400 - 0.5, gone: 1.0, old_style: 3600 - 0.5}
    for path, age in ages.items():
        path.write_text("partial")
        os.utime(path, (now - age, now - age))
    assert cleanup_temp_files(tmp_path) == [gone]
    for path, age in {live: 86400 + 0.5, old_style: 3600 + 0.5}.items():
        os.utime(path, (now - age, now - age))
    assert sorted(cleanup_temp_files(tmp_path)) == sorted([live, old_style])


def test_a_hidden_file_that_is_not_asrds_is_never_cleaned_up_however_old(tmp_path: Path) -> None:
    """Start-up cleanup removes asrd's own left-over temp files, never an owner's dot-file or a file
    that merely ends like one."""
    old = time.time() - 30 * 86400
    mine = [tmp_path / ".notes.txt", tmp_path / f"memo{output.TEMP_SUFFIX}", tmp_path / ".DS_Store"]
    leftover = tmp_path / f".memo.txt.0a1b2c3d{output.TEMP_SUFFIX}"
    for path in (*mine, leftover):
        path.write_text("x")
        os.utime(path, (old, old))
    assert cleanup_temp_files(tmp_path) == [leftover]
    assert all(p.exists() for p in mine)


# --------------------------------------------------------------------------- manifest


def test_manifest_db_is_private_and_shared(tmp_path: Path) -> None:
    old = os.umask(0o022)
    try:
        first, second = Manifest(tmp_path / "state"), Manifest(tmp_path / "state")
        out, src = tmp_path / "memo.txt", tmp_path / "memo.m4a"
        out.write_text("hi")
        first.record(out, sha256_file(out), src)
        reader = sqlite3.connect(first.path)  # keeps -wal/-shm around to be checked
        assert reader.execute("SELECT count(*) FROM outputs").fetchone() == (1,)
    finally:
        os.umask(old)
    files = sorted(p.name for p in (tmp_path / "state").iterdir())
    assert files == ["outputs.sqlite3", "outputs.sqlite3-shm", "outputs.sqlite3-wal"]
    for name in files:
        assert stat.S_IMODE((tmp_path / "state" / name).stat().st_mode) == 0o600, name
    assert stat.S_IMODE((tmp_path / "state").stat().st_mode) == 0o700
    reader.close()
    assert second.owns(out, src)
    assert not second.owns(out, tmp_path / "memo.wav")
    out.write_text("edited")
    assert not second.owns(out, src)
    out.unlink()
    assert second.owns(out, src)  # absent counts as still ours
    second.forget(out)
    assert not first.owns(out, src)


def test_manifest_two_processes_record_at_once(tmp_path: Path) -> None:
    child = textwrap.dedent(
        f"""
        import sys
        from pathlib import Path
        from asrd.manifest import Manifest
        m = Manifest(Path({str(tmp_path / "state")!r}))
        for i in range(150):
            m.record(f"/out/{{sys.argv[1]}}-{{i}}.txt", "0" * 64, "/in/memo.m4a")
        """
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [subprocess.Popen([sys.executable, "-c", child, tag], env=env) for tag in "ab"]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    with sqlite3.connect(tmp_path / "state" / "outputs.sqlite3") as conn:
        assert conn.execute("SELECT count(*) FROM outputs").fetchone() == (300,)
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_sha256_file_matches_hashlib(tmp_path: Path) -> None:
    data = os.urandom(3 * (1 << 20) + 17)
    (tmp_path / "blob").write_bytes(data)
    assert sha256_file(tmp_path / "blob") == hashlib.sha256(data).hexdigest()


# --------------------------------------------------------------------------- naming and write_outputs

ALL = ["txt", "srt", "vtt", "json"]


@pytest.fixture
def env(tmp_path: Path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    source = inbox / "memo.m4a"
    source.write_bytes(b"fake audio")
    return inbox, source, Manifest(tmp_path / "state"), hard_transcript(speakers=True)


def names(paths: list[Path]) -> list[str]:
    return [p.name for p in paths]


@pytest.mark.parametrize(("processing_s", "duration_s"), [(2.34449, 14.1), (0.0004, 0.0004), (61.23456, 7207.0)])
def test_a_json_output_read_back_renders_to_the_same_bytes(env, processing_s, duration_s) -> None:
    """How asrd knows the json beside a recording as its own, unedited, after its state was lost: the
    rtf must come from the rounded times the file holds (2.344 s / 14.1 s, not 2.34449 s / 14.1 s)."""
    inbox, source, manifest, t = env
    t = replace(t, source=replace(t.source, path=str(source)), processing_s=processing_s, duration_s=duration_s)
    written = write_outputs(t, source, ["json", "txt"], manifest)
    text = written[0].read_text(encoding="utf-8")
    assert output.render_json(Transcript.from_dict(json.loads(text))) == text
    found = recover_outputs(source, t.source.sha256, ["json", "txt"], Manifest(inbox.parent / "fresh-state"))
    assert found is not None and found.edited == [] and found.outputs == written


def test_the_names_tried_end_at_memo_9999(env) -> None:
    """The naming contract's last name; past it a write fails with "no free output name"."""
    inbox, source, _, _ = env
    bases = [p.name for p in output.candidate_bases(source, inbox)]
    assert bases[:4] == ["memo", "memo.m4a", "memo (2)", "memo (3)"]
    assert bases[-1] == "memo (9999)" and len(bases) == 10_000


def test_outputs_use_stem_and_are_private(env) -> None:
    inbox, source, manifest, t = env
    paths = write_outputs(t, source, ALL, manifest)
    assert names(paths) == ["memo.txt", "memo.srt", "memo.vtt", "memo.json"]
    assert all(p.is_absolute() and p.parent == inbox for p in paths)
    for p in paths:
        assert stat.S_IMODE(p.stat().st_mode) == 0o600
        assert manifest.owns(p, source)
    assert temp_files(inbox) == []


def test_users_stem_file_survives_and_full_name_is_used(env) -> None:
    inbox, source, manifest, t = env
    (inbox / "memo.txt").write_text("my notes")
    paths = write_outputs(t, source, ALL, manifest)
    assert names(paths) == ["memo.m4a.txt", "memo.m4a.srt", "memo.m4a.vtt", "memo.m4a.json"]
    assert (inbox / "memo.txt").read_text() == "my notes"


def test_users_files_at_both_names_give_numbered_base(env) -> None:
    inbox, source, manifest, t = env
    (inbox / "memo.txt").write_text("mine")
    (inbox / "memo.m4a.srt").write_text("mine too")
    paths = write_outputs(t, source, ["txt", "srt"], manifest)
    assert names(paths) == ["memo (2).txt", "memo (2).srt"]
    assert (inbox / "memo.txt").read_text() == "mine"
    assert (inbox / "memo.m4a.srt").read_text() == "mine too"


def test_rerun_for_same_source_reuses_its_base(env) -> None:
    inbox, source, manifest, t = env
    (inbox / "memo.txt").write_text("mine")
    first = write_outputs(t, source, ALL, manifest)
    t.segments[0].text = "A different result on the second run."
    second = write_outputs(t, source, ALL, manifest)
    third = write_outputs(t, source, ALL, manifest)
    assert first == second == third
    assert "A different result" in (inbox / "memo.m4a.txt").read_text()
    assert sorted(p.name for p in inbox.iterdir()) == sorted(
        ["memo.m4a", "memo.txt", *names(first)]
    )


def test_edited_output_survives_redo(env) -> None:
    inbox, source, manifest, t = env
    write_outputs(t, source, ALL, manifest)
    (inbox / "memo.txt").write_text("I fixed the names by hand")
    paths = write_outputs(t, source, ALL, manifest)
    assert names(paths) == ["memo.m4a.txt", "memo.m4a.srt", "memo.m4a.vtt", "memo.m4a.json"]
    assert (inbox / "memo.txt").read_text() == "I fixed the names by hand"


def test_other_source_with_same_stem_is_not_overwritten(env) -> None:
    inbox, source, manifest, t = env
    wav = inbox / "memo.wav"
    wav.write_bytes(b"other audio")
    first = write_outputs(t, source, ALL, manifest)
    before = {p: p.read_bytes() for p in first}
    other = write_outputs(hard_transcript(speakers=False), wav, ALL, manifest)
    assert names(other) == ["memo.wav.txt", "memo.wav.srt", "memo.wav.vtt", "memo.wav.json"]
    assert {p: p.read_bytes() for p in first} == before
    assert write_outputs(t, source, ALL, manifest) == first


def test_any_taken_format_moves_the_whole_set(env) -> None:
    inbox, source, manifest, t = env
    (inbox / "memo.json").write_text("{}")
    assert choose_base(source, ["txt"], manifest) == inbox / "memo"
    assert choose_base(source, ["txt", "json"], manifest) == inbox / "memo.m4a"


def test_source_itself_is_never_an_output(tmp_path: Path) -> None:
    source = tmp_path / "x.txt"
    source.write_text("not audio")
    paths = write_outputs(make_transcript([Segment(0, 1, "hi")]), source, ["txt"], Manifest(tmp_path / "s"))
    assert names(paths) == ["x.txt.txt"]
    assert source.read_text() == "not audio"


def test_directory_or_symlink_in_the_way_is_not_free(env, tmp_path: Path) -> None:
    inbox, source, manifest, t = env
    (inbox / "memo.txt").mkdir()
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    (inbox / "memo.m4a.txt").symlink_to(outside)
    assert names(write_outputs(t, source, ["txt"], manifest)) == ["memo (2).txt"]
    assert outside.read_text() == "keep"


def test_out_dir(env, tmp_path: Path) -> None:
    _, source, manifest, t = env
    out = tmp_path / "elsewhere" / "sub"
    paths = write_outputs(t, source, ["txt", "srt"], manifest, out_dir=out)
    assert [p.parent for p in paths] == [out, out]
    assert names(paths) == ["memo.txt", "memo.srt"]
    assert choose_base(source, ["txt", "srt"], manifest, out_dir=out) == out / "memo"


def test_srt_file_written_by_write_outputs_parses(env) -> None:
    inbox, source, manifest, t = env
    (path,) = write_outputs(t, source, ["srt"], manifest)
    subs = list(srt.parse(path.read_text(encoding="utf-8")))
    assert subs[0].index == 1 and subs[0].start == timedelta(seconds=1)


def test_an_output_name_that_is_the_recording_itself_is_never_taken(env) -> None:
    """On a case-insensitive volume `memo.TXT` and `memo.txt` are one file; here a hard link plays
    that part: a name that *is* the recording is not free, whoever's manifest says what."""
    inbox, source, manifest, _ = env
    os.link(source, inbox / "memo.txt")
    assert choose_base(source, ["txt"], manifest) == inbox / "memo.m4a"
    assert source.read_bytes() == (inbox / "memo.txt").read_bytes()


def test_times_an_engine_got_wrong_render_as_zero_not_a_crash() -> None:
    text = render_srt(make_transcript([Segment(float("nan"), 1.0, "a"), Segment(2.0, float("inf"), "b")]))
    starts = [start for start, _, _ in srt_cues(text)]
    assert starts[0] == 0.0 and len(starts) == 2


def test_an_overlong_speaker_name_is_shortened_to_leave_room_for_the_words() -> None:
    name = "Dr. Maximiliane Featherstonehaugh-Cholmondeley"
    cues = build_cues(make_transcript([Segment(0, 2, "hello there", speaker=name), Segment(2, 4, "and you")]))
    room = output.LINE_MAX - output.MIN_TEXT_WIDTH - len(": ")
    assert cues[0].lines[0] == f"{name[: room - 1]}…: hello there"
    assert cues[0].lines[0] == "Dr. Maximiliane Feather…: hello there"  # 16 of the 42 columns left for words
    assert cues[-1].lines[0] == "and you"  # a segment with no speaker gets no prefix


def test_a_speaker_name_exactly_as_wide_as_its_room_is_kept_whole() -> None:
    room = output.LINE_MAX - output.MIN_TEXT_WIDTH - len(": ")
    name = "N" * room
    assert build_cues(make_transcript([Segment(0, 2, "hi", speaker=name)]))[0].lines[0] == f"{name}: hi"


def test_lines_that_start_with_a_speaker_still_fit_the_line_width() -> None:
    """A word too long for a line is cut to what is left beside the `Speaker N: ` prefix."""
    url = "https://example.com/" + "a" * 50
    cues = build_cues(make_transcript([Segment(0, 6, url, speaker="0"), Segment(6, 12, "ok", speaker="1")]))
    assert all(len(line) <= output.LINE_MAX for c in cues for line in c.lines)
    assert cues[0].lines[0].startswith("Speaker 1: https://") and len(cues[0].lines[0]) == output.LINE_MAX


def test_a_long_segments_time_is_shared_by_characters_the_space_after_each_word_counted() -> None:
    """20 nine-letter words over 19.9 s: each word and its space is 10 of the 199 characters, so
    each ends a whole second later than the one before, and a cue holds the 7 words of its 7 s."""
    text = " ".join(["abcdefghi"] * 20)
    cues = build_cues(make_transcript([Segment(0.0, 19.9, text)]))
    assert [(c.start_ms, c.end_ms) for c in cues] == [(0, 7000), (7000, 14000), (14000, 19900)]
    assert [len(" ".join(c.lines).split()) for c in cues] == [7, 7, 6]


def test_an_opening_bracket_never_ends_a_line() -> None:
    """「 belongs with the words after it: where a line would end on it, it moves to the next."""
    text = "あ" * 20 + "「" + "い" * 10 + "」"
    lines = [line for c in build_cues(make_transcript([Segment(0.0, 6.0, text)])) for line in c.lines]
    assert "".join(lines) == text and lines[0] == "あ" * 20 and lines[1].startswith("「い")


def test_the_first_and_last_characters_of_each_no_space_script_break_anywhere() -> None:
    edges = "\u3000\u303f\u3040\u30ff\u31f0\u31ff\u3400\u4dbf\u4e00\u9fff\uf900\ufaff\uff00\uffef"
    edges += "\U00020000\U0003ffff"  # written out: the table itself is what is checked
    assert [c for c in edges if not output._breaks_anywhere(c)] == []
    assert not output._breaks_anywhere("a") and output._breaks_anywhere("一")


def test_a_speaker_turn_joins_its_segments_with_a_space_except_between_two_cjk_characters() -> None:
    texts = ["OK 好", "的", "我们", "用Zoom", "review the plan", "好的"]
    t = make_transcript([Segment(i, i + 1.0, text, speaker="0") for i, text in enumerate(texts)])
    assert render_txt(t).splitlines()[1] == "OK 好的我们用Zoom review the plan 好的"


def test_latin_letters_between_cjk_characters_are_kept_in_subtitles() -> None:
    t = make_transcript([Segment(0.0, 3.0, "我们用Zoom开会")])
    [(_, _, lines)] = srt_cues(render_srt(t))
    assert "".join(lines) == "我们用Zoom开会"


def test_a_line_exactly_as_wide_as_the_limit_is_not_wrapped() -> None:
    text = "exactly forty-two characters fit one line"  # 41
    text += "!"
    assert len(text) == output.LINE_MAX
    [(_, _, lines)] = srt_cues(render_srt(make_transcript([Segment(0.0, 3.0, text)])))
    assert lines == [text]


def test_two_speakers_starting_together_each_get_a_cue_of_positive_length() -> None:
    t = make_transcript([Segment(1.0, 3.0, "First voice.", speaker="0"),
                         Segment(1.0, 2.0, "Second voice.", speaker="1")])
    cues = srt_cues(render_srt(t))
    assert len(cues) == 2 and all(end > start for start, end, _ in cues)
    assert cues[0][1] <= cues[1][0]  # trimmed so they do not overlap


def test_the_json_layout_is_pinned_so_outputs_of_an_older_asrd_still_read_back_as_its_own() -> None:
    """After a lost state, asrd takes a json back as its own only if it renders to the same bytes:
    a change of layout between versions would make every older json look edited by its owner."""
    text = render_json(make_transcript([Segment(0.0, 1.5, "你好 there")]))
    lines = text.splitlines()
    assert lines[0] == "{" and lines[1].startswith('  "') and not lines[1].startswith('   ')  # two spaces
    assert '"text": "你好 there"' in text and text.endswith("}\n")  # UTF-8, not \\u escapes


def test_subtitle_times_past_an_hour_read_as_hours_minutes_seconds_and_milliseconds(tmp_path: Path) -> None:
    t = make_transcript([Segment(3725.25, 3727.5, "An hour in.")])
    assert "01:02:05,250 --> 01:02:07,500" in render_srt(t)
    assert "01:02:05.250 --> 01:02:07.500" in render_vtt(t)


def test_a_segment_that_ends_where_it_starts_gets_the_shortest_cue_not_a_zero_one() -> None:
    [(start, end, lines)] = srt_cues(render_srt(make_transcript([Segment(5.0, 5.0, "Hm.")])))
    assert (start, round(end - start, 3), lines) == (5.0, 0.001, ["Hm."])
