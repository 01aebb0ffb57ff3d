"""The md output and SenseVoice's rich tags (emotion, audio events) rendered with model.rich_tags."""

from __future__ import annotations

import json
from datetime import datetime

import pytest

import asrd.output as output
from asrd.config import FORMATS as CONFIG_FORMATS
from asrd.config import build_config
from asrd.output import FORMATS, render, render_md, render_txt
from asrd.transcript import Segment, SourceInfo, Transcript


@pytest.fixture(autouse=True)
def fixed_now(monkeypatch):
    monkeypatch.setattr(output, "_now", lambda: datetime(2026, 3, 14, 9, 26))


def make(segments: list[Segment], rich_tags: bool | None = None, **extra) -> Transcript:
    model = {"preset": "sensevoice", "asr": "iic/SenseVoiceSmall"}
    if rich_tags is not None:
        model["rich_tags"] = rich_tags
    return Transcript(SourceInfo("/in/team_call.m4a", 1, "0" * 64), segments, language="en", model=model,
                      duration_s=3725.0, **extra)


def test_md_is_in_both_format_lists() -> None:
    assert "md" in FORMATS and "md" in CONFIG_FORMATS
    assert build_config({"outputs": ["md", "txt"]}, None).outputs == ("md", "txt")


def test_md_with_speakers_has_header_and_a_paragraph_per_turn() -> None:
    t = make([
        Segment(1.0, 2.0, "Hi.", speaker="0"),
        Segment(2.0, 3.0, "How are you?", speaker="0"),
        Segment(83.4, 85.0, "Fine.", speaker="1"),
        Segment(3720.0, 3721.0, "Bye.", speaker="0"),
    ])
    assert render_md(t) == (
        "# team\\_call.m4a\n"
        "\n"
        "- **Transcribed:** 2026-03-14 09:26\n"
        "- **Duration:** 01:02:05\n"
        "- **Language:** en\n"
        "- **Model:** sensevoice (iic/SenseVoiceSmall)\n"
        "- **Speakers:** Speaker 1, Speaker 2\n"
        "\n"
        "**Speaker 1** [00:00:01]\nHi. How are you?\n"
        "\n"
        "**Speaker 2** [00:01:23]\nFine.\n"
        "\n"
        "**Speaker 1** [01:02:00]\nBye.\n"
    )


def test_md_without_speakers_is_plain_paragraphs() -> None:
    md = render_md(make([Segment(0, 1, " Hello. "), Segment(1, 2, "  "), Segment(2, 3, "World.")]))
    assert md.endswith("- **Model:** sensevoice (iic/SenseVoiceSmall)\n\nHello.\n\nWorld.\n")
    assert "Speakers" not in md and "**Speaker" not in md


@pytest.mark.parametrize(("model", "line"), [
    ({"preset": "sensevoice"}, "- **Model:** sensevoice\n"),  # a transcript from before the model was recorded
    ({"name": "iic/SenseVoiceSmall"}, "- **Model:** iic/SenseVoiceSmall\n"),
    ({}, None),
])
def test_md_names_whichever_of_preset_and_model_is_known(model: dict, line: str | None) -> None:
    t = Transcript(SourceInfo("/in/a.m4a", 1, "0" * 64), [Segment(0, 1, "Hi.")], language="en", model=model)
    md = render_md(t)
    assert (line in md) if line else "**Model:**" not in md
    assert "None" not in md and "()" not in md


def test_md_escapes_transcript_text() -> None:
    md = render_md(make([Segment(0, 1, "1. use *stars* and <b>tags</b> # not a heading")]))
    assert md.endswith("1\\. use \\*stars\\* and \\<b\\>tags\\</b\\> \\# not a heading\n")


def test_md_of_an_empty_transcript_is_just_the_header() -> None:
    md = render_md(make([]))
    assert md.startswith("# team\\_call.m4a\n\n- **Transcribed:**") and md.endswith("\n") and "\n\n\n" not in md


TAGGED = [
    Segment(0.0, 2.0, "That is great!", emotion="HAPPY", events=["Laughter"], language="en"),
    Segment(3.0, 5.0, "Anyway.", emotion="NEUTRAL", events=["Speech"], language="en"),
    Segment(6.0, 8.0, "Thanks.", emotion="EMO_UNKNOWN", events=["Applause", "Speech"], language="en"),
]


@pytest.mark.parametrize("fmt", ["txt", "srt", "vtt", "md"])
def test_rich_tags_lead_the_text_and_neutral_speech_is_left_out(fmt: str) -> None:
    text = render(make(TAGGED, rich_tags=True), fmt)
    assert "[HAPPY] [Laughter] That is great!" in text.replace("\\[", "[").replace("\\]", "]")
    assert "[Applause] Thanks." in text.replace("\\[", "[").replace("\\]", "]")
    for noise in ("NEUTRAL", "Speech]", "EMO_UNKNOWN"):
        assert noise not in text


@pytest.mark.parametrize("rich_tags", [False, None])
@pytest.mark.parametrize("fmt", ["txt", "srt", "vtt", "md"])
def test_no_tags_by_default(fmt: str, rich_tags: bool | None) -> None:
    text = render(make(TAGGED, rich_tags=rich_tags), fmt)
    assert "HAPPY" not in text and "Laughter" not in text and "That is great!" in text


def test_json_keeps_the_tag_fields_and_the_flag() -> None:
    t = make(TAGGED, rich_tags=True)
    data = json.loads(render(t, "json"))
    assert data["segments"][0]["text"] == "That is great!"  # the text itself stays clean
    assert data["segments"][0]["emotion"] == "HAPPY" and data["segments"][0]["events"] == ["Laughter"]
    assert data["model"]["rich_tags"] is True
    assert render_txt(Transcript.from_dict(data)) == render_txt(t)  # re-rendered the same from json


def test_rich_tags_config_key() -> None:
    assert build_config({}, None).model.rich_tags is False
    assert build_config({"model": {"rich_tags": True}}, None).model.rich_tags is True
