"""Merged calls on the one-call-at-a-time path: which regions share a call, and how a call's words
go back to the regions they were spoken in."""

from __future__ import annotations

from asrd.engine.merge import Call, plan_calls, split_call

REGIONS = [(1000, 3000), (3500, 6000), (9000, 12000), (30000, 52000), (52500, 53000)]


def test_adjacent_regions_share_a_call_up_to_the_cap():
    calls = plan_calls(REGIONS, 15000)
    assert [c.members for c in calls] == [(0, 1, 2), (3,), (4,)]
    assert (calls[0].start_ms, calls[0].end_ms) == (1000, 12000)  # from its first region, not from 0 ms
    assert calls[1] == Call(30000, 52000, (3,))  # longer than the cap: alone, never cut


def test_no_cap_is_one_call_per_region_and_order_is_by_time():
    shuffled = [REGIONS[2], REGIONS[0], REGIONS[1]]
    assert [c.members for c in plan_calls(shuffled, 0)] == [(1,), (2,), (0,)]
    assert [c.members for c in plan_calls(shuffled, 60000)] == [(1, 2, 0)]
    assert plan_calls([], 15000) == []


def test_sensevoice_words_go_back_to_their_regions():
    call = plan_calls(REGIONS, 15000)[0]
    output = {"text": "<|en|><|NEUTRAL|><|Speech|><|woitn|>hello world你好 again",
              "words": ["\u2581hello", "world", "你", "好", "again"],
              "timestamp": [[100, 500], [600, 1900], [2600, 3000], [3100, 3400], [8200, 10000]]}
    pieces = split_call(call, REGIONS, output)
    tags = "<|en|><|NEUTRAL|><|Speech|><|woitn|>"
    assert [(p.region, p.start_ms, p.end_ms, p.text) for p in pieces] == [
        (0, 1000, 3000, tags + "hello world"),
        (1, 3500, 6000, tags + "你好"),
        (2, 9000, 12000, tags + "again")]
    assert pieces[0].timestamps == [[1100, 1500], [1600, 2900]]  # from the call's start to the file's
    assert pieces[2].timestamps == [[9200, 11000]]


def test_a_word_in_a_pause_goes_to_the_nearest_region():
    call = Call(1000, 6000, (0, 1))
    output = {"text": "a b", "timestamp": [[2100, 2300], [2400, 2600]]}  # ~3200 and ~3500 ms: the gap
    pieces = split_call(call, REGIONS, output)
    assert [p.text for p in pieces] == ["a", "b"]


def test_paraformer_tokens_and_a_region_that_heard_nothing():
    call = plan_calls(REGIONS, 15000)[0]
    output = {"text": "你 好 世 界", "timestamp": [[0, 200], [300, 600], [2600, 2900], [3000, 3300]]}
    pieces = split_call(call, REGIONS, output)
    assert [p.text for p in pieces] == ["你 好", "世 界", ""]


def test_words_without_timestamps_stay_one_segment_over_the_call():
    call = plan_calls(REGIONS, 15000)[0]
    pieces = split_call(call, REGIONS, {"text": "<|zh|>你好 世界"})
    assert [(p.region, p.start_ms, p.end_ms, p.text) for p in pieces] == [(0, 1000, 12000, "<|zh|>你好 世界")]
    single = split_call(Call(30000, 52000, (3,)), REGIONS, {"text": "x y", "timestamp": [[0, 10], [20, 30]]})
    assert [(p.region, p.text, p.timestamps) for p in single] == [(3, "x y", [[30000, 30010], [30020, 30030]])]
