"""Copies get transcripts too (the real `asrd run`): eight copies of one clip are eight transcript
sets from one transcription; a copy of a recording that failed gets the error record."""

from __future__ import annotations

import json
import shutil

from asrd.ledger import Ledger
from tests.support.daemon import DaemonRun


def test_every_copy_gets_its_own_transcripts_from_one_transcription(tmp_path, tiny_models, speech3):
    daemon = DaemonRun(tmp_path, engine={"max_attempts": 1})
    inbox = daemon.inbox
    names = ["Recording.wav", "Recording (1).wav", "Recording copy.wav", "copies/Recording.wav",
             "a/b/memo.wav", "Kopie von Recording.wav", "rec $(x) 'q'.wav", "Запись.wav"]
    clips = [inbox / name for name in names]
    broken = [inbox / "broken.wav", inbox / "old" / "broken copy.wav"]
    for clip in clips:
        clip.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(speech3[0] / "speech3.wav", clip)
    for bad in broken:
        bad.parent.mkdir(parents=True, exist_ok=True)
        bad.write_bytes((speech3[0] / "speech3.wav").read_bytes()[:20000])  # header promises 14 s
    with daemon:
        daemon.wait_for(lambda e: e["event"] == "copy.done", n=len(clips) - 1)
        daemon.wait_for(lambda e: e["event"] == "copy.failed")
        daemon.stop()
    assert daemon.count("job.done") == 1 and daemon.count("job.started") == 2  # one run per content
    for clip in clips:
        stem = clip.with_suffix("")
        written = sorted(p.name for p in clip.parent.glob(f"{glob_escape(stem.name)}.*") if p != clip)
        assert written == [f"{stem.name}.json", f"{stem.name}.srt", f"{stem.name}.txt"], clip
        doc = json.loads(stem.with_name(stem.name + ".json").read_text())
        assert doc["source"]["path"] == str(clip) and len(doc["segments"]) == 3  # the copy's own name inside
    texts = {(clip.with_suffix(".txt")).read_text() for clip in clips}
    assert len(texts) == 1
    for bad in broken:
        record = json.loads(bad.with_name(bad.name + ".asrd-error.json").read_text())
        assert "truncated" in record["reason"]
    ledger = Ledger(tmp_path / "state")
    assert ledger.counts()["done"] == 1 and ledger.counts()["failed"] == 1  # one job per content


def glob_escape(name: str) -> str:
    return "".join(f"[{c}]" if c in "*?[" else c for c in name)
