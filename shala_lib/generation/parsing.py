"""A robust parser for verbalized distributions in raw completion text.

`parse_distribution(text, classes)` never raises. It reads the **first complete** (brace-closed)
JSON-like object in the text that names at least one class (after a reasoning paragraph, inside code
fences, with text around it): a model that keeps writing after its answer (a second answer, a cut-off
repeat) is scored on the answer it gave first. A final object cut short (truncated output) is read only
when no complete object names a class. Each object is parsed with `json`, then with `json_repair` for
malformed JSON (single quotes, trailing commas, truncation); without any, a per-label regex reads
`label: value` pairs. Keys are matched case-insensitively, with the spec's aliases. Percentages ("45%",
or values summing to 100) are rescaled; missing classes get 0; sums off by rounding are renormalized.

Unknown keys (a key that is no class, prompt key or alias, e.g. a misspelt `"entailmnet"`): an answer
that names at least one class and puts **positive mass on an unknown key** is unusable, status
`unknown_keys` (renormalising what is left would report a distribution the model did not give). An
unknown key whose value is zero, or not a number (`"reasoning": "..."`, `null`, a list), carries no
mass and is ignored (listed in `ParseResult.unknown_keys`). In the regex fallback only quoted keys
(`"entailmnet": 0.7`) count as keys; unquoted words before a colon are free text. An object naming no
class at all stays `missing_keys`.

Statuses: usable ones are `ok` (sums to 1 within 1e-6) and `renormalized`; unusable ones are
`empty`, `no_json`, `missing_keys` (no class named), `invalid_values` (negative, NaN, inf,
non-numeric), `duplicate_keys` (one class given two different values), `unknown_keys` (positive
mass on a key that is no class), `zero_sum`, and `parser_error` (never expected). Checked in that
order for one object: values of the classes, then unknown mass, then the sum.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import json_repair
import numpy as np

from shala_lib.data.dataset_types import label_key
from shala_lib.data.specs import DatasetSpec

USABLE: frozenset[str] = frozenset({"ok", "renormalized"})
STATUSES: tuple[str, ...] = (
    "ok",
    "renormalized",
    "empty",
    "no_json",
    "missing_keys",
    "invalid_values",
    "zero_sum",
    "duplicate_keys",
    "unknown_keys",
    "parser_error",
)
SUM_TOL = 1e-6
_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
_FENCE = re.compile(r"```(?:json|JSON|python)?")


@dataclass(frozen=True)
class ParseResult:
    """Outcome of parsing one completion."""

    dist: np.ndarray | None
    status: str
    raw_sum: float | None = None
    n_missing: int = 0
    unknown_keys: tuple[str, ...] = field(default_factory=tuple)
    method: str = ""  # "json", "repaired" or "regex"

    @property
    def usable(self) -> bool:
        return self.status in USABLE and self.dist is not None


def _key_map(classes: Sequence[str] | DatasetSpec) -> tuple[tuple[str, ...], dict[str, int]]:
    """(class names, {spelling: class index}); spellings compared as `label_key` compares them everywhere
    (NFC, case-folded, runs of whitespace, `_` and `-` as one space), so `"not_sarcastic"` finds the class
    `not_sarcastic` and a decomposed `"cafe\u0301"` the class `café`."""
    if isinstance(classes, DatasetSpec):
        names = classes.classes
        mapping = {label_key(c): i for i, c in enumerate(names)}
        for i, k in enumerate(classes.keys):
            mapping[label_key(k)] = i
        for cls, alts in classes.aliases.items():
            for a in alts:
                mapping.setdefault(label_key(a), names.index(cls))
        return tuple(names), mapping
    names = tuple(str(c) for c in classes)
    return names, {label_key(c): i for i, c in enumerate(names)}


def _normalize_key(key: Any) -> str:
    return label_key(str(key).strip().strip("\"'"))


def _object_spans(text: str) -> tuple[list[tuple[int, int]], tuple[int, int] | None]:
    """(start, end) of the brace-balanced `{...}` spans, outermost only, in order; and the span of a
    final unclosed `{` to the end of the text (truncated output), None when every `{` is closed."""
    spans: list[tuple[int, int]] = []
    stack: list[int] = []
    for i, ch in enumerate(text):
        if ch == "{":
            stack.append(i)
        elif ch == "}" and stack:
            start = stack.pop()
            if not stack:
                spans.append((start, i + 1))
    return spans, ((stack[0], len(text)) if stack else None)


def _pairs_hook(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {"__pairs__": pairs}
    return out


def _load_pairs(fragment: str) -> tuple[list[tuple[str, Any]] | None, str]:
    """Key/value pairs of the top-level object (descending into a single nested object)."""
    for method in ("json", "repaired"):
        try:
            if method == "json":
                obj = json.loads(fragment, object_pairs_hook=_pairs_hook)
            else:
                repaired = json_repair.repair_json(fragment, skip_json_loads=True)
                if not isinstance(repaired, str) or not repaired.strip():
                    continue
                obj = json.loads(repaired, object_pairs_hook=_pairs_hook)
        except (ValueError, TypeError, RecursionError):
            continue
        if isinstance(obj, dict) and "__pairs__" in obj:
            return obj["__pairs__"], method
    return None, ""


def _flatten(pairs: list[tuple[str, Any]], keys: dict[str, int]) -> list[tuple[str, Any]]:
    """If no top-level key names a class but one value is an object, use that object."""
    if any(_normalize_key(k) in keys for k, _ in pairs):
        return pairs
    for _, v in pairs:
        if isinstance(v, dict) and "__pairs__" in v:
            inner = _flatten(v["__pairs__"], keys)
            if any(_normalize_key(k) in keys for k, _ in inner):
                return inner
    return pairs


def _to_number(value: Any) -> tuple[float | None, bool]:
    """(value, was_percent); None when not a number."""
    if isinstance(value, bool) or value is None:
        return None, False
    if isinstance(value, int | float):
        return float(value), False
    if isinstance(value, str):
        s = value.strip()
        pct = s.endswith("%")
        s = s.rstrip("%").strip()
        if s.lower() in ("nan", "inf", "+inf", "-inf", "infinity", "-infinity"):
            return float(s.lower().replace("infinity", "inf")), pct
        if re.fullmatch(_NUMBER, s):
            return float(s), pct
    return None, False


def _finish(
    names: tuple[str, ...],
    found: dict[int, list[tuple[Any, bool]]],
    unknown: list[str],
    method: str,
    unknown_mass: tuple[str, ...] = (),
) -> ParseResult:
    n = len(names)
    values = np.zeros(n, dtype=float)
    any_pct = False
    for idx, entries in found.items():
        nums = []
        for raw, pct in entries:
            if pct:
                any_pct = True
            nums.append(raw)
        if any(v is None or not math.isfinite(v) or v < 0 for v in nums):
            return ParseResult(None, "invalid_values", unknown_keys=tuple(unknown), method=method)
        if len(nums) > 1 and not all(math.isclose(nums[0], v, rel_tol=1e-9, abs_tol=1e-12) for v in nums):
            return ParseResult(None, "duplicate_keys", unknown_keys=tuple(unknown), method=method)
        values[idx] = nums[0]
    if unknown_mass:
        return ParseResult(None, "unknown_keys", n_missing=n - len(found), unknown_keys=tuple(unknown), method=method)
    pct_idx = {i for i, es in found.items() if es[0][1]}
    if any_pct and len(pct_idx) < len(found) and abs(values.sum() - 100.0) <= 1.0:
        values = values / 100.0  # `"50%"` beside bare 30 and 20: all of them percentages (they sum to 100)
    elif any_pct:
        scale = np.array([0.01 if i in pct_idx else 1.0 for i in range(n)])
        values = values * scale
    elif values.max() > 1.0 and 99.0 <= values.sum() <= 101.0:
        values = values / 100.0
    total = float(values.sum())
    n_missing = n - len(found)
    if total <= 0.0:
        return ParseResult(
            None, "zero_sum", raw_sum=total, n_missing=n_missing, unknown_keys=tuple(unknown), method=method
        )
    status = "ok" if abs(total - 1.0) <= SUM_TOL else "renormalized"
    if math.isfinite(total):
        dist = values / total
    else:  # finite values whose sum overflows (e.g. two of 9e307): scale by the largest first
        scaled = values / values.max()
        dist = scaled / scaled.sum()
    return ParseResult(dist, status, raw_sum=total, n_missing=n_missing, unknown_keys=tuple(unknown), method=method)


def _has_mass(value: Any) -> bool:
    """Whether an unknown key's value is probability mass: a number (or numeric string) above zero."""
    number, _ = _to_number(value)
    return number is not None and number > 0


def _from_pairs(
    pairs: list[tuple[str, Any]], keys: dict[str, int]
) -> tuple[dict[int, list[tuple[Any, bool]]], list[str], tuple[str, ...]]:
    """(values per class, every unknown key, the unknown keys holding positive mass)."""
    found: dict[int, list[tuple[Any, bool]]] = {}
    unknown: list[str] = []
    mass: list[str] = []
    for k, v in pairs:
        idx = keys.get(_normalize_key(k))
        if idx is None:
            unknown.append(str(k))
            if _has_mass(v):
                mass.append(str(k))
            continue
        found.setdefault(idx, []).append(_to_number(v))
    return found, unknown, tuple(mass)


def _regex_fallback(text: str, names: tuple[str, ...], keys: dict[str, int]) -> dict[int, list[tuple[Any, bool]]]:
    found: dict[int, list[tuple[Any, bool]]] = {}
    for key, idx in sorted(keys.items(), key=lambda kv: -len(kv[0])):
        if len(key) < 3:
            continue  # one-letter aliases are too ambiguous in free text
        spelled = r"[\s_\-]+".join(re.escape(part) for part in key.split(" "))  # as `label_key` reads it
        pattern = re.compile(
            r"[\"']?\b" + spelled + r"\b[\"']?\s*[:=]\s*[\"']?(" + _NUMBER + r")\s*(%?)", re.IGNORECASE
        )
        matches = list(pattern.finditer(text))
        if matches and idx not in found:
            m = matches[-1]
            found[idx] = [(float(m.group(1)), m.group(2) == "%")]
    return found


_QUOTED_PAIR = re.compile(r"[\"']([^\"'\n{}:]{1,60})[\"']\s*:\s*[\"']?(" + _NUMBER + r")\s*%?")


def _regex_unknown_mass(text: str, keys: dict[str, int]) -> tuple[str, ...]:
    """Quoted keys that are no class and hold a positive number (`"entailmnet": 0.7`)."""
    return tuple(
        m.group(1)
        for m in _QUOTED_PAIR.finditer(text)
        if _normalize_key(m.group(1)) not in keys and float(m.group(2)) > 0
    )


def _parse(text: str, classes: Sequence[str] | DatasetSpec) -> ParseResult:
    names, keys = _key_map(classes)
    if not isinstance(text, str) or not text.strip():
        return ParseResult(None, "empty")
    clean = _FENCE.sub("\n", text)
    complete, truncated = _object_spans(clean)
    # complete objects in order (the first complete answer wins); then an object cut short at the end
    # (truncated output), if any
    ordered = list(complete) + ([truncated] if truncated is not None else [])
    saw_object = False
    for start, end in ordered:
        pairs, method = _load_pairs(clean[start:end])
        if pairs is None:
            continue
        saw_object = True
        found, unknown, mass = _from_pairs(_flatten(pairs, keys), keys)
        if found:
            return _finish(names, found, unknown, method, mass)
    found = _regex_fallback(clean, names, keys)
    if found:
        mass = _regex_unknown_mass(clean, keys)
        return _finish(names, found, list(mass), "regex", mass)
    return ParseResult(None, "missing_keys" if saw_object else "no_json")


def parse_distribution(text: str, classes: Sequence[str] | DatasetSpec) -> ParseResult:
    """Parse a verbalized distribution from raw completion text. Never raises.

    `classes` is the ordered class list, or a `DatasetSpec` (then its prompt keys and aliases
    are accepted too). `ParseResult.dist` is in class order when `.status` is usable.
    """
    try:
        return _parse(text, classes)
    except Exception:  # noqa: BLE001 - last-resort guard; tests assert it never triggers
        return ParseResult(None, "parser_error")


def parse_many(texts: Sequence[str], classes: Sequence[str] | DatasetSpec) -> tuple[np.ndarray, list[str]]:
    """Parse a batch: an (n, C) array with NaN rows for unusable outputs, and the statuses."""
    n_classes = len(classes.classes if isinstance(classes, DatasetSpec) else classes)
    out = np.full((len(texts), n_classes), np.nan)
    statuses: list[str] = []
    for i, t in enumerate(texts):
        r = parse_distribution(t, classes)
        statuses.append(r.status)
        if r.usable:
            out[i] = r.dist
    return out, statuses
