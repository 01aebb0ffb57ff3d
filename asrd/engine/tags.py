"""SenseVoice's rich tags: `<|en|><|NEUTRAL|><|Speech|><|withitn|>Hello.` -> fields + clean text.

Tags are removed from the text and kept as data (language, emotion, audio events); with
`model.rich_tags` they can be rendered back. No torch here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

TAG = re.compile(r"<\|([^|<>]*)\|>")
LANGUAGES = frozenset({"zh", "en", "yue", "ja", "ko", "nospeech"})
EMOTIONS = frozenset({"HAPPY", "SAD", "ANGRY", "NEUTRAL", "FEARFUL", "DISGUSTED", "SURPRISED", "EMO_UNKNOWN"})
TEXT_NORM = frozenset({"withitn", "woitn"})


@dataclass
class TaggedText:
    text: str
    language: str | None = None
    emotion: str | None = None
    events: list[str] = field(default_factory=list)


def parse_tags(raw: str) -> TaggedText:
    """Split a model's raw output into clean text and its tags (unknown tags count as events)."""
    result = TaggedText(text=" ".join(TAG.sub(" ", raw).split()))
    for tag in TAG.findall(raw):
        if tag in LANGUAGES:
            result.language = result.language or tag
        elif tag in EMOTIONS:
            result.emotion = result.emotion or tag
        elif tag in TEXT_NORM or not tag:
            continue
        elif tag not in result.events:
            result.events.append(tag)
    return result
