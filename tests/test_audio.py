"""asrd.audio: every supported container decodes to the same 16 kHz mono clip, bad input fails clearly."""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from asrd import audio
from asrd.audio import SAMPLE_RATE, AudioError, decode, probe

FIXTURES = Path(__file__).parent / "fixtures" / "audio"
FORMATS = ["wav", "flac", "mp3", "m4a", "mp4"]
MAX_LAG = SAMPLE_RATE // 10  # lossy encoders may shift audio by their delay; search ±100 ms
LENGTH_TOLERANCE = int(0.05 * SAMPLE_RATE)


@pytest.fixture(scope="module")
def reference() -> np.ndarray:
    samples, rate = sf.read(FIXTURES / "speech3.wav", dtype="float32")
    assert rate == SAMPLE_RATE
    return samples


@pytest.fixture(scope="module")
def meta() -> dict:
    return json.loads((FIXTURES / "speech3.json").read_text())


def aligned_correlation(x: np.ndarray, ref: np.ndarray) -> tuple[float, int]:
    """Pearson correlation at the best lag within ±MAX_LAG (found by FFT cross-correlation)."""
    n = min(len(x), len(ref))
    a, b = x[:n] - x[:n].mean(), ref[:n] - ref[:n].mean()
    size = 1 << int(np.ceil(np.log2(2 * n)))
    xc = np.fft.irfft(np.fft.rfft(a, size) * np.conj(np.fft.rfft(b, size)), size)
    lags = np.r_[np.arange(0, MAX_LAG + 1), np.arange(-MAX_LAG, 0)]
    lag = int(lags[np.argmax(np.r_[xc[: MAX_LAG + 1], xc[-MAX_LAG:]])])
    if lag >= 0:
        a, b = a[lag:], b[: n - lag]
    else:
        a, b = a[: n + lag], b[-lag:]
    return float(np.corrcoef(a, b)[0, 1]), lag


def write_audio_container(path: Path, tracks: list[np.ndarray], default: int | None) -> None:
    """An mkv with one AAC track per array; `default` marks which carries disposition default."""
    import av

    with av.open(str(path), "w") as out:
        streams = []
        for i in range(len(tracks)):
            stream = out.add_stream("aac", rate=SAMPLE_RATE, layout="mono")
            stream.disposition = av.stream.Disposition.default if i == default else 0
            streams.append(stream)
        for stream, samples in zip(streams, tracks):
            _encode_all(out, stream, samples[None, :], SAMPLE_RATE, "mono")


def write_with_pyav(path: Path, codec: str, rate: int, channels: list[np.ndarray]) -> None:
    """One audio track of `codec` at `rate`; channels are 16 kHz signals, resampled here."""
    import av
    import soxr

    layout = "mono" if len(channels) == 1 else "stereo"
    planar = np.stack([soxr.resample(c, SAMPLE_RATE, rate).astype(np.float32) for c in channels])
    with av.open(str(path), "w") as out:
        _encode_all(out, out.add_stream(codec, rate=rate, layout=layout), planar, rate, layout)


def _encode_all(out, stream, planar: np.ndarray, rate: int, layout: str) -> None:
    import av

    frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(planar), format="fltp", layout=layout)
    frame.sample_rate, frame.pts, frame.time_base = rate, 0, Fraction(1, rate)
    out.mux(stream.encode(frame))
    out.mux(stream.encode())


def write_video_only(path: Path) -> None:
    import av

    with av.open(str(path), "w") as out:
        stream = out.add_stream("mpeg4", rate=5)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(5):
            frame = av.VideoFrame.from_ndarray(np.zeros((48, 64, 3), np.uint8), format="rgb24")
            frame.pts = i
            out.mux(stream.encode(frame))
        out.mux(stream.encode())


def tone(freq: float, seconds: float = 1.0) -> np.ndarray:
    t = np.arange(int(seconds * SAMPLE_RATE)) / SAMPLE_RATE
    return (0.5 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def dominant_freq(x: np.ndarray) -> float:
    spectrum = np.abs(np.fft.rfft(x))
    return float(np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)[np.argmax(spectrum)])


# -- good input --------------------------------------------------------------------------------


def test_fixture_metadata_matches_wav(reference, meta):
    assert meta["sample_rate"] == SAMPLE_RATE
    assert meta["duration_s"] == pytest.approx(len(reference) / SAMPLE_RATE)
    assert len(meta["speech"]) == len(meta["texts"]) == 3
    speech = np.zeros(len(reference), bool)
    for start, end in meta["speech"]:
        region = slice(round(start * SAMPLE_RATE), round(end * SAMPLE_RATE))
        assert np.abs(reference[region]).max() > 0.1
        speech[region] = True
    assert np.abs(reference[~speech]).max() < 0.01  # gaps are a faint noise floor only


@pytest.mark.parametrize("fmt", FORMATS)
def test_decode_matches_reference(fmt, reference):
    result = decode(FIXTURES / f"speech3.{fmt}")
    x = result.samples
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - len(reference)) <= LENGTH_TOLERANCE
    assert result.duration_s == pytest.approx(len(x) / SAMPLE_RATE)
    corr, lag = aligned_correlation(x, reference)
    assert corr > 0.95, f"{fmt}: correlation {corr:.3f} at lag {lag}"
    assert abs(lag) <= 32, f"{fmt}: encoder delay not removed ({lag} samples)"


@pytest.mark.parametrize(
    ("name", "codec", "rate", "stereo"),
    [
        ("clip.opus", "libopus", 48000, False),  # Ogg Opus via PyAV, pre-skip removed
        ("clip.webm", "libopus", 48000, True),
        ("clip.mov", "pcm_s16le", 22050, True),  # packed int16 frames, odd rate
    ],
)
def test_other_containers_decode(name, codec, rate, stereo, tmp_path, reference):
    path = tmp_path / name
    write_with_pyav(path, codec, rate, [reference, 0.5 * reference] if stereo else [reference])
    result = decode(path)
    assert (result.source_rate, result.source_channels) == (rate, 2 if stereo else 1)
    assert abs(len(result.samples) - len(reference)) <= LENGTH_TOLERANCE
    corr, lag = aligned_correlation(result.samples, reference)
    assert corr > 0.95 and abs(lag) <= 32
    gain = 0.75 if stereo else 1.0
    assert np.abs(result.samples).max() == pytest.approx(gain * np.abs(reference).max(), rel=0.1)
    assert probe(path).duration_s == pytest.approx(len(reference) / SAMPLE_RATE, abs=0.05)


def test_ogg_vorbis_via_soundfile(tmp_path, reference):
    path = tmp_path / "clip.ogg"
    sf.write(path, reference, SAMPLE_RATE, format="OGG", subtype="VORBIS")
    assert probe(path).codec == "vorbis"
    corr, lag = aligned_correlation(decode(path).samples, reference)
    assert corr > 0.95 and lag == 0


def test_lossless_formats_are_exact(reference):
    assert np.array_equal(decode(FIXTURES / "speech3.wav").samples, reference)
    assert np.array_equal(decode(FIXTURES / "speech3.flac").samples, reference)


def test_mp4_reports_source_format():
    result = decode(FIXTURES / "speech3.mp4")  # 48 kHz stereo AAC track beside a video track
    assert (result.source_rate, result.source_channels) == (48000, 2)


def test_stereo_44k_is_downmixed_and_resampled(tmp_path, reference):
    import soxr

    left = soxr.resample(reference, SAMPLE_RATE, 44100).astype(np.float32)
    path = tmp_path / "stereo.wav"
    sf.write(path, np.stack([left, 0.5 * left], axis=1), 44100, subtype="PCM_16")
    result = decode(path)
    assert (result.source_rate, result.source_channels) == (44100, 2)
    assert abs(len(result.samples) - len(reference)) <= 2
    assert result.duration_s == pytest.approx(len(reference) / SAMPLE_RATE, abs=0.001)
    corr, lag = aligned_correlation(result.samples, reference)
    assert corr > 0.99 and abs(lag) <= 2
    assert np.abs(result.samples).max() == pytest.approx(0.75 * np.abs(reference).max(), rel=0.05)


def test_default_audio_stream_wins(tmp_path):
    path = tmp_path / "two_tracks.mkv"
    write_audio_container(path, [tone(440), tone(1000)], default=1)
    assert dominant_freq(decode(path).samples) == pytest.approx(1000, abs=5)


def test_first_audio_stream_without_default(tmp_path):
    path = tmp_path / "two_tracks.mkv"
    write_audio_container(path, [tone(440), tone(1000)], default=None)
    assert dominant_freq(decode(path).samples) == pytest.approx(440, abs=5)


# -- probe ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_probe_reads_headers_only(fmt, meta, monkeypatch):
    def no_decoding(*_args, **_kwargs):
        raise AssertionError("probe must not decode")

    monkeypatch.setattr(audio, "decode", no_decoding)
    monkeypatch.setattr(audio, "_to_16k", no_decoding)
    info = probe(FIXTURES / f"speech3.{fmt}")
    assert info.duration_s == pytest.approx(meta["duration_s"], abs=0.05)
    assert info.sample_rate in (16000, 48000) and info.channels in (1, 2)
    assert info.path == str(FIXTURES / f"speech3.{fmt}")
    assert info.codec and info.container


def test_probe_names_codec_and_container():
    flac = probe(FIXTURES / "speech3.flac")
    assert (flac.container, flac.codec, flac.sample_rate, flac.channels) == ("flac", "pcm_16", 16000, 1)
    video = probe(FIXTURES / "speech3.mp4")  # the audio track's numbers, not the video's
    assert (video.codec, video.sample_rate, video.channels) == ("aac", 48000, 2)
    assert "mp4" in video.container


# -- bad input -----------------------------------------------------------------------------------


def _truncated_wav(tmp_path: Path) -> Path:
    data = (FIXTURES / "speech3.wav").read_bytes()
    path = tmp_path / "cut.wav"
    path.write_bytes(data[: len(data) // 3])
    return path


def _text_wav(tmp_path: Path) -> Path:
    path = tmp_path / "notes.wav"
    path.write_text("These are meeting notes, not a recording.\n" * 20)
    return path


def _empty(tmp_path: Path) -> Path:
    path = tmp_path / "empty.m4a"
    path.touch()
    return path


def _video_only(tmp_path: Path) -> Path:
    path = tmp_path / "silent_film.mp4"
    write_video_only(path)
    return path


def _zero_samples(tmp_path: Path) -> Path:
    path = tmp_path / "nothing.wav"
    sf.write(path, np.zeros(0, np.float32), SAMPLE_RATE)
    return path


def _garbage(tmp_path: Path) -> Path:
    path = tmp_path / "noise.m4a"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    return path


def _missing(tmp_path: Path) -> Path:
    return tmp_path / "nope.wav"


BAD_INPUTS = {
    "empty": (_empty, "empty file"),
    "missing": (_missing, "file not found"),
    "text": (_text_wav, "contains text"),
    "truncated": (_truncated_wav, "truncated: header promises 14.1 s, file holds 4.7 s"),
    "video_only": (_video_only, "no audio stream"),
    "zero_samples": (_zero_samples, "no audio samples"),
    "garbage": (_garbage, "unrecognised format or corrupt data"),
}


@pytest.mark.parametrize("case", sorted(BAD_INPUTS))
@pytest.mark.parametrize("func", [decode, probe], ids=["decode", "probe"])
def test_bad_input_raises_audio_error(case, func, tmp_path):
    make, reason = BAD_INPUTS[case]
    path = make(tmp_path)
    with pytest.raises(AudioError) as excinfo:
        func(path)
    assert reason in excinfo.value.reason
    assert excinfo.value.path == str(path)
    assert str(excinfo.value) == f"{path}: {excinfo.value.reason}"


def test_bad_input_reasons_are_distinct(tmp_path):
    reasons = set()
    for make, _ in BAD_INPUTS.values():
        with pytest.raises(AudioError) as excinfo:
            decode(make(tmp_path))
        reasons.add(excinfo.value.reason)
    assert len(reasons) == len(BAD_INPUTS)


@pytest.mark.parametrize("fmt", ["flac", "mp3"])
def test_truncated_compressed_file_is_detected(fmt, tmp_path):
    data = (FIXTURES / f"speech3.{fmt}").read_bytes()
    path = tmp_path / f"cut.{fmt}"
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(AudioError, match="truncated"):
        decode(path)


def test_audio_error_pickles():
    """The engine process reports decode failures to the daemon by pickling them."""
    err = pickle.loads(pickle.dumps(AudioError(Path("/x.wav"), "empty file (0 bytes)")))
    assert (err.path, err.reason) == ("/x.wav", "empty file (0 bytes)")
    assert str(err) == "/x.wav: empty file (0 bytes)"


# -- import cost ---------------------------------------------------------------------------------


def test_import_is_cheap():
    code = (
        "import sys, asrd.audio; "
        "heavy = [m for m in ('av', 'soxr', 'torch') if m in sys.modules]; "
        "assert not heavy, heavy"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parent.parent)


def test_extensions_are_lowercase_with_dot():
    assert {".wav", ".m4a", ".mp4", ".opus", ".amr"} <= audio.AUDIO_EXTENSIONS
    assert all(e.startswith(".") and e == e.lower() for e in audio.AUDIO_EXTENSIONS)
