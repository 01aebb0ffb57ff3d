"""Speech statistics of a transcript: how much was said, by whom, how fast, and the longest pause.

Computed from the segments alone (no torch), so it works on any Transcript, including one read
back from its json. Stored as `transcript.stats["speech"]`; `summary` is its one-line form for logs.
Rates are per minute of speech (not of recording), and scripts written without spaces count one
word per character (Chinese, Japanese): "words (or characters for zh) per minute".
"""

from __future__ import annotations

from typing import Any

from asrd.plural import count
from asrd.transcript import Segment, Transcript, speaker_turns

# Ideographs and kana: one word each. CJK punctuation and Hangul (written with spaces) are not here.
_CHARACTER_WORDS = (
    (0x3040, 0x30FF),  # hiragana, katakana
    (0x31F0, 0x31FF),  # katakana phonetic extensions
    (0x3400, 0x4DBF),  # CJK extension A
    (0x4E00, 0x9FFF),  # CJK unified ideographs
    (0xF900, 0xFAFF),  # CJK compatibility ideographs
    (0xFF66, 0xFF9F),  # half-width katakana
    (0x20000, 0x3FFFF),  # CJK extensions B+
)


def _is_character_word(char: str) -> bool:
    cp = ord(char)
    return any(lo <= cp <= hi for lo, hi in _CHARACTER_WORDS)


def count_words(text: str) -> int:
    """Whitespace words that hold a letter or digit, plus one per CJK character."""
    words = 0
    for token in text.split():
        rest = ""
        for char in token:
            if _is_character_word(char):
                words += 1
                rest += " "
            else:
                rest += char
        words += sum(1 for part in rest.split() if any(c.isalnum() for c in part))
    return words


def _speech_spans(segments: list[Segment], duration_s: float) -> list[tuple[float, float]]:
    """Segment times clamped to the recording and merged where they overlap (two speakers at once)."""
    end_limit = duration_s if duration_s > 0 else float("inf")
    spans: list[tuple[float, float]] = []
    for seg in sorted(segments, key=lambda s: s.start):
        start, end = max(0.0, float(seg.start)), min(float(seg.end), end_limit)  # engines give numpy floats
        if end <= start:
            continue
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], max(spans[-1][1], end))
        else:
            spans.append((start, end))
    return spans


def _longest_silence(spans: list[tuple[float, float]], duration_s: float) -> float:
    """Longest stretch without speech, the silence before the first and after the last included."""
    edges = [0.0] + [t for span in spans for t in span] + [max(duration_s, spans[-1][1] if spans else 0.0)]
    return max((edges[i + 1] - edges[i] for i in range(0, len(edges), 2)), default=0.0)


def _per_minute(words: int, seconds: float) -> float:
    return round(words * 60 / seconds, 1) if seconds > 0 else 0.0


def _speakers(turns: list[list[Segment]]) -> dict[str, dict[str, Any]]:
    """speaker -> talk time, turns and speaking rate (speakers as the engine labels them)."""
    table: dict[str, dict[str, Any]] = {}
    for turn in turns:
        label = turn[0].speaker
        if label is None:
            continue
        row = table.setdefault(label, {"talk_s": 0.0, "turns": 0, "words": 0})
        row["talk_s"] += sum(float(s.duration) for s in turn)
        row["turns"] += 1
        row["words"] += sum(count_words(s.text) for s in turn)
    return {label: {"talk_s": round(row["talk_s"], 3), "turns": row["turns"],
                    "words_per_min": _per_minute(row["words"], row["talk_s"])} for label, row in table.items()}


def speech_stats(transcript: Transcript) -> dict[str, Any]:
    """Counts, speech time and ratio, longest silence, turns, speaking rate (overall and per speaker)."""
    segments = sorted((s for s in transcript.segments if s.text.strip()), key=lambda s: (s.start, s.end))
    spans = _speech_spans(segments, transcript.duration_s)
    speech_s = sum(end - start for start, end in spans)
    words = sum(count_words(s.text) for s in segments)
    turns = speaker_turns(segments)
    stats: dict[str, Any] = {
        "segments": len(segments),
        "speech_s": round(speech_s, 3),
        "speech_ratio": round(speech_s / transcript.duration_s, 4) if transcript.duration_s > 0 else 0.0,
        "longest_silence_s": round(_longest_silence(spans, transcript.duration_s), 3),
        "words": words,
        "words_per_min": _per_minute(words, speech_s),
        "turns": len(turns),
    }
    if transcript.speakers:
        stats["speakers"] = _speakers(turns)
    return stats


def summary(speech: dict[str, Any]) -> str:
    """One line for the job.done log event, from `transcript.stats["speech"]`."""
    parts = [count(speech.get("segments", 0), "segment"),
             f"{speech.get('speech_s', 0.0):.1f} s speech ({speech.get('speech_ratio', 0.0):.0%})",
             f"longest silence {speech.get('longest_silence_s', 0.0):.1f} s"]
    if speech.get("speakers"):
        parts.append(f"{count(len(speech['speakers']), 'speaker')}, {count(speech.get('turns', 0), 'turn')}")
    parts.append(f"{speech.get('words_per_min', 0.0):.0f} words/min")
    return ", ".join(parts)
