"""Qwen2.5-Omni, the paper's model: its *thinker* (the text-generating half) and its audio processor.

`Qwen/Qwen2.5-Omni-7B` (Hub id or local dir) is loaded as `Qwen2_5OmniThinkerForConditionalGeneration`:
transformers maps the nested `thinker_config` and leaves the talker and token2wav weights unloaded. The
vision tower is frozen and never run (every input here is text or speech). The family of a model is read
from `config.model_type`; every other model keeps the causal-LM path (`shala_lib.generation.models`).

Processor. transformers' `Qwen2_5OmniProcessor` is WhisperFeatureExtractor (128 mel bins, 16 kHz, a 300 s
window of 30,000 frames in Qwen2.5-Omni-7B's config) + image and video processors + tokenizer, and in
transformers 5.23 it cannot be built without `torchvision` (which CPU-only machines may lack).
`load_processor` takes `AutoProcessor` when it loads and otherwise composes the same audio+text path from the
model's own feature-extractor config, tokenizer and chat template (`ComposedOmniProcessor`): the same keys
(`input_ids`, `attention_mask`, `input_features`, `feature_attention_mask`; features padded to the batch's
longest clip rather than to the window), the same expansion of each `<|AUDIO|>` into `((L-1)//2+1-2)//2+1`
audio tokens for L mel frames. Which path ran is returned and recorded (`processor_kind`);
`benchmarks/gpu_proof.sh omni` checks both give identical inputs on the same clips where torchvision is present.

System prompt. The Omni chat template inserts Qwen's default system prompt when a conversation has none.
Prompts here always carry it explicitly (`OMNI_SYSTEM_PROMPT`, the same words), for text and speech alike,
so what the model reads never depends on a template's fallback and is visible in every rendered prompt.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np

from shala_lib.data.audio import SAMPLE_RATE, FeatureWindow, feature_window

log = logging.getLogger(__name__)

Family = Literal["causal_lm", "omni"]
OMNI_MODEL_TYPES = ("qwen2_5_omni", "qwen2_5_omni_thinker")
OMNI_SYSTEM_PROMPT = (
    "You are Qwen, a virtual human developed by the Qwen Team, Alibaba Group, capable of perceiving auditory "
    "and visual inputs, as well as generating text and speech."
)
ProcessorKind = Literal["AutoProcessor", "composed"]


def audio_token_count(frames: int | np.ndarray) -> int | np.ndarray:
    """Audio tokens the thinker's encoder gives for L mel frames (two stride-2 reductions)."""
    return ((frames - 1) // 2 + 1 - 2) // 2 + 1


def model_family(name_or_path: str) -> Family:
    """`omni` for Qwen2.5-Omni checkpoints (whole model or thinker), `causal_lm` otherwise."""
    from transformers import AutoConfig

    from shala_lib.generation.models import explained_load_errors, resolve_model

    path = resolve_model(name_or_path)
    with explained_load_errors(path):
        cfg = AutoConfig.from_pretrained(path)
    return "omni" if getattr(cfg, "model_type", "") in OMNI_MODEL_TYPES else "causal_lm"


def is_omni(model: Any) -> bool:
    return getattr(getattr(model, "config", None), "model_type", "") in OMNI_MODEL_TYPES


class CheckpointMismatchError(ValueError):
    """A checkpoint's tensors do not match the thinker's: some would stay random, or some would be ignored."""


def check_loading_info(path: str, info: dict[str, Any]) -> None:
    """Raise `CheckpointMismatchError` naming the missing, unexpected and shape-mismatched thinker tensors of
    a `from_pretrained(..., output_loading_info=True)` load. transformers only logs them, and a key layout it
    does not know would otherwise train and evaluate a partly random model. The talker's and token2wav's
    tensors of a full Omni checkpoint are not reported by transformers (the thinker ignores them)."""
    problems = []
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys"):
        keys = sorted(str(k) for k in info.get(kind) or ())
        if keys:
            shown = ", ".join(keys[:8]) + (f", ... ({len(keys)} in all)" if len(keys) > 8 else "")
            problems.append(f"{len(keys)} {kind.replace('_', ' ')} ({shown})")
    errors = [str(e) for e in info.get("error_msgs") or ()]
    if errors:
        problems.append("errors: " + "; ".join(errors[:3]))
    if problems:
        raise CheckpointMismatchError(
            f"{path}: the checkpoint does not match Qwen2.5-Omni's thinker: " + "; ".join(problems) + ". Missing "
            "tensors would stay randomly initialised. Is this a Qwen2.5-Omni checkpoint saved by transformers "
            "(keys 'thinker.model...' in a full model, 'model...' in a thinker)?"
        )


def load_thinker(path: str, dtype: Any, **kwargs: Any) -> Any:
    """The thinker of a Qwen2.5-Omni checkpoint, vision tower frozen; every thinker tensor must come from the
    checkpoint (`check_loading_info`)."""
    from transformers import Qwen2_5OmniThinkerForConditionalGeneration

    model, info = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(
        path, dtype=dtype, output_loading_info=True, **kwargs
    )
    check_loading_info(str(path), info)
    # Saves write the model's own key names (`model.audio_tower...`, `model.language_model...`), which load back
    # unchanged. transformers otherwise reverts the load-time renamings on save, and under ZeRO-3 that revert
    # wrote `thinker.model.thinker.audio_tower...`: a checkpoint whose every tensor failed to load back.
    model._weight_conversions = []
    freeze_vision(model)
    return model


def freeze_vision(model: Any) -> int:
    """Freeze the thinker's vision tower (never run on text or speech); returns the parameters frozen."""
    visual = getattr(getattr(model, "model", model), "visual", None)
    if visual is None:
        return 0
    visual.requires_grad_(False)
    return sum(p.numel() for p in visual.parameters())


def placeholder_token_ids(model_or_config: Any) -> list[int]:
    """The audio, image and video placeholder ids: generation must never sample them (a sampled
    `<|AUDIO|>` breaks the audio merge of the next forward)."""
    cfg = getattr(model_or_config, "config", model_or_config)
    ids = [getattr(cfg, k, None) for k in ("audio_token_id", "image_token_id", "video_token_id")]
    return sorted({int(i) for i in ids if i is not None})


def _processor_chat_template(path: str, tokenizer: Any) -> str:
    """The processor's chat template (`chat_template.json` / `.jinja` beside the weights), else the
    tokenizer's."""
    folder = Path(path)
    if (folder / "chat_template.json").is_file():
        return str(json.loads((folder / "chat_template.json").read_text())["chat_template"])
    if (folder / "chat_template.jinja").is_file():
        return (folder / "chat_template.jinja").read_text()
    if not folder.exists():
        try:
            from huggingface_hub import hf_hub_download

            return str(json.loads(Path(hf_hub_download(path, "chat_template.json")).read_text())["chat_template"])
        except Exception as e:  # noqa: BLE001 - offline, or no such file: the tokenizer's template
            log.debug("%s: no processor chat template on the Hub (%s); using the tokenizer's", path, e)
    template = getattr(tokenizer, "chat_template", None)
    if not template:
        raise ValueError(f"{path}: no chat template (chat_template.json, chat_template.jinja or the tokenizer's)")
    return str(template)


def cut_and_pad_length(window: FeatureWindow, clips: Sequence[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Clips cut to the feature window, and the sample count to pad them to: the longest clip plus one hop
    (Whisper's STFT framing drops the last frame at the end of the padded signal), at most the window."""
    cut = [np.asarray(c)[: window.max_samples] for c in clips]
    longest = max(len(c) for c in cut)
    return cut, min(window.max_samples, (-(-longest // window.hop_length) + 1) * window.hop_length)


class ComposedOmniProcessor:
    """Qwen2.5-Omni's audio+text processing without torchvision: the model's WhisperFeatureExtractor,
    tokenizer and chat template, called like `Qwen2_5OmniProcessor` for text and audio."""

    kind: ProcessorKind = "composed"

    def __init__(self, feature_extractor: Any, tokenizer: Any, chat_template: str) -> None:
        self.feature_extractor = feature_extractor
        self.tokenizer = tokenizer
        self.chat_template = chat_template
        self.audio_token = str(getattr(tokenizer, "audio_token", None) or "<|AUDIO|>")
        self.audio_token_id = tokenizer.convert_tokens_to_ids(self.audio_token)
        if self.audio_token_id is None or self.audio_token_id == tokenizer.unk_token_id:
            raise ValueError(f"the tokenizer has no audio token {self.audio_token!r}")

    def features(self, clips: Sequence[np.ndarray], return_tensors: str = "pt") -> Any:
        """Log-mel features of clips cut to the window and padded to the longest clip of the batch (not to
        the window: Qwen2.5-Omni-7B's is 30,000 frames, 10x what a 30 s clip needs). The audio encoder reads
        only the frames `feature_attention_mask` marks, and those are bit-identical to the window-padded ones
        (the padding is zeros either way; one extra hop keeps the longest clip's last frame, which Whisper's
        STFT framing drops at the end of the padded signal)."""
        cut, padded_to = cut_and_pad_length(feature_window(self.feature_extractor), clips)
        return self.feature_extractor(
            cut,
            sampling_rate=SAMPLE_RATE,
            return_attention_mask=True,
            padding="max_length",
            max_length=padded_to,
            return_tensors=return_tensors,
        )

    def apply_chat_template(self, conversation: Any, tokenize: bool = False, **kwargs: Any) -> Any:
        return self.tokenizer.apply_chat_template(
            conversation, chat_template=self.chat_template, tokenize=tokenize, **kwargs
        )

    def __call__(
        self,
        text: str | Sequence[str],
        audio: Sequence[np.ndarray] | None = None,
        padding: bool | str = True,
        return_tensors: str = "pt",
        **kwargs: Any,
    ) -> Any:
        from transformers import BatchFeature

        texts = [text] if isinstance(text, str) else list(text)
        n_slots = sum(t.count(self.audio_token) for t in texts)
        clips = list(audio or [])
        if n_slots != len(clips):
            raise ValueError(f"{n_slots} {self.audio_token} placeholder(s) in the text but {len(clips)} clip(s)")
        data: dict[str, Any] = {}
        if clips:
            feats = self.features(clips, return_tensors)
            data["input_features"] = feats["input_features"]
            data["feature_attention_mask"] = feats["attention_mask"]
            counts = iter(int(n) for n in audio_token_count(np.asarray(feats["attention_mask"].sum(-1))))
            expanded = []
            for t in texts:
                parts = t.split(self.audio_token)
                out = parts[0]
                for rest in parts[1:]:
                    out += self.audio_token * next(counts) + rest
                expanded.append(out)
            texts = expanded
        enc = self.tokenizer(texts, padding=padding, return_tensors=return_tensors, padding_side="left")
        data = {"input_ids": enc["input_ids"], "attention_mask": enc["attention_mask"], **data}
        return BatchFeature(data=data)


def load_processor(name_or_path: str, tokenizer: Any = None) -> tuple[Any, ProcessorKind]:
    """(processor, which path ran): `AutoProcessor` when it loads, else `ComposedOmniProcessor`."""
    from transformers import AutoProcessor, WhisperFeatureExtractor

    from shala_lib.generation.models import load_tokenizer, resolve_model

    path = resolve_model(name_or_path)
    try:
        proc = AutoProcessor.from_pretrained(path)
        if hasattr(proc, "feature_extractor") and hasattr(proc, "tokenizer"):
            proc.tokenizer.padding_side = "left"
            log.info("%s: processor from AutoProcessor (%s)", path, type(proc).__name__)
            return proc, "AutoProcessor"
        why = f"AutoProcessor gave {type(proc).__name__}, without an audio feature extractor"
    except (ImportError, TypeError, ValueError, OSError) as e:  # torchvision missing, or no processor config
        why = f"{type(e).__name__}: {str(e).splitlines()[0][:200]}"
    tok = tokenizer if tokenizer is not None else load_tokenizer(path)
    fe = WhisperFeatureExtractor.from_pretrained(path)
    log.info("%s: AutoProcessor unavailable (%s); composing the audio path from its feature extractor", path, why)
    return ComposedOmniProcessor(fe, tok, _processor_chat_template(path, tok)), "composed"


def save_processor(processor: Any, out_dir: str | Path) -> None:
    """Save a processor beside a checkpoint so `load_processor(out_dir)` rebuilds it: the whole
    processor, or for a composed one its feature extractor, tokenizer and chat template."""
    out = Path(out_dir)
    if isinstance(processor, ComposedOmniProcessor):
        processor.feature_extractor.save_pretrained(out)
        processor.tokenizer.save_pretrained(out)
        (out / "chat_template.json").write_text(json.dumps({"chat_template": processor.chat_template}, indent=2) + "\n")
    else:
        processor.save_pretrained(out)


def encode(processor: Any, prompts: Sequence[str], clips: Sequence[np.ndarray] | None) -> Any:
    """Model inputs for rendered prompts (one `<|AUDIO|>` per clip, in order), left-padded; audio features
    padded to the batch's longest clip on both processor paths (transformers' own processor pads to the
    window by default: 30,000 frames per clip for Qwen2.5-Omni-7B)."""
    if not clips:
        return processor(text=list(prompts), padding=True, return_tensors="pt")
    if isinstance(processor, ComposedOmniProcessor):
        return processor(text=list(prompts), audio=list(clips), padding=True, return_tensors="pt")
    cut, padded_to = cut_and_pad_length(feature_window(processor), clips)
    return processor(
        text=list(prompts),
        audio=cut,
        return_tensors="pt",
        text_kwargs={"padding": True},
        audio_kwargs={"padding": "max_length", "max_length": padded_to, "truncation": True},
    )
