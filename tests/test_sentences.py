"""Sentence splitting: at punctuation marks and at speech-region boundaries."""

from asrd.engine.sentences import Token, join_tokens, split_sentences
from asrd.engine.tags import parse_tags


def test_join_tokens_spaces_latin_not_cjk():
    assert join_tokens(["我", "们", "use", "FunASR", "模", "型"]) == "我们 use FunASR 模型"


def test_split_at_marks_and_regions():
    tokens = [Token("今", 0, 100, 0), Token("天", 100, 200, 0), Token("好", 200, 300, 0),
              Token("我", 900, 1000, 1), Token("们", 1000, 1100, 1)]
    sentences = split_sentences(tokens, [1, 2, 1, 1, 3])
    assert [(s.text, s.start_ms, s.end_ms) for s in sentences] == [
        ("今天，", 0, 200), ("好", 200, 300), ("我们。", 900, 1100)]


def test_parse_sensevoice_tags():
    tagged = parse_tags("<|en|><|HAPPY|><|Laughter|><|withitn|> Hello there.")
    assert (tagged.text, tagged.language, tagged.emotion, tagged.events) == ("Hello there.", "en", "HAPPY", ["Laughter"])
    assert parse_tags("plain").text == "plain"
