"""Pydantic's validation errors in the workbench's words, one place for every schema (dataset definitions,
experiment configs, profiles): `must be an integer, got 'x'`, `must be >= 1, got 0`, `must be true or
false, got 'yes'`. Each schema adds the file and the key path it knows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

_PLAIN = {
    "finite_number": "a finite number",
    "int_type": "an integer",
    "int_parsing": "an integer",
    "int_from_float": "an integer",
    "float_type": "a number",
    "float_parsing": "a number",
    "bool_type": "true or false",
    "bool_parsing": "true or false",
    "string_type": "a string",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
}
_BOUNDS = {"greater_than": ">", "greater_than_equal": ">=", "less_than": "<", "less_than_equal": "<="}
_BOUND_KEYS = {"greater_than": "gt", "greater_than_equal": "ge", "less_than": "lt", "less_than_equal": "le"}


def describe(err: Mapping[str, Any], patterns: Mapping[str, str] | None = None, max_input: int | None = None) -> str:
    """One pydantic error (an item of `ValidationError.errors()`) as `must be ..., got <input>`; `patterns`
    words a string pattern (regex -> what it means) instead of showing the regex; `max_input` cuts the
    input's repr."""
    kind, ctx = err["type"], err.get("ctx") or {}
    got = f", got {repr(err.get('input'))[:max_input]}"
    if kind in _PLAIN:
        return f"must be {_PLAIN[kind]}{got}"
    if kind in _BOUNDS:
        return f"must be {_BOUNDS[kind]} {ctx[_BOUND_KEYS[kind]]}{got}"
    if kind == "string_too_short":
        return f"must not be empty{got}"
    if kind == "string_pattern_mismatch":
        pattern, words = ctx.get("pattern"), patterns or {}
        return f"must be {words[pattern]}{got}" if pattern in words else f"must match {pattern}{got}"
    if kind == "literal_error":
        return f"must be one of {ctx.get('expected')}{got}"
    return f"{err['msg']}{got}"


def either(msgs: list[str]) -> str:
    """One message for a union's alternatives: `must be a string or a list, got 3`."""
    if len(msgs) == 1:
        return msgs[0]
    tails = {m[m.rindex(", got ") :] if ", got " in m else "" for m in msgs}
    if len(tails) != 1 or not all(m.startswith("must be ") for m in msgs):
        return " or ".join(msgs)
    (tail,) = tails
    heads = [m[len("must be ") : len(m) - len(tail)] for m in msgs]
    return f"must be {' or '.join(heads)}{tail}"
