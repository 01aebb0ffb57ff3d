"""Turn any recording on disk into 16 kHz mono float32 samples, or one clear AudioError.

soundfile (libsndfile) reads wav/flac/ogg/mp3/aiff/caf exactly and fast; PyAV (FFmpeg in a
wheel, no ffmpeg binary) reads everything else: m4a/aac, phone and camera videos, webm, opus.
Importing this module stays cheap: av and soxr are imported inside the functions that use them.
"""

from __future__ import annotations

import os
import struct
import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
import soundfile as sf

SAMPLE_RATE = 16000

AUDIO_EXTENSIONS: frozenset[str] = frozenset(
    {
        ".wav", ".flac", ".ogg", ".oga", ".mp3", ".m4a", ".aac", ".mp4", ".m4v", ".mov",
        ".mkv", ".webm", ".opus", ".wma", ".aiff", ".aif", ".caf", ".3gp", ".amr",
    }
)  # fmt: skip

# Extensions libsndfile cannot read (or reads worse than FFmpeg): go straight to PyAV.
_PYAV_EXTENSIONS = frozenset(
    {".m4a", ".aac", ".mp4", ".m4v", ".mov", ".mkv", ".webm", ".opus", ".wma", ".3gp", ".amr"}
)
_BLOCK_FRAMES = 1 << 18  # soundfile read size: ~5 s at 48 kHz, keeps peak memory flat
_MAX_TAIL_PADDING_S = 0.25  # decoded audio past the declared duration up to this is codec padding
_TRUNCATION_SLACK_S = 0.05  # shortfall below this is rounding, not a truncated file
_MP3_SLACK_S, _MP3_SLACK_FRACTION = 0.5, 0.05  # mp3 frame counts may be estimates

_T = TypeVar("_T")


class AudioError(Exception):
    """The one error for input that cannot be turned into audio; reason says what is wrong."""

    def __init__(self, path: str | os.PathLike[str], reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self):
        # Cross the engine/daemon process boundary intact (default pickling loses reason).
        return (type(self), (self.path, self.reason))


@dataclass(frozen=True)
class AudioInfo:
    """What the headers say about a recording; duration_s is 0.0 when the container won't say."""

    path: str
    duration_s: float
    sample_rate: int
    channels: int
    codec: str | None
    container: str | None


@dataclass
class Audio:
    """Decoded samples ready for the model: float32, mono, SAMPLE_RATE."""

    samples: np.ndarray
    duration_s: float
    source_rate: int
    source_channels: int


class _NotForSoundfile(Exception):
    """libsndfile does not recognise the file; PyAV should try."""


def probe(path: str | os.PathLike[str]) -> AudioInfo:
    """Read headers only (never decodes the whole file) so the daemon can triage cheaply."""
    p = _check_file(path)
    with _as_audio_error(p):
        return _dispatch(p, _probe_soundfile, _probe_pyav)


def decode(path: str | os.PathLike[str], max_duration_s: float | None = None) -> Audio:
    """Decode the whole recording to SAMPLE_RATE mono float32.

    max_duration_s: stop with AudioError once more than this much audio has been decoded, so a file
    whose header hides its length (a streamed webm, a lying frame count) cannot fill the memory.
    """
    p = _check_file(path)
    with _as_audio_error(p):
        return _dispatch(p, lambda q: _decode_soundfile(q, max_duration_s), lambda q: _decode_pyav(q, max_duration_s))


# -- shared plumbing ---------------------------------------------------------------------------


def _check_file(path: str | os.PathLike[str]) -> Path:
    """Catch the cheap, common mistakes before any decoder gives a cryptic message."""
    p = Path(path)
    if not p.exists():
        raise AudioError(p, "file not found")
    if not p.is_file():
        raise AudioError(p, "not a regular file")
    if p.stat().st_size == 0:
        raise AudioError(p, "empty file (0 bytes)")
    return p


def _dispatch(p: Path, by_soundfile: Callable[[Path], _T], by_pyav: Callable[[Path], _T]) -> _T:
    """soundfile first for the formats it owns; PyAV for the rest and for what it rejects."""
    if p.suffix.lower() not in _PYAV_EXTENSIONS:
        try:
            return by_soundfile(p)
        except _NotForSoundfile:
            pass
        if _looks_like_text(p):  # before FFmpeg, which happily "detects" subtitles/tty text
            raise AudioError(p, "not audio: the file contains text")
    return by_pyav(p)


@contextmanager
def _as_audio_error(p: Path) -> Iterator[None]:
    """Whatever a decoder library throws for bad input leaves here as AudioError."""
    try:
        yield
    except AudioError:
        raise
    except Exception as e:
        if not isinstance(e, _bad_input_errors()):
            raise
        if isinstance(e, PermissionError) and not _is_ffmpeg_error(e):  # FFmpeg's EPERM is bad data
            raise AudioError(p, "cannot read file: permission denied") from e
        raise AudioError(p, f"undecodable: {type(e).__name__}: {e}") from e


def _bad_input_errors() -> tuple[type[BaseException], ...]:
    """Exception types that mean bad input, including PyAV's once it has been imported."""
    errors: tuple[type[BaseException], ...] = (RuntimeError, ValueError, OSError, EOFError)
    av = sys.modules.get("av")
    return errors + (av.error.FFmpegError,) if av is not None else errors


def _is_ffmpeg_error(e: BaseException) -> bool:
    av = sys.modules.get("av")
    return av is not None and isinstance(e, av.error.FFmpegError)


def _looks_like_text(p: Path) -> bool:
    """Why: a renamed transcript or log deserves a clearer message than 'invalid data'."""
    with p.open("rb") as f:
        head = f.read(1024)
    if b"\x00" in head:
        return False
    for cut in range(4):  # the read may split a multi-byte character at the end
        try:
            head[: len(head) - cut].decode("utf-8")
            return True
        except UnicodeDecodeError:
            continue
    return False


def _to_mono_float(block: np.ndarray) -> np.ndarray:
    """(frames, channels) samples of any dtype -> contiguous float32 mono by averaging."""
    if block.dtype.kind == "f":
        block = block.astype(np.float32, copy=False)
    elif block.dtype == np.uint8:
        block = (block.astype(np.float32) - 128.0) / 128.0
    else:
        block = block.astype(np.float32) / float(2 ** (8 * block.itemsize - 1))
    mono = block[:, 0] if block.shape[1] == 1 else block.mean(axis=1, dtype=np.float32)
    return np.ascontiguousarray(mono)


def _to_16k(blocks: Iterable[tuple[np.ndarray, int]], expected: int = 0) -> tuple[np.ndarray, int]:
    """Resample (mono block, rate) pairs in one streaming pass; returns samples, frames read.

    Streaming keeps memory at the 16 kHz output size even for hours-long 48 kHz recordings: the
    output grows in place (sized from `expected`, the header's length at 16 kHz), where a list of
    blocks joined at the end held a 2-hour recording twice (0.9 GB at the peak instead of 0.46).
    A rate change mid-stream restarts the resampler.
    """
    import soxr

    out = _GrowingSamples(expected)
    stream, rate_now, frames_in = None, None, 0
    for block, rate in blocks:
        if rate != rate_now:
            out.add(_flush(stream))
            stream = _resampler(soxr, rate)
            rate_now = rate
        frames_in += len(block)
        out.add(block if stream is None else stream.resample_chunk(block))
    out.add(_flush(stream))
    return out.samples(), frames_in


class _GrowingSamples:
    """float32 samples appended in place: by half again when the expected length was short."""

    def __init__(self, expected: int):
        self._buf = np.empty(max(expected, 1 << 16), np.float32)
        self._n = 0

    def add(self, block: np.ndarray) -> None:
        need = self._n + len(block)
        if need > len(self._buf):
            grown = np.empty(max(need, len(self._buf) * 3 // 2), np.float32)
            grown[:self._n] = self._buf[:self._n]
            self._buf = grown
        self._buf[self._n:need] = block
        self._n = need

    def samples(self) -> np.ndarray:
        """The samples, the unused room given back (in place where the allocator can)."""
        self._buf.resize(self._n, refcheck=False)
        return self._buf


def _resampler(soxr, rate: int):
    """None when the source is already at SAMPLE_RATE, so 16 kHz input passes bit-exact."""
    if rate == SAMPLE_RATE:
        return None
    return soxr.ResampleStream(rate, SAMPLE_RATE, 1, dtype="float32", quality="HQ")


_EXPECT_AT_MOST_S = 4 * 3600  # a header may lie (a tiny file claiming days): reserve no more than this


def _expected_at_16k(duration_s: float | None) -> int:
    """Room for the header's length at 16 kHz and a second more (a resampler's tail, a loose mp3
    estimate), never more than _EXPECT_AT_MOST_S: past that the buffer grows as samples come."""
    return int((min(duration_s or 0.0, _EXPECT_AT_MOST_S) + 1.0) * SAMPLE_RATE)


def _flush(stream) -> np.ndarray:
    if stream is None:
        return np.zeros(0, np.float32)
    return stream.resample_chunk(np.zeros(0, np.float32), last=True)


def _bounded(p: Path, blocks: Iterable[tuple[np.ndarray, int]], max_s: float | None) -> Iterator[tuple[np.ndarray, int]]:
    """The blocks, until more than max_s seconds have come: then AudioError (memory stays bounded)."""
    held_s = 0.0
    for block, rate in blocks:
        held_s += len(block) / rate
        if max_s is not None and held_s > max_s:
            raise AudioError(p, f"too long: more than limits.max_duration_s ({hours(max_s)}) of audio, "
                                "found while decoding (its header did not say so)")
        yield block, rate


def hours(seconds: float) -> str:
    """`6 h`, `6.11 h`, `90 s`: how lengths read in a reason."""
    return f"{seconds / 3600:.3g} h" if seconds >= 3600 else f"{seconds:.0f} s"


def _finish(p: Path, samples: np.ndarray, rate: int, channels: int) -> Audio:
    if len(samples) == 0:
        raise AudioError(p, "no audio samples")
    return Audio(samples, len(samples) / SAMPLE_RATE, rate, channels)


# -- soundfile (libsndfile) --------------------------------------------------------------------


def _open_soundfile(p: Path) -> sf.SoundFile:
    try:
        return sf.SoundFile(p)
    except sf.LibsndfileError as e:
        raise _NotForSoundfile(str(e)) from e


def _probe_soundfile(p: Path) -> AudioInfo:
    with _open_soundfile(p) as f:
        info = AudioInfo(
            str(p), f.frames / f.samplerate, f.samplerate, f.channels,
            f.subtype.lower(), f.format.lower(),
        )  # fmt: skip
    truncated = _wav_truncation(p)
    if truncated:
        raise AudioError(p, truncated)
    if info.duration_s == 0:
        raise AudioError(p, "no audio samples")
    return info


def _decode_soundfile(p: Path, max_s: float | None = None) -> Audio:
    info = _probe_soundfile(p)
    samples, frames = _to_16k(_bounded(p, _soundfile_blocks(p, info), max_s), _expected_at_16k(info.duration_s))
    held_s = frames / info.sample_rate
    if info.duration_s - held_s > _truncation_slack(info):
        raise AudioError(p, _truncated_reason(info.duration_s, held_s))
    return _finish(p, samples, info.sample_rate, info.channels)


def _truncation_slack(info: AudioInfo) -> float:
    """Shortfall tolerated before calling a file truncated: mp3 lengths without a Xing/LAME
    header are a bitrate estimate, every other libsndfile format states exact frame counts."""
    if info.codec == "mpeg_layer_iii":
        return max(_MP3_SLACK_S, _MP3_SLACK_FRACTION * info.duration_s)
    return _TRUNCATION_SLACK_S


def _soundfile_blocks(p: Path, info: AudioInfo) -> Iterator[tuple[np.ndarray, int]]:
    """Mono blocks until libsndfile has no more; a mid-file error says where it happened.

    Not SoundFile.blocks(): it trusts the header frame count and pads short reads with stale
    buffer contents, which turns a truncated file into garbage instead of an error.
    """
    done = 0
    with _open_soundfile(p) as f:
        while True:
            try:
                block = f.read(_BLOCK_FRAMES, dtype="float32", always_2d=True)
            except sf.LibsndfileError as e:
                at = done / info.sample_rate
                raise AudioError(
                    p, f"corrupt or truncated data at {at:.1f} s of {info.duration_s:.1f} s ({e})"
                ) from e
            if len(block) == 0:
                return
            done += len(block)
            yield _to_mono_float(block), info.sample_rate


def _wav_truncation(p: Path) -> str | None:
    """Why: libsndfile silently clamps a WAV whose data chunk runs past the end of the file.

    Walks the RIFF chunks to the data chunk and compares its declared size with what the file
    holds. Returns a reason when frames are missing, else None (also for non-RIFF files and
    streaming writers' placeholder sizes 0 / 0xFFFFFFFF).
    """
    size = p.stat().st_size
    with p.open("rb") as f:
        head = f.read(12)
        if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
            return None
        rate, block_align, declared, offset = _riff_data_chunk(f)
    if not rate or not block_align or declared in (0, 0xFFFFFFFF) or offset is None:
        return None
    held = max(0, size - offset)
    if declared - held < block_align:
        return None
    per_s = rate * block_align
    return _truncated_reason(declared / per_s, held / per_s)


def _riff_data_chunk(f) -> tuple[int, int, int, int | None]:
    """(sample rate, block align, declared data bytes, data offset) from a RIFF/WAVE stream."""
    rate = block_align = 0
    while True:
        head = f.read(8)
        if len(head) < 8:
            return rate, block_align, 0, None
        cid, csize = head[:4], struct.unpack("<I", head[4:])[0]
        if cid == b"data":
            return rate, block_align, csize, f.tell()
        body = f.read(csize + (csize & 1))
        if cid == b"fmt " and len(body) >= 14:
            rate = struct.unpack("<I", body[4:8])[0]
            block_align = struct.unpack("<H", body[12:14])[0]


def _truncated_reason(promised_s: float, held_s: float) -> str:
    return f"truncated: header promises {promised_s:.1f} s, file holds {held_s:.1f} s"


# -- PyAV (FFmpeg) -----------------------------------------------------------------------------


@contextmanager
def _open_pyav(p: Path):
    import av

    truncated = _mp4_truncation(p)
    if truncated:
        raise AudioError(p, truncated)
    try:
        container = av.open(str(p), metadata_errors="ignore")
    except av.error.FFmpegError as e:
        if _looks_like_text(p):
            raise AudioError(p, "not audio: the file contains text") from e
        raise AudioError(p, f"unrecognised format or corrupt data ({_ffmpeg_message(e)})") from e
    with container:
        yield container


def _mp4_truncation(p: Path) -> str | None:
    """Why: FFmpeg says only "Invalid data" for a recording cut off mid-copy (its index, the moov
    box, comes last) and quietly decodes less when the index came first.

    Walks the top-level boxes of an MP4/M4A/MOV: one whose declared size runs past the end of the
    file means the file was cut off. None for other formats and for complete files.
    """
    size = p.stat().st_size
    offset, boxes = 0, []
    with p.open("rb") as f:
        while offset + 8 <= size:
            f.seek(offset)
            head = f.read(16)
            box_size, kind = struct.unpack(">I", head[:4])[0], head[4:8]
            if not boxes and kind != b"ftyp":
                return None  # not an ISO media file
            if box_size == 1 and len(head) >= 16:
                box_size = struct.unpack(">Q", head[8:16])[0]
            elif box_size == 0:  # "to the end of the file"
                box_size = size - offset
            if box_size < 8:
                return None  # not a box structure FFmpeg would read either; let it say why
            boxes.append(kind)
            if offset + box_size > size:
                return (f"truncated: its {kind.decode('latin-1')!r} box promises {offset + box_size} bytes, "
                        f"the file holds {size}")
            offset += box_size
    if boxes and b"moov" not in boxes and b"moof" not in boxes:
        return "truncated or incomplete: no 'moov' box (the index an MP4/M4A file needs)"
    return None


def _ffmpeg_message(e: Exception) -> str:
    return getattr(e, "strerror", None) or str(e)


def _pick_stream(p: Path, container):
    """The default-disposition audio stream, else the first one (what players pick)."""
    streams = list(container.streams.audio)
    if not streams:
        has_video = bool(container.streams.video)
        raise AudioError(p, "no audio stream (video only)" if has_video else "no audio stream")
    defaults = [s for s in streams if int(getattr(s, "disposition", 0) or 0) & 1]  # DEFAULT flag
    return (defaults or streams)[0]


def _track_duration(stream) -> float | None:
    """The audio track's own duration: a video track beside it may run longer."""
    if stream.duration is None or stream.time_base is None:
        return None
    return float(stream.duration * stream.time_base)


def _container_duration(container) -> float | None:
    return None if container.duration is None else container.duration / 1_000_000  # AV_TIME_BASE


def _probe_pyav(p: Path) -> AudioInfo:
    with _open_pyav(p) as container:
        stream = _pick_stream(p, container)
        cc = stream.codec_context
        duration = _track_duration(stream)
        duration = _container_duration(container) if duration is None else duration
        if duration == 0:
            raise AudioError(p, "no audio samples")
        return AudioInfo(
            str(p), duration or 0.0, cc.sample_rate, cc.channels, cc.name, container.format.name
        )


def _decode_pyav(p: Path, max_s: float | None = None) -> Audio:
    with _open_pyav(p) as container:
        stream = _pick_stream(p, container)
        cc = stream.codec_context
        rate, channels = cc.sample_rate, cc.channels
        samples, _ = _to_16k(_bounded(p, _pyav_blocks(p, container, stream), max_s),
                             _expected_at_16k(_track_duration(stream)))
        samples = _trim_padding(samples, _track_duration(stream))
    return _finish(p, samples, rate, channels)


def _pyav_blocks(p: Path, container, stream) -> Iterator[tuple[np.ndarray, int]]:
    """Decode one stream's packets; a bad packet is skipped (as ffmpeg does), a bad demux isn't."""
    import av

    accepted = skipped = 0
    packets = container.demux(stream)
    while True:
        try:
            packet = next(packets)
        except StopIteration:
            break
        except av.error.FFmpegError as e:
            raise AudioError(p, f"corrupt or truncated container ({_ffmpeg_message(e)})") from e
        try:
            frames = packet.decode()
        except av.error.FFmpegError:  # InvalidData, or EPERM from a packet cut out of place
            skipped += 1
            continue
        accepted += bool(packet.size)
        for frame in frames:
            yield _frame_mono(frame), frame.sample_rate
    if skipped and skipped >= accepted:  # a bad packet here and there is skipped, as ffmpeg does
        raise AudioError(p, f"undecodable audio data ({skipped} of {skipped + accepted} packets rejected "
                            "by the decoder)")


def _frame_mono(frame) -> np.ndarray:
    """One PyAV audio frame (planar or packed, any sample format) -> float32 mono."""
    data = frame.to_ndarray()
    channels = len(frame.layout.channels)
    if frame.format.is_planar:
        block = data.T
    else:
        block = data.reshape(-1, channels)
    return _to_mono_float(block)


def _trim_padding(samples: np.ndarray, declared_s: float | None) -> np.ndarray:
    """Drop encoder end padding (AAC's last partial frame) so durations match the source.

    FFmpeg already skips the leading priming via the MP4 edit list; the tail past the track's
    declared duration is padding only when it is short, otherwise the duration was a guess.
    """
    if declared_s is None:
        return samples
    target = round(declared_s * SAMPLE_RATE)
    excess = len(samples) - target
    if 0 < excess <= _MAX_TAIL_PADDING_S * SAMPLE_RATE:
        return samples[:target]
    return samples
