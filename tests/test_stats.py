"""Speech statistics: hand-made transcripts (speakers, turns, silences, CJK counting) and the
committed 3-utterance clip through the tiny SenseVoice + real FSMN-VAD."""

from __future__ import annotations

import pytest

from asrd import audio
from asrd.stats import count_words, speech_stats, summary
from asrd.transcript import Segment, SourceInfo, Transcript
from tests.test_engine import SOURCE, make_engine


def transcript(segments: list[Segment], duration_s: float = 60.0) -> Transcript:
    return Transcript(SourceInfo("/in/a.m4a", 1, "0" * 64), segments, duration_s=duration_s)


def test_counts_ratio_and_longest_silence_including_the_edges() -> None:
    t = transcript([Segment(2.0, 5.0, "one two three"), Segment(6.0, 9.0, "four five six")], duration_s=30.0)
    stats = speech_stats(t)
    assert stats["segments"] == 2 and stats["speech_s"] == 6.0 and stats["speech_ratio"] == 0.2
    assert stats["longest_silence_s"] == 21.0  # after the last word
    assert stats["words"] == 6 and stats["words_per_min"] == 60.0  # per minute of speech
    assert stats["turns"] == 1 and "speakers" not in stats
    lead = transcript([Segment(12.0, 13.0, "late start")], duration_s=14.0)
    assert speech_stats(lead)["longest_silence_s"] == 12.0  # before the first word


def test_overlapping_speakers_are_not_counted_twice() -> None:
    t = transcript([Segment(0.0, 4.0, "a b", speaker="0"), Segment(3.0, 6.0, "c", speaker="1")], duration_s=10.0)
    stats = speech_stats(t)
    assert stats["speech_s"] == 6.0 and stats["longest_silence_s"] == 4.0
    assert stats["speakers"]["0"]["talk_s"] == 4.0 and stats["speakers"]["1"]["talk_s"] == 3.0


def test_speakers_turns_and_rates() -> None:
    t = transcript([
        Segment(0.0, 10.0, "one two three four five", speaker="0"),
        Segment(10.0, 20.0, "six seven eight nine ten", speaker="0"),
        Segment(21.0, 31.0, "eleven twelve", speaker="1"),
        Segment(32.0, 42.0, "thirteen fourteen fifteen", speaker="0"),
    ])
    stats = speech_stats(t)
    assert stats["turns"] == 3  # 0 -> 1 -> 0
    assert stats["speakers"] == {
        "0": {"talk_s": 30.0, "turns": 2, "words_per_min": 26.0},
        "1": {"talk_s": 10.0, "turns": 1, "words_per_min": 12.0},
    }
    line = summary(stats)
    assert "4 segments" in line and "2 speakers, 3 turns" in line and "words/min" in line


@pytest.mark.parametrize("text, words", [
    ("你好，世界。", 4),  # Chinese: one word per character, punctuation not counted
    ("我们用Python写代码", 7),  # mixed: 我 们 用 + Python + 写 代 码
    ("こんにちは", 5),  # kana count per character too
    ("안녕하세요 여러분", 2),  # Korean is written with spaces: words
    ("Hello, world - it's 5 o'clock.", 5),  # a lone dash is not a word
    ("", 0),
])
def test_word_counting(text: str, words: int) -> None:
    assert count_words(text) == words


def test_cjk_rate_is_characters_per_minute() -> None:
    t = transcript([Segment(0.0, 30.0, "今天天气很好")], duration_s=30.0)
    assert speech_stats(t)["words_per_min"] == 12.0


def test_empty_transcript() -> None:
    stats = speech_stats(transcript([], duration_s=5.0))
    assert stats == {"segments": 0, "speech_s": 0.0, "speech_ratio": 0.0, "longest_silence_s": 5.0,
                     "words": 0, "words_per_min": 0.0, "turns": 0}
    assert summary(stats).startswith("0 segments, 0.0 s speech (0%)")


@pytest.fixture(scope="module")
def sensevoice(tiny_models):
    return make_engine("sensevoice")


def test_speech3_clip_stats_match_the_known_speech(sensevoice, speech3) -> None:
    folder, known = speech3
    t = sensevoice.transcribe(audio.decode(folder / "speech3.wav").samples, SOURCE)
    stats = t.stats["speech"]
    known_s = sum(end - start for start, end in known["speech"])
    assert stats["segments"] == 3
    assert stats["speech_s"] == pytest.approx(known_s, rel=0.05)
    assert stats["speech_ratio"] == pytest.approx(known_s / known["duration_s"], rel=0.05)
    assert "timings" in t.stats  # the engine's own figures stay beside them
    assert t.model["rich_tags"] is False


def test_summary_counts_read_as_words():
    from asrd.stats import summary

    line = summary({"segments": 1, "speech_s": 2.0, "speech_ratio": 0.5, "longest_silence_s": 1.0,
                    "speakers": ["0"], "turns": 1, "words_per_min": 100})
    assert "1 segment," in line and "1 speaker, 1 turn" in line
