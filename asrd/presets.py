"""Model presets: which FunASR models make up each `model.preset`.

Values are FunASR model names (hub ids or FunASR's short aliases), downloaded once to the
ModelScope cache on first use; any of them can be replaced by a local folder in the config.
Kept free of torch/funasr so the daemon and `asrd config check` can read it.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Preset:
    name: str
    asr: str
    vad: str | None
    punc: str | None
    spk: str | None
    summary: str
    language: str | None = None  # the one language the preset's ASR model speaks, if it has one


PRESETS: dict[str, Preset] = {
    "sensevoice": Preset(
        name="sensevoice",
        asr="iic/SenseVoiceSmall",
        vad="fsmn-vad",
        punc=None,
        spk=None,
        summary="SenseVoiceSmall (zh/en/yue/ja/ko, auto language), FSMN-VAD; fast, ~900 MB download",
    ),
    "paraformer-zh": Preset(
        name="paraformer-zh",
        asr="iic/speech_seaco_paraformer_large_asr_nat-zh-cn-16k-common-vocab8404-pytorch",
        vad="fsmn-vad",
        punc="ct-punc",
        spk="cam++",
        summary="SeACo-Paraformer (Mandarin, hotwords) + CT-punc + CAM++ speakers, FSMN-VAD",
        language="zh",
    ),
    "nano": Preset(
        name="nano",
        asr="FunAudioLLM/Fun-ASR-Nano-2512",
        vad="fsmn-vad",
        punc=None,
        spk=None,
        summary="Fun-ASR-Nano (LLM-based, zh/en/ja, punctuates itself); EXPERIMENTAL: wired but not "
                "tested against the real model, GBs of download, slow without a GPU",
    ),
}

MODEL_ROLES = ("asr", "vad", "punc", "spk")
