"""Prompt text for generation: a conversation rendered with the chat template (or a plain format when
the tokenizer has none), the assistant turn opened and the answer prefill appended."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

PLAIN_FORMAT = "{content}\n\nAnswer:\n"


def has_chat_template(tokenizer: Any) -> bool:
    return bool(getattr(tokenizer, "chat_template", None))


def format_prompt(tokenizer: Any, messages: Sequence[dict[str, Any]], prefill: str = "") -> str:
    """Prompt text for generation: the chat template (with the assistant turn opened) when the
    tokenizer (or processor) has one, a plain format otherwise; `prefill` starts the assistant's answer.
    Audio content renders as the template's placeholder (`<|audio_bos|><|AUDIO|><|audio_eos|>`)."""
    if has_chat_template(tokenizer):
        text = tokenizer.apply_chat_template(list(messages), tokenize=False, add_generation_prompt=True)
    else:
        if any(not isinstance(m["content"], str) for m in messages):
            raise ValueError("audio messages need a chat template (a Qwen2.5-Omni tokenizer or processor)")
        text = "\n\n".join(
            PLAIN_FORMAT.format(content=m["content"]) if m["role"] == "user" else m["content"] for m in messages
        )
    return text + prefill
