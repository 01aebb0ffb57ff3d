"""Fewer, longer calls where the model runs one call at a time (MPS, batch_size=1).

Each model call has a fixed price (kernel launches, graph set-up), so a file of a hundred short
speech regions pays it a hundred times. As FunASR's `merge_vad` does (its README's advice for
SenseVoice), adjacent regions are merged into one call of up to `merge_length_s`, the pauses between
them included; unlike `merge_vad`, a call starts at its first region (never at 0 ms: no call of
leading silence). The call's words are then cut back into the regions they were spoken in, by their
token timestamps, so the transcript keeps one segment per region. A call whose words cannot be
placed (no timestamps) stays one segment spanning its regions.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

_LEADING_TAGS = re.compile(r"^(?:<\|[^|]*\|>)+")


@dataclass(frozen=True)
class Call:
    """One model call over [start_ms, end_ms) of the file, covering regions `members` (time order)."""

    start_ms: int
    end_ms: int
    members: tuple[int, ...]


@dataclass(frozen=True)
class Piece:
    """What a call said inside one region (times in ms from the start of the file)."""

    region: int
    start_ms: int
    end_ms: int
    text: str
    timestamps: list[list[int]]


def plan_calls(regions: Sequence[tuple[int, int]], max_ms: int) -> list[Call]:
    """Consecutive regions (in time order) share a call while the call spans at most max_ms;
    max_ms <= 0 gives one call per region, and a region longer than max_ms goes alone."""
    order = sorted(range(len(regions)), key=lambda i: regions[i])
    calls: list[Call] = []
    members: list[int] = []
    for i in order:
        if members and (max_ms <= 0 or regions[i][1] - regions[members[0]][0] > max_ms):
            calls.append(_call(regions, members))
            members = []
        members.append(i)
    if members:
        calls.append(_call(regions, members))
    return calls


def _call(regions: Sequence[tuple[int, int]], members: list[int]) -> Call:
    return Call(regions[members[0]][0], max(regions[i][1] for i in members), tuple(members))


def split_call(call: Call, regions: Sequence[tuple[int, int]], output: dict) -> list[Piece]:
    """The call's output (FunASR's: `text`, and `timestamp` in ms from the call's start, aligned
    with `words` where the model gives them — SenseVoice — else with the text's tokens) as one
    piece per member region that heard words; regions that heard none get an empty piece."""
    text = str(output.get("text", ""))
    tags = _LEADING_TAGS.match(text)
    prefix = tags.group(0) if tags else ""
    words = output.get("words")
    joiner = _join_pieces if words is not None else " ".join
    # SenseVoice leaves SentencePiece's word mark on its first word ("▁a")
    words = [w.lstrip("\u2581") for w in words] if words is not None else text[len(prefix):].split()
    stamps = [[int(a) + call.start_ms, int(b) + call.start_ms] for a, b in output.get("timestamp", [])]
    if len(call.members) == 1 or not words or len(words) != len(stamps):
        if len(call.members) > 1 and words:
            return [Piece(call.members[0], call.start_ms, call.end_ms, text, stamps)]  # cannot place them
        first = call.members[0]
        pieces = [Piece(first, *regions[first], text, stamps)]
        return pieces + [Piece(i, *regions[i], prefix, []) for i in call.members[1:]]
    placed: dict[int, list[int]] = {i: [] for i in call.members}
    for n, (start, end) in enumerate(stamps):
        placed[_region_of((start + end) // 2, call.members, regions)].append(n)
    return [Piece(i, *regions[i], prefix + joiner([words[n] for n in placed[i]]), [stamps[n] for n in placed[i]])
            for i in call.members]


def _region_of(at_ms: int, members: tuple[int, ...], regions: Sequence[tuple[int, int]]) -> int:
    """The member region a word spoken at at_ms belongs to: the one holding it, else the nearest."""
    def distance(i: int) -> int:
        start, end = regions[i]
        return 0 if start <= at_ms < end else min(abs(at_ms - start), abs(at_ms - end))

    return min(members, key=distance)


def _join_pieces(words: list[str]) -> str:
    """Words as SentencePiece decodes them: a space between two words of Latin letters or digits,
    none next to CJK characters or punctuation."""
    out = ""
    for word in words:
        if out and out[-1].isascii() and out[-1].isalnum() and word[:1].isascii() and word[:1].isalnum():
            out += " "
        out += word
    return out
