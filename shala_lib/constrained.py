"""Constrained decoding to the JSON shape {"k1": N, "k2": N, ...} (an option for small models).

A logits processor that only allows tokens keeping the generated text a prefix of
`{"k1": N, "k2": N, ..., "kC": N}` with N a number in [0, 1] written with up to 2 decimals,
then the end-of-sequence token. Keys are the spec's prompt keys, in order.
"""

from __future__ import annotations

import re
from typing import Any

import torch

from shala_lib.specs import DatasetSpec

_NUM_PREFIX = re.compile(r"^(?:0(?:\.\d{0,2})?|1(?:\.0{0,2})?)?$")
_NUM_FULL = re.compile(r"^(?:0(?:\.\d{1,2})?|1(?:\.0{1,2})?)$")


def segments(spec: DatasetSpec) -> list[str]:
    keys = spec.keys
    return ['{"' + keys[0] + '": '] + [', "' + k + '": ' for k in keys[1:]] + ["}"]


def viable(text: str, segs: list[str]) -> tuple[bool, bool]:
    """(text is a prefix of some string of the language, text is a complete string)."""
    pos = 0
    for j, seg in enumerate(segs):
        rest = text[pos:]
        if len(rest) <= len(seg):
            return seg.startswith(rest), False
        if not rest.startswith(seg):
            return False, False
        pos += len(seg)
        if j == len(segs) - 1:
            return pos == len(text), pos == len(text)
        # a number, ended by the first character of the next segment
        m = re.match(r"[0-9.]*", text[pos:])
        num = m.group(0) if m else ""
        if pos + len(num) == len(text):
            return bool(_NUM_PREFIX.match(num)), False
        if not _NUM_FULL.match(num):
            return False, False
        pos += len(num)
    return False, False


class JsonDistributionProcessor:
    """`LogitsProcessor`: mask every token that would leave the JSON shape."""

    def __init__(self, tokenizer: Any, spec: DatasetSpec, prefill: str = ""):
        self.tokenizer = tokenizer
        self.segs = segments(spec)
        self.prefill = prefill
        alphabet = set("".join(self.segs)) | set("0123456789.")
        vocab = tokenizer.get_vocab()
        self.candidates: list[tuple[int, str]] = []
        for tok_id in vocab.values():
            s = tokenizer.decode([tok_id])
            if s and set(s) <= alphabet:
                self.candidates.append((tok_id, s))
        eos = tokenizer.eos_token_id
        self.eos_ids = [eos] if isinstance(eos, int) else list(eos or [])
        self.prompt_len: int | None = None

    def reset(self) -> None:
        self.prompt_len = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_len is None:
            self.prompt_len = input_ids.shape[1]
        mask = torch.full_like(scores, float("-inf"))
        for row in range(input_ids.shape[0]):
            text = self.prefill + self.tokenizer.decode(input_ids[row, self.prompt_len :], skip_special_tokens=True)
            ok, complete = viable(text, self.segs)
            if complete or not ok:
                mask[row, self.eos_ids] = 0.0
                continue
            allowed = [t for t, s in self.candidates if viable(text + s, self.segs)[0]]
            mask[row, allowed or self.eos_ids] = 0.0
        return scores + mask
