"""The paper's prompt templates (Tables 11-13) and the reasoning variant (App. H).

A dataset's prompt lives in its definition file (`prompt:`, the fields of `PromptTemplate`; the paper's
in `shala_lib/resources/datasets/*.yaml`). Prompts are chat messages for `tokenizer.apply_chat_template`.

Modalities (`specs.MODALITIES`): `text` is one string message, as before. With speech the user turn is
the chat template's content list: the clip first (`{"type": "audio", "audio": <path>}`), then the text
prompt. `speech+text` (the paper's MSP-Podcast setting) keeps the transcript in the text; `speech` drops
the target section, so the model has only the clip. A `system` message, when given, comes first
(`shala_lib.generation.omni.OMNI_SYSTEM_PROMPT` for Qwen2.5-Omni).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from shala_lib.data.dataset_types import MODALITIES, DatasetSpec, Modality, PromptTemplate, json_shape
from shala_lib.data.definition import get_definition
from shala_lib.data.specs import get_spec

__all__ = ["PromptTemplate", "build_messages", "get_template", "json_shape", "prefill_text", "prompt_text"]

Variant = Literal["paper", "reasoning"]
VARIANTS: tuple[str, ...] = ("paper", "reasoning")
Message = dict[str, Any]


def prefill_text(spec: DatasetSpec) -> str:
    """The opening of the JSON answer, for answer prefill: `{"entailment": `."""
    return '{"' + spec.keys[0] + '": '


def get_template(spec: DatasetSpec) -> PromptTemplate:
    """The prompt of a dataset, from its definition file (`shala_lib.data.definition`)."""
    try:
        return get_definition(spec.source or spec.name).template
    except KeyError:
        raise KeyError(
            f"no prompt for dataset {spec.name!r}: give it a definition file with a prompt section "
            "(see README, 'Your own dataset')"
        ) from None


def prompt_text(
    spec: DatasetSpec | str, item: Mapping[str, object], variant: Variant = "paper", with_target: bool = True
) -> str:
    """The user message for one item: background, target utterance, task, output constraints
    (`with_target=False`: without the target section, for speech-only prompts)."""
    spec = get_spec(spec) if isinstance(spec, str) else spec
    tpl = get_template(spec)
    missing = [f for f in spec.text_fields if f not in item] if with_target else []
    if missing:
        raise KeyError(f"item lacks text field(s) {missing} needed by the {spec.name} prompt")
    target = tpl.target.format(**{f: str(item[f]).strip() for f in spec.text_fields}) if with_target else ""
    if variant == "paper":
        constraints = tpl.output_constraints(spec)
    elif variant == "reasoning":
        constraints = tpl.reasoning_constraints(spec)
    else:
        raise ValueError(f"unknown prompt variant {variant!r}; use one of {VARIANTS}")
    sections = [s for s in (tpl.background, target, tpl.task, constraints) if s]
    return "\n\n".join(sections)


def build_messages(
    spec: DatasetSpec | str,
    item: Mapping[str, object],
    variant: Variant = "paper",
    modality: Modality = "text",
    system: str | None = None,
) -> list[Message]:
    """Chat messages for `apply_chat_template`: an optional system turn, then one user turn (a string
    for text; the clip then the text for speech modalities, the clip read from `item["audio_path"]`)."""
    if modality not in MODALITIES:
        raise ValueError(f"unknown modality {modality!r}; use one of {MODALITIES}")
    messages: list[Message] = [{"role": "system", "content": system}] if system else []
    if modality == "text":
        return [*messages, {"role": "user", "content": prompt_text(spec, item, variant)}]
    audio = item.get("audio_path")
    if audio is None or (isinstance(audio, float) and audio != audio) or not str(audio):
        raise KeyError(f"item {item.get('id', '?')!r} has no audio_path, needed by the {modality!r} prompt")
    text = prompt_text(spec, item, variant, with_target=modality == "speech+text")
    content = [{"type": "audio", "audio": str(audio)}, {"type": "text", "text": text}]
    return [*messages, {"role": "user", "content": content}]


def audio_paths(messages: list[Message]) -> list[str]:
    """The clips of a conversation, in the order their placeholders appear."""
    return [
        str(part["audio"])
        for m in messages
        if isinstance(m["content"], list)
        for part in m["content"]
        if part.get("type") == "audio"
    ]


def max_new_tokens_for(variant: Variant) -> int:
    """Generation budget per variant: the paper's 128 for the JSON answer, more for reasoning."""
    return {"paper": 128, "reasoning": 512}[variant]
