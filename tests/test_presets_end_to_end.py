"""Both presets end to end, as a user runs them: `asrd transcribe` with every output format, the
tiny models (SenseVoice; SeACo-Paraformer + CT-punc + CAM++) and the real FSMN-VAD. Checks the json
contract, speakers in every format, subtitles by a real parser and by the cue limits, and the md."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import soundfile as sf

from tests.support.configs import write_config
from tests.support.tiny_models import speech_bursts
from tests.test_output import CUE_MAX_MS, srt_cues, vtt_cues

FORMATS = "txt,srt,vtt,json,md"
JSON_KEYS = {"source", "text", "language", "segments", "speakers", "model", "device", "duration_s",
             "processing_s", "rtf", "stats", "asrd_version"}
SPEECH_KEYS = {"segments", "speech_s", "speech_ratio", "longest_silence_s", "words", "words_per_min", "turns"}


def transcribe(config: Path, clip: Path) -> dict:
    result = subprocess.run([sys.executable, "-m", "asrd", "transcribe", "--config", str(config), "--format",
                             FORMATS, str(clip)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return json.loads(clip.with_suffix(".json").read_text())


def check_subtitles(clip: Path, tmp_path: Path) -> list[list[tuple[float, float, list[str]]]]:
    cue_sets = [srt_cues(clip.with_suffix(".srt").read_text()), vtt_cues(tmp_path, clip.with_suffix(".vtt").read_text())]
    for cues in cue_sets:
        assert cues
        for start, end, lines in cues:
            assert 0 <= start < end and end - start <= CUE_MAX_MS / 1000 + 1e-9
            assert 1 <= len(lines) <= 2 and all(0 < len(line) <= 42 for line in lines), lines
        assert all(a[1] <= b[0] for a, b in zip(cues, cues[1:]))
    return cue_sets


def test_sensevoice_preset_all_formats(tmp_path, tiny_models, speech3):
    clip = tmp_path / "in" / "memo.wav"
    clip.parent.mkdir()
    clip.write_bytes((speech3[0] / "speech3.wav").read_bytes())
    doc = transcribe(write_config(tmp_path, "sensevoice"), clip)
    assert JSON_KEYS <= doc.keys() and SPEECH_KEYS <= doc["stats"]["speech"].keys()
    assert len(doc["segments"]) == 3 and doc["speakers"] == []
    for segment in doc["segments"]:
        assert {"start", "end", "text", "speaker", "emotion", "events", "language"} <= segment.keys()
        assert segment["speaker"] is None and segment["emotion"] == "NEUTRAL" and segment["events"] == ["Speech"]
    check_subtitles(clip, tmp_path)
    assert "Speaker" not in clip.with_suffix(".txt").read_text()
    md = clip.with_suffix(".md").read_text()
    assert md.startswith("# memo.wav\n") and "- **Duration:** 00:00:14" in md and "**Speakers:**" not in md


def test_paraformer_preset_speakers_in_every_format(tmp_path, tiny_models):
    samples, bursts = speech_bursts(n_bursts=9, f0s=(110.0, 210.0))  # two voices, alternating
    clip = tmp_path / "in" / "meeting.wav"
    clip.parent.mkdir()
    sf.write(clip, samples, 16000, subtype="PCM_16")
    doc = transcribe(write_config(tmp_path, "paraformer-zh", model={"hotwords": ["阿里巴巴"], "num_speakers": 2}),
                     clip)
    assert JSON_KEYS <= doc.keys() and doc["model"]["preset"] == "paraformer-zh"
    assert len(doc["speakers"]) == 2
    assert doc["segments"] and all(s["speaker"] in doc["speakers"] for s in doc["segments"])
    per_speaker = doc["stats"]["speech"]["speakers"]
    assert set(per_speaker) == set(doc["speakers"]) and all(v["talk_s"] > 0 and v["turns"] >= 1
                                                            for v in per_speaker.values())
    for cues in check_subtitles(clip, tmp_path):
        assert all(lines[0].startswith(("Speaker 1: ", "Speaker 2: ")) for _, _, lines in cues)
    txt = clip.with_suffix(".txt").read_text()
    assert "] Speaker 1:\n" in txt and "] Speaker 2:\n" in txt and txt.startswith("[00:00:0")
    md = clip.with_suffix(".md").read_text()
    assert "- **Speakers:** Speaker 1, Speaker 2" in md and "**Speaker 2** [" in md
