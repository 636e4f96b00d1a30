"""Constrained decoding to the JSON shape {"k1": N, "k2": N, ...} (an option for small models).

A logits processor that only allows tokens keeping the generated text a prefix of
`{"k1": N, "k2": N, ..., "kC": N}` with N a number in [0, 1] written with up to 2 decimals,
then the end-of-sequence token. Keys are the spec's prompt keys, in order.

Two grammars (`GRAMMARS`): "json", any such numbers; "simplex", numbers that form a distribution:
no number exceeds what the earlier ones left of 1, and the last one is exactly the rest. Under
"simplex" `{1, 1, 1}` cannot be written, and a policy only chooses the first C-1 numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

import torch

from shala_lib.data.specs import DatasetSpec

_NUM_PREFIX = re.compile(r"^(?:0(?:\.\d{0,2})?|1(?:\.0{0,2})?)?$")
_NUM_FULL = re.compile(r"^(?:0(?:\.\d{1,2})?|1(?:\.0{1,2})?)$")


def key_segments(keys: Sequence[str]) -> list[str]:
    """The fixed text between the answer's numbers: `{"k1": `, `, "k2": `, ..., `}`."""
    return ['{"' + keys[0] + '": '] + [', "' + k + '": ' for k in keys[1:]] + ["}"]


def segments(spec: DatasetSpec) -> list[str]:
    return key_segments(spec.keys)


GRAMMARS: tuple[str, ...] = ("json", "simplex")
_CACHE_LIMIT = 20_000  # remembered prefixes per processor (each key a tuple of ids: tens of MB at most)


def _hundredths(num: str) -> tuple[int, int]:
    """(smallest, largest) value in hundredths that a number prefix can still become."""
    if num in ("", "0", "0."):
        return (0, 100) if num == "" else (0, 99)
    if num.startswith("1"):
        return 100, 100
    digits = num[2:]  # "0.d" or "0.dd"
    return (int(digits) * 10, int(digits) * 10 + 9) if len(digits) == 1 else (int(digits), int(digits))


def viable(text: str, segs: list[str], simplex: bool = False) -> tuple[bool, bool]:
    """(text is a prefix of some string of the language, text is a complete string). With `simplex`
    the numbers must sum to exactly 1 (in hundredths)."""
    pos = 0
    left = 100  # hundredths not yet given to a class (simplex)
    last = len(segs) - 2  # index of the last number
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
        if pos + len(num) == len(text):  # the number is still being written
            if not _NUM_PREFIX.match(num):
                return False, False
            if simplex:
                low, high = _hundredths(num)
                return (low <= left <= high) if j == last else low <= left, False
            return True, False
        if not _NUM_FULL.match(num):
            return False, False
        if simplex:
            value = _hundredths(num)[0]
            if value > left or (j == last and value != left):
                return False, False
            left -= value
        pos += len(num)
    return False, False


class JsonDistributionProcessor:
    """`LogitsProcessor`: mask every token that would leave the JSON shape."""

    def __init__(self, tokenizer: Any, spec: DatasetSpec, prefill: str = "", grammar: str = "json"):
        if grammar not in GRAMMARS:
            raise ValueError(f"grammar must be one of {GRAMMARS}, not {grammar!r}")
        self.tokenizer = tokenizer
        self.segs = segments(spec)
        self.prefill = prefill
        self.simplex = grammar == "simplex"
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
        # generated token ids -> the tokens allowed next: the same for every row and step that has them
        # (rollouts of one prompt share their prefixes), so each is worked out once per processor
        self._allowed: dict[tuple[int, ...], list[int]] = {}

    def reset(self) -> None:
        self.prompt_len = None

    def allowed_after(self, generated: tuple[int, ...]) -> list[int]:
        """The token ids that may follow the generated ids `generated` (the end-of-sequence token once the
        text is complete, or when nothing else can follow)."""
        if self.eos_ids and any(t in self.eos_ids for t in generated):
            return self.eos_ids  # finished (the padding after an end-of-sequence token): nothing to remember
        found = self._allowed.get(generated)
        if found is not None:
            return found
        text = self.prefill + self.tokenizer.decode(list(generated), skip_special_tokens=True)
        ok, complete = viable(text, self.segs, self.simplex)
        if complete or not ok:
            found = self.eos_ids
        else:
            found = [t for t, s in self.candidates if viable(text + s, self.segs, self.simplex)[0]] or self.eos_ids
        if len(self._allowed) >= _CACHE_LIMIT:
            self._allowed.clear()  # bounded memory: start again rather than stop remembering
        self._allowed[generated] = found
        return found

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.prompt_len is None:
            self.prompt_len = input_ids.shape[1]
        mask = torch.full_like(scores, float("-inf"))
        for row, generated in enumerate(input_ids[:, self.prompt_len :].tolist()):
            mask[row, self.allowed_after(tuple(generated))] = 0.0
        return scores + mask
