"""Sentences from tokens, token times and punctuation ids, never crossing a pause.

FunASR's `timestamp_sentence` splits only at punctuation, over text joined across VAD regions, and
its join drops the space between two CJK regions so tokens fuse and the split drifts. Here each
token keeps the region it came from: a sentence ends at a punctuation mark or where the speech
region ends, so a subtitle never spans a silence (or, usually, a change of speaker).
"""

from __future__ import annotations

from dataclasses import dataclass

# CT-Transformer ids: 1 = no mark, 2.. = these (as FunASR's timestamp_sentence maps them).
PUNCTUATION = ["，", "。", "？", "、"]


@dataclass
class Token:
    text: str
    start_ms: int
    end_ms: int
    region: int


@dataclass
class Sentence:
    text: str
    start_ms: int
    end_ms: int


def _is_latin(char: str) -> bool:
    return char.isascii() and char.isalnum()


def join_tokens(tokens: list[str]) -> str:
    """Latin words get spaces between them; CJK characters don't (FunASR's rule)."""
    text = ""
    for token in tokens:
        if text and (_is_latin(token[0]) or _is_latin(text[-1])):
            text += " "
        text += token
    return text


def split_sentences(tokens: list[Token], punc_ids: list[int]) -> list[Sentence]:
    sentences: list[Sentence] = []
    current: list[Token] = []
    pieces: list[str] = []

    def close() -> None:
        if current:
            sentences.append(Sentence(join_tokens(pieces), current[0].start_ms, current[-1].end_ms))
        current.clear()
        pieces.clear()

    for token, punc in zip(tokens, punc_ids):
        if current and token.region != current[-1].region:
            close()
        current.append(token)
        pieces.append(token.text)
        if int(punc) > 1:
            pieces[-1] += PUNCTUATION[int(punc) - 2] if int(punc) - 2 < len(PUNCTUATION) else ""
            close()
    close()
    return sentences
