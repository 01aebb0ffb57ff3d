"""Transcript outputs: render (txt, srt, vtt, json, md) and write them beside the recording.

Writes are atomic (temp file + rename, fsynced) and private (0600). A path is only overwritten when
the manifest says it is asrd's own unedited output for the same source, so user files always survive.
Adding a format is one function plus one entry in FORMATS (its key is also the file extension).
"""

from __future__ import annotations

import fcntl
import json
import math
import os
import re
import secrets
import time
import unicodedata
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path

from asrd.faults import crash_point, disk_full_point
from asrd.hashing import sha256_bytes
from asrd.manifest import Manifest, path_key
from asrd.names import NAME_MAX_BYTES, byte_len, cut_bytes, fit_name, name_max
from asrd.transcript import Segment, Transcript, speaker_turns

LINE_MAX = 42  # characters per subtitle line (wide CJK characters count as 2)
LINES_PER_CUE = 2
CUE_MAX_MS = 7000
MIN_CUE_MS = 1  # never a zero/negative-duration cue
MIN_TEXT_WIDTH = 16  # room a speaker prefix must leave on a cue's first line
TEMP_SUFFIX = ".asrd-tmp"
MAX_NUMBERED_BASE = 9999
WRITE_ATTEMPTS = 3

# --------------------------------------------------------------------------- speakers and time


def speaker_label(speaker: str) -> str:
    """Engines number speakers from "0"; people count from 1. Other labels are shown as given."""
    s = speaker.strip()
    return f"Speaker {int(s) + 1}" if s.isdecimal() else speaker


def _ms(seconds: float) -> int:
    """Seconds to whole milliseconds, clamped at 0 (engines occasionally emit tiny negatives/NaN)."""
    if not math.isfinite(seconds):
        return 0
    return max(0, int(round(seconds * 1000)))


def _clock(ms: int, sep: str) -> str:
    """HH:MM:SS<sep>mmm: SRT wants ',' before the milliseconds, WebVTT '.'."""
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, rem = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{rem:03d}"


def _hms(ms: int) -> str:
    """HH:MM:SS for txt headers (whole seconds are enough to find the place)."""
    h, rem = divmod(ms // 1000, 3600)
    return f"{h:02d}:{rem // 60:02d}:{rem % 60:02d}"


# --------------------------------------------------------------------------- rich tags

QUIET_TAGS = frozenset({"NEUTRAL", "EMO_UNKNOWN", "Speech", "Event_UNK"})  # the usual case: noise if shown


def _tag_prefix(seg: Segment) -> str:
    """`[HAPPY] [Laughter] ` from SenseVoice's emotion and events (the neutral, plain-speech ones left out)."""
    tags = [seg.emotion] if seg.emotion else []
    tags += seg.events
    return "".join(f"[{tag}] " for tag in tags if tag not in QUIET_TAGS)


def display_segments(transcript: Transcript) -> list[Segment]:
    """The segments as shown in txt/srt/vtt/md: with `model.rich_tags` (carried in
    transcript.model["rich_tags"]) their tags lead the text. json keeps the fields instead."""
    if not transcript.model.get("rich_tags"):
        return list(transcript.segments)
    return [replace(s, text=_tag_prefix(s) + s.text.strip()) if s.text.strip() else s for s in transcript.segments]


# --------------------------------------------------------------------------- text measuring

_NO_SPACE_RANGES = (
    (0x3000, 0x303F),  # CJK symbols and punctuation
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x31F0, 0x31FF),  # katakana extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF00, 0xFFEF),  # full/half-width forms
    (0x20000, 0x3FFFF),  # CJK extensions B+
)
_NO_SPACE_FLOOR = min(lo for lo, _ in _NO_SPACE_RANGES)  # below it, no range needs looking at


def _breaks_anywhere(char: str) -> bool:
    """Scripts written without spaces (Chinese, Japanese) may wrap between any two characters."""
    cp = ord(char)
    return cp >= _NO_SPACE_FLOOR and any(lo <= cp <= hi for lo, hi in _NO_SPACE_RANGES)


def text_width(text: str) -> int:
    """Columns a player needs: wide CJK characters take two. Never less than len(text)."""
    return sum(2 if unicodedata.east_asian_width(c) in ("W", "F") else 1 for c in text)


def _join_texts(texts: Sequence[str]) -> str:
    """Join segment texts with a space, except between two CJK characters (no spaces there)."""
    out = ""
    for text in texts:
        if out and not (_breaks_anywhere(out[-1]) and _breaks_anywhere(text[0])):
            out += " "
        out += text
    return out


# --------------------------------------------------------------------------- cue building


@dataclass
class Cue:
    """One subtitle on screen: at most LINES_PER_CUE lines of at most LINE_MAX characters."""

    start_ms: int
    end_ms: int
    lines: list[str]


@dataclass
class _Unit:
    """An unbreakable piece of text and what joins it to the previous piece (" " or "")."""

    text: str
    sep: str


def _is_closing(piece: str) -> bool:
    return all(unicodedata.category(c) in ("Pe", "Pf", "Po") for c in piece)


def _is_opening(piece: str) -> bool:
    return unicodedata.category(piece[-1]) in ("Ps", "Pi")


def _split_word(word: str) -> list[str]:
    """Split a space-free word between CJK characters, keeping punctuation with its neighbour."""
    pieces: list[str] = []
    run = ""
    for char in word:
        if _breaks_anywhere(char):
            if run:
                pieces.append(run)
                run = ""
            pieces.append(char)
        else:
            run += char
    if run:
        pieces.append(run)
    glued: list[str] = []
    for piece in pieces:
        if glued and (_is_closing(piece) or _is_opening(glued[-1])):
            glued[-1] += piece
        else:
            glued.append(piece)
    return glued


def _hard_split(piece: str, width: int) -> list[str]:
    """Cut a piece wider than a line (a URL, a long unspaced run) into line-sized chunks."""
    if text_width(piece) <= width:
        return [piece] if piece else []
    chunks, chunk, used = [], "", 0
    for char in piece:
        char_width = text_width(char)
        if chunk and used + char_width > width:
            chunks.append(chunk)
            chunk, used = "", 0
        chunk += char
        used += char_width
    return chunks + [chunk] if chunk else chunks


def _units(text: str, width: int) -> list[_Unit]:
    """The text as breakable units, each no wider than `width`."""
    units: list[_Unit] = []
    for word in text.split():
        for i, piece in enumerate(_split_word(word)):
            for j, chunk in enumerate(_hard_split(piece, width)):
                units.append(_Unit(chunk, " " if units and i == 0 and j == 0 else ""))
    return units


def _cue_prefix(speaker: str | None) -> str:
    """`Speaker N: ` for a cue's first line; an overlong label is shortened to leave room for text."""
    if speaker is None:
        return ""
    label = speaker_label(speaker)
    room = LINE_MAX - MIN_TEXT_WIDTH - len(": ")
    if text_width(label) > room:
        while text_width(label + "…") > room:
            label = label[:-1]
        label += "…"
    return f"{label}: "


def _segment_cues(seg: Segment, prefix: str) -> list[Cue]:
    """Cues for one segment, its time shared out in proportion to text length."""
    units = _units(seg.text, LINE_MAX - text_width(prefix))
    if not units:
        return []
    bounds, offset = [], 0  # bounds[i]: text offset where unit i's share of time ends
    for i, unit in enumerate(units):
        offset += len(unit.text) + (len(units[i + 1].sep) if i + 1 < len(units) else 0)
        bounds.append(offset)
    start_ms = _ms(seg.start)
    span = max(0, _ms(seg.end) - start_ms)

    def at(off: int) -> int:
        return start_ms + round(span * off / offset)

    cues, i = [], 0
    while i < len(units):
        begin = at(bounds[i - 1]) if i else start_ms
        lines, j = [prefix + units[i].text], i
        while j + 1 < len(units) and at(bounds[j + 1]) - begin <= CUE_MAX_MS:
            nxt = units[j + 1]
            if text_width(lines[-1] + nxt.sep + nxt.text) <= LINE_MAX:
                lines[-1] += nxt.sep + nxt.text
            elif len(lines) < LINES_PER_CUE:
                lines.append(nxt.text)
            else:
                break
            j += 1
        cues.append(Cue(begin, min(at(bounds[j]), begin + CUE_MAX_MS), lines))
        i = j + 1
    return cues


def _fix_timing(cues: list[Cue]) -> list[Cue]:
    """Order cues, trim overlaps (overlapping speakers), and give every cue a positive duration."""
    fixed: list[Cue] = []
    for cue in sorted(cues, key=lambda c: c.start_ms):
        if fixed and cue.start_ms < fixed[-1].end_ms:
            prev = fixed[-1]
            prev.end_ms = max(prev.start_ms + MIN_CUE_MS, cue.start_ms)
            cue.start_ms = prev.end_ms
        cue.end_ms = max(cue.end_ms, cue.start_ms + MIN_CUE_MS)
        fixed.append(cue)
    return fixed


def build_cues(transcript: Transcript) -> list[Cue]:
    """Subtitle cues shared by srt and vtt: ≤42 chars/line, ≤2 lines, ≤7 s, ordered, no overlap."""
    with_speakers = bool(transcript.speakers)
    cues: list[Cue] = []
    for seg in sorted(display_segments(transcript), key=lambda s: (s.start, s.end)):
        cues.extend(_segment_cues(seg, _cue_prefix(seg.speaker) if with_speakers else ""))
    return _fix_timing(cues)


# --------------------------------------------------------------------------- renderers


def render_txt(transcript: Transcript) -> str:
    """Paragraph per segment; with speakers, paragraph per speaker turn under a timed header."""
    segments = [s for s in display_segments(transcript) if s.text.strip()]
    if not transcript.speakers:
        paragraphs = [s.text.strip() for s in segments]
    else:
        paragraphs = [_turn_paragraph(turn) for turn in speaker_turns(segments)]
    return "\n\n".join(paragraphs) + "\n" if paragraphs else ""


def _turn_paragraph(turn: list[Segment]) -> str:
    """`[HH:MM:SS] Speaker N:` then the turn's text (no name when the engine gave none)."""
    header = f"[{_hms(_ms(turn[0].start))}]"
    if turn[0].speaker is not None:
        header += f" {speaker_label(turn[0].speaker)}:"
    return header + "\n" + _join_texts([s.text.strip() for s in turn])


def render_srt(transcript: Transcript) -> str:
    """SubRip: numbered cues, `HH:MM:SS,mmm --> HH:MM:SS,mmm`, blank line between cues."""
    blocks = [
        f"{n}\n{_clock(c.start_ms, ',')} --> {_clock(c.end_ms, ',')}\n"
        + "\n".join(line.replace("-->", "->") for line in c.lines)
        + "\n"
        for n, c in enumerate(build_cues(transcript), 1)
    ]
    return "\n".join(blocks)


def _vtt_escape(line: str) -> str:
    """WebVTT cue text is markup: &, < and > must be escaped (this also defuses '-->')."""
    return line.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def render_vtt(transcript: Transcript) -> str:
    """WebVTT; speakers as a visible `Speaker N: ` prefix (players hide <v> voice names)."""
    blocks = [
        f"{_clock(c.start_ms, '.')} --> {_clock(c.end_ms, '.')}\n"
        + "\n".join(_vtt_escape(line) for line in c.lines)
        + "\n"
        for c in build_cues(transcript)
    ]
    return "WEBVTT\n" + "".join("\n" + b for b in blocks)


def render_json(transcript: Transcript) -> str:
    """Everything asrd knows, in the stable keys of Transcript.to_dict."""
    return json.dumps(transcript.to_dict(), ensure_ascii=False, indent=2) + "\n"


_MD_SPECIAL = str.maketrans({c: "\\" + c for c in "\\`*_[]<>#|"})
_now = datetime.now  # tests pin the "Transcribed" date


_MD_LINE_START = re.compile(r"^(\d+)([.)])(\s)|^([-+=])")


def _md_escape(text: str) -> str:
    """Transcript words are text, never markup: escape what Markdown would act on (inline marks,
    and a list or heading marker at the start: "1. ", "- ")."""
    return _MD_LINE_START.sub(lambda m: f"{m[1]}\\{m[2]}{m[3]}" if m[1] else f"\\{m[4]}", text.translate(_MD_SPECIAL))


def _md_model(model: dict) -> str | None:
    """`preset (asr model)`, or whichever of the two is known."""
    preset, asr = model.get("preset"), model.get("asr") or model.get("name")
    if preset and asr:
        return f"{preset} ({asr})"
    return preset or asr


def _md_header(transcript: Transcript) -> list[str]:
    rows = [("Transcribed", _now().strftime("%Y-%m-%d %H:%M")),
            ("Duration", _hms(_ms(transcript.duration_s))),
            ("Language", transcript.language),
            ("Model", _md_model(transcript.model)),
            ("Speakers", ", ".join(speaker_label(s) for s in transcript.speakers))]
    title = f"# {_md_escape(Path(transcript.source.path).name)}"
    return [title, "", *(f"- **{name}:** {_md_escape(str(value))}" for name, value in rows if value)]


def _md_turn(turn: list[Segment]) -> str:
    """`**Speaker N** [HH:MM:SS]` and the turn's text on the next line (one rendered paragraph)."""
    who = speaker_label(turn[0].speaker) if turn[0].speaker is not None else "Unknown speaker"
    return f"**{_md_escape(who)}** [{_hms(_ms(turn[0].start))}]\n" + _md_escape(
        _join_texts([s.text.strip() for s in turn]))


def render_md(transcript: Transcript) -> str:
    """Readable Markdown: a header (file, date, duration, model, speakers), then a paragraph per
    speaker turn, or a paragraph per segment without speakers."""
    segments = [s for s in display_segments(transcript) if s.text.strip()]
    if transcript.speakers:
        paragraphs = [_md_turn(turn) for turn in speaker_turns(segments)]
    else:
        paragraphs = [_md_escape(s.text.strip()) for s in segments]
    return "\n".join(_md_header(transcript)) + "\n" + "".join("\n" + p + "\n" for p in paragraphs)


FORMATS: dict[str, Callable[[Transcript], str]] = {
    "txt": render_txt,
    "srt": render_srt,
    "vtt": render_vtt,
    "json": render_json,
    "md": render_md,
}


def check_formats(formats: Sequence[str]) -> list[str]:
    """Requested formats, lower-cased and de-duplicated; an unknown one is a ValueError."""
    checked: list[str] = []
    for fmt in formats:
        key = fmt.lower()
        if key not in FORMATS:
            raise ValueError(f"unknown output format {fmt!r}; allowed: {', '.join(FORMATS)}")
        if key not in checked:
            checked.append(key)
    return checked


def render(transcript: Transcript, fmt: str) -> str:
    """One format's text."""
    return FORMATS[check_formats([fmt])[0]](transcript)


# --------------------------------------------------------------------------- atomic, private writes

_replace = os.replace  # the temp -> target step; tests swap it to simulate a crash

# `.<target>.<pid>-<random>.asrd-tmp`; older asrd wrote `.<target>.<random>.asrd-tmp` (no pid)
_TEMP_WRITER = re.compile(r"\.(\d+)-[0-9a-f]+" + re.escape(TEMP_SUFFIX) + "$")
OLD_TEMP_MIN_AGE_S = 3600.0  # a temp file without a writer pid is only known to be left over once old
STALE_TEMP_S = 86400.0  # no write takes a day: the pid in such a name was reused by another process


def is_temp_file(name: str) -> bool:
    """asrd's in-progress files (`.<name>.<pid>-<random>.asrd-tmp`, or older ones without the pid):
    watchers ignore them."""
    return name.startswith(".") and name.endswith(TEMP_SUFFIX)


def temp_writer_pid(name: str) -> int | None:
    """The pid of the process that writes (or wrote) this temp file; None for an older asrd's name."""
    match = _TEMP_WRITER.search(name)
    return int(match[1]) if match else None


def _temp_name(target_name: str, name_max: int = NAME_MAX_BYTES) -> str:
    """`.<target>.<pid>-<random>.asrd-tmp`, the target part shortened to keep within NAME_MAX."""
    tail = f".{os.getpid()}-{secrets.token_hex(4)}{TEMP_SUFFIX}"
    return "." + cut_bytes(target_name, name_max - 1 - byte_len(tail)) + tail


def _open_temp(folder: Path, target_name: str) -> tuple[int, Path]:
    """A fresh temp file, created 0600 (never readable by others, even for a moment)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_NOFOLLOW", 0)
    limit = name_max(folder)
    for _ in range(100):
        tmp = folder / _temp_name(target_name, limit)
        try:
            fd = os.open(tmp, flags, 0o600)
        except FileExistsError:
            continue
        os.fchmod(fd, 0o600)  # the umask can only remove bits; make it exact
        return fd, tmp
    raise FileExistsError(f"no free temp name in {folder}")


def _full_fsync(fd: int) -> None:
    """On macOS fsync leaves data in the drive cache; F_FULLFSYNC really flushes it."""
    if hasattr(fcntl, "F_FULLFSYNC"):
        try:
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
            return
        except OSError:
            pass  # not supported by this filesystem (e.g. SMB): plain fsync
    os.fsync(fd)


def _fsync_dir(folder: Path) -> None:
    """Persist the rename itself; some filesystems refuse directory fsync, which is harmless."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def write_atomic(path: str | os.PathLike[str], text: str | bytes, *, durable: bool = True) -> None:
    """Replace `path` with `text` (UTF-8) so readers see the old file or the new one, never half.

    `durable=False` skips both flushes (a full flush is milliseconds on a Mac): only for files
    whose loss in a power cut costs nothing (rebuilt at start) or a recompute at most (a cache)."""
    path = Path(path)
    _write_replace(path, text.encode("utf-8") if isinstance(text, str) else text, durable)
    if durable:
        _fsync_dir(path.parent)


def _write_replace(path: Path, data: bytes, durable: bool = True) -> None:
    """Write a private temp file beside `path` (its data flushed when `durable`) and rename it over `path`."""
    tmp = _write_temp(path, data, _full_fsync if durable else None)
    try:
        _replace(tmp, path)
    except BaseException:
        _remove_temps([tmp])
        raise


def _write_temp(path: Path, data: bytes, sync: Callable[[int], None] | None) -> Path:
    """`data` in a fresh private temp file beside `path`, flushed by `sync` (none: left to the OS).

    On any error the temp file is removed."""
    fd, tmp = _open_temp(path.parent, path.name)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            if sync is not None:
                sync(f.fileno())
    except BaseException:
        _remove_temps([tmp])
        raise
    return tmp


def cleanup_temp_files(folder: str | os.PathLike[str], min_age_s: float = 0.0) -> list[Path]:
    """Remove temp files a crash left in `folder` (only those older than `min_age_s`).

    A temp file whose writer is alive is being written right now (an `asrd transcribe` beside the
    daemon) and is kept; one without a pid in its name (an older asrd's) only once it is an hour old.
    """
    removed: list[Path] = []
    now = time.time()
    try:
        entries = os.scandir(folder)
    except (FileNotFoundError, NotADirectoryError):
        return removed
    with entries:
        for entry in entries:
            if not is_temp_file(entry.name) or not entry.is_file(follow_symlinks=False):
                continue
            try:
                if _left_over(entry.name, now - entry.stat(follow_symlinks=False).st_mtime, min_age_s):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            except FileNotFoundError:
                pass
    return removed


def _left_over(name: str, age_s: float, min_age_s: float) -> bool:
    """Is this temp file left over by a writer that is gone?"""
    if age_s < min_age_s:
        return False
    pid = temp_writer_pid(name)
    if pid is None:
        return age_s >= OLD_TEMP_MIN_AGE_S
    return not _alive(pid) or age_s >= STALE_TEMP_S


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True  # another user's process: alive
    return True


# --------------------------------------------------------------------------- naming and writing

# The longest `.<fmt>` any format adds: every base leaves room for it, so one recording's set shares
# one base whichever formats are asked for.
_LONGEST_SUFFIX = max(byte_len(f".{fmt}") for fmt in FORMATS)
MAX_KEPT_EXTENSION = 16  # a shortened `<name>` base keeps the recording's extension up to this many bytes


def output_path(base: Path, fmt: str) -> Path:
    """`<base>.<fmt>` (appended, so a base like `memo.m4a` keeps its own dot)."""
    return base.with_name(f"{base.name}.{fmt}")


def candidate_bases(source: Path, folder: Path) -> Iterator[Path]:
    """`<stem>`, `<full name>`, `<stem> (2)`, `<stem> (3)`, … in this order (the naming contract).

    Each fits the folder's NAME_MAX with any format's extension: a stem too long for that is cut
    and marked `…` (`<cut stem>…`, `<cut stem>….m4a`, `<cut stem>… (2)`), so the order stays the same.
    """
    room = name_max(folder) - _LONGEST_SUFFIX
    stem, extension = source.stem, source.suffix
    yield folder / fit_name(stem, room)
    if extension:
        kept = extension if byte_len(extension) <= MAX_KEPT_EXTENSION else ""
        yield folder / fit_name(source.name[: len(source.name) - len(kept)], room, keep=kept)
    for n in range(2, MAX_NUMBERED_BASE + 1):
        yield folder / fit_name(stem, room, keep=f" ({n})")


def _is_free(
    path: Path,
    source: Path,
    source_key: str,
    manifest: Manifest,
    content_sha256: str | None = None,
    movable: frozenset[str] = frozenset(),
) -> bool:
    """May asrd write `path` for `source` (`source_key`: its `path_key`, computed once by the caller)? Only
    if nothing is there or it is asrd's unedited output of this same recording (or one of the outputs
    being moved, `movable`, as path keys)."""
    key = path_key(path)
    if key == source_key:
        return False
    if not os.path.lexists(path):
        return True
    try:
        if os.path.samefile(path, source):  # e.g. a case-insensitive volume
            return False
    except OSError:
        pass
    return key in movable or manifest.owns(path, source, content_sha256)


def choose_base(
    source: Path,
    formats: Sequence[str],
    manifest: Manifest,
    out_dir: Path | None = None,
    *,
    content_sha256: str | None = None,
    movable: frozenset[str] = frozenset(),
) -> Path:
    """The first base name where every requested format's path is free for this recording."""
    fmts = check_formats(formats)
    source = Path(source).absolute()
    folder = Path(out_dir).absolute() if out_dir is not None else source.parent
    source_key = path_key(source)
    for base in candidate_bases(source, folder):
        if all(_is_free(output_path(base, f), source, source_key, manifest, content_sha256, movable) for f in fmts):
            return base
    raise RuntimeError(f"no free output name for {source} in {folder}")


class _Taken(Exception):
    """A chosen output path stopped being free before it was written (someone put a file there)."""


def _write_set(
    rendered: dict[str, bytes], base: Path, source: Path, manifest: Manifest, content_sha256: str | None
) -> list[Path] | None:
    """Write each output under `base`; None if a target stopped being free since it was chosen.

    The manifest learns each hash before the renames (a crash in between leaves a file asrd still
    knows as its own) and commits them after. Every file's data is on the disk before the first
    rename (`_temps_on_disk`). If the set cannot be completed, the files this attempt created are
    removed, so no half set is left; a file it replaced keeps its new content (a newer render of the
    same recording: the old one is gone either way), and previous outputs it did not reach stay as
    they were.
    """
    planned = {output_path(base, fmt): sha256_bytes(data) for fmt, data in rendered.items()}
    manifest.intend(list(planned.items()), source, content_sha256)
    replaced: list[Path] = []
    created: list[Path] = []
    temps: list[Path] = []
    source_key = path_key(source)
    try:
        temps = _temps_on_disk(list(zip(planned, rendered.values())))
        for n, (path, tmp) in enumerate(zip(planned, temps)):
            if n:
                crash_point("between_outputs")
            if not _is_free(path, source, source_key, manifest, content_sha256):
                raise _Taken(path)
            existed = os.path.lexists(path)
            _replace(tmp, path)
            (replaced if existed else created).append(path)
    except BaseException as exc:
        _remove_temps(temps)
        _undo_set(manifest, planned, replaced, created)
        if isinstance(exc, _Taken):
            return None
        raise
    _fsync_dir(base.parent)  # once for the whole set: every rename is in this folder
    manifest.commit(list(planned))
    return list(planned)


def _temps_on_disk(files: list[tuple[Path, bytes]]) -> list[Path]:
    """Each file's data in a private temp file beside it, all of it on the disk, in one full flush.

    On a Mac a plain fsync hands a file to the drive and F_FULLFSYNC empties the drive's whole
    cache (milliseconds each): the first files get the former, the last one the latter, which makes
    them all durable, so a set costs one full flush instead of one a file. Elsewhere each file gets
    its fsync. On any error the temps written so far are removed."""
    temps: list[Path] = []
    try:
        for n, (path, data) in enumerate(files):
            disk_full_point(str(path))
            temps.append(_write_temp(path, data, _full_fsync if n == len(files) - 1 else os.fsync))
    except BaseException:
        _remove_temps(temps)
        raise
    return temps


def _remove_temps(temps: list[Path]) -> None:
    """Remove the temp files of a set not renamed into place (gone already once renamed)."""
    for tmp in temps:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass


def _undo_set(manifest: Manifest, planned: dict[Path, str], replaced: list[Path], created: list[Path]) -> None:
    """Remove what an incomplete set created; keep (and commit) what it replaced."""
    for path in created:
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError:
            replaced.append(path)  # cannot remove it: at least it stays known as asrd's
    manifest.commit(replaced)
    manifest.abandon([(p, sha) for p, sha in planned.items() if p not in replaced])


def write_outputs(
    transcript: Transcript,
    source: Path,
    formats: Sequence[str],
    manifest: Manifest,
    out_dir: Path | None = None,
) -> list[Path]:
    """Render, name, write atomically and record every requested format; returns the paths.

    The outputs belong to the recording's content (transcript.source.sha256): a path is replaced
    only when it holds asrd's unedited output of this same content and source path.
    """
    fmts = check_formats(formats)
    source = Path(source).absolute()
    content = transcript.source.sha256 or None
    rendered = {f: FORMATS[f](transcript).encode("utf-8") for f in fmts}
    if out_dir is not None:
        Path(out_dir).mkdir(parents=True, exist_ok=True, mode=0o700)
    for _ in range(WRITE_ATTEMPTS):
        base = choose_base(source, fmts, manifest, out_dir, content_sha256=content)
        paths = _write_set(rendered, base, source, manifest, content)
        if paths is not None:
            return paths
    raise RuntimeError(f"output names for {source} kept being taken while writing")
