"""The per-call options each FunASR model family reads, from asrd's model settings.

SenseVoice and Paraformer read `language`, `use_itn` and `hotword` (one space-separated string);
Fun-ASR-Nano (an LLM prompt) reads `language` as a Chinese language name, `itn`, and `hotwords` as a
list. No torch here: the mapping is plain data, so it is tested without the models.
"""

from __future__ import annotations

from typing import Any

from asrd.config import ModelConfig

NANO_CLASSES = frozenset({"FunASRNano"})
# asrd's language codes -> the names Fun-ASR-Nano's prompt takes ("语音转写成英文"); auto: no name
NANO_LANGUAGES = {"zh": "中文", "en": "英文", "ja": "日文", "yue": "粤语", "ko": "韩文"}


def model_options(model_class: str, model: ModelConfig) -> dict[str, Any]:
    """Options for FunASR's inference of the ASR model whose registered class is `model_class`."""
    if model_class in NANO_CLASSES:
        return {"language": NANO_LANGUAGES.get(model.language), "itn": model.use_itn,
                "hotwords": list(model.hotwords)}
    options: dict[str, Any] = {"language": model.language, "use_itn": model.use_itn}
    if model.hotwords:
        options["hotword"] = " ".join(model.hotwords)
    return options
