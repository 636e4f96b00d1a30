"""Reasoning inspection (paper Section 5.3, App. H): examples per ambiguity level and how often a
model's reasoning considers more than one interpretation."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path

import pandas as pd

from shala_lib.data.specs import DatasetSpec
from shala_lib.generation.predictions import pred_vector
from shala_lib.paths import method_run_dir

_NEGATED = re.compile(
    r"\b(no|not|never|without|isn't|aren't|nor)\b[^.]{0,40}?"
    r"((multiple|several|other|alternative|different)\s+(valid\s+)?(interpretations?|readings?)|ambigu\w*)",
    re.IGNORECASE,
)
_ECHO = re.compile(r"\*\*[^*]{0,80}\*\*|[^.?!\n]*\?", re.IGNORECASE)  # bold headings, echoed questions
_MULTIPLE = re.compile(
    r"(multiple|several|two|different|alternative|another)\s+(valid\s+|possible\s+|plausible\s+)?"
    r"(interpretations?|readings?|ways to (read|interpret))|\balternatively\b|\bambiguous\b|\bambiguity\b"
    r"|could (also )?be (interpreted|read|seen) (as|in)",
    re.IGNORECASE,
)


def mentions_multiple_interpretations(text: str) -> bool:
    """True when the reasoning entertains more than one reading (negated mentions do not count)."""
    if not isinstance(text, str) or not text:
        return False
    cleaned = _NEGATED.sub(" ", _ECHO.sub(" ", text))
    return bool(_MULTIPLE.search(cleaned))


def pick_examples(items: pd.DataFrame, levels: Sequence[str], seed: int = 0) -> pd.DataFrame:
    """One item per ambiguity level (seeded), in level order."""
    rows = []
    for lvl in levels:
        part = items[items["ambiguity_level"] == lvl]
        if len(part):
            rows.append(part.sample(n=1, random_state=seed))
    return pd.concat(rows, ignore_index=True) if rows else items.iloc[:0]


def example_tables(examples: pd.DataFrame, predictions: Mapping[str, pd.DataFrame], spec: DatasetSpec) -> pd.DataFrame:
    """Tables 3 / 14-16: per example, the human distribution and each method's reasoning and
    distribution (long format: one row per example and method)."""
    by_id = {m: preds.set_index("id") for m, preds in predictions.items()}
    rows = []
    for _, ex in examples.iterrows():
        text = " / ".join(f"{f}: {ex[f]}" for f in spec.text_fields)
        rows.append(
            {
                "id": ex["id"],
                "ambiguity_level": ex["ambiguity_level"],
                "text": text,
                "method": "human",
                **dict(zip(spec.classes, ex["dist"])),
                "reasoning": "",
                "status": "",
            }
        )
        for m, preds in by_id.items():
            rec = preds.loc[ex["id"]]
            dist = pred_vector(rec["pred"], spec.n_classes)
            rows.append(
                {
                    "id": ex["id"],
                    "ambiguity_level": ex["ambiguity_level"],
                    "text": text,
                    "method": m,
                    **dict(zip(spec.classes, dist)),
                    "reasoning": rec["raw_text"],
                    "status": rec["status"],
                }
            )
    return pd.DataFrame(rows)


def interpretation_counts(
    predictions: Mapping[str, pd.DataFrame], items: pd.DataFrame, levels: Sequence[str]
) -> pd.DataFrame:
    """Share of outputs that mention multiple interpretations, per method and ambiguity level."""
    level_of = items.set_index("id")["ambiguity_level"]
    rows = []
    for m, preds in predictions.items():
        flags = preds.assign(
            level=preds["id"].map(level_of), multiple=preds["raw_text"].map(mentions_multiple_interpretations)
        )
        for lvl in levels:
            part = flags[flags["level"] == lvl]
            rows.append(
                {
                    "method": m,
                    "ambiguity_level": lvl,
                    "n": len(part),
                    "n_multiple": int(part["multiple"].sum()),
                    "share_multiple": float(part["multiple"].mean()) if len(part) else float("nan"),
                }
            )
    return pd.DataFrame(rows)


def reasoning_model_paths(
    zero_shot_model: str, train_dir: str | Path, run_prefix: str, profile: str, methods: Sequence[str]
) -> dict[str, str]:
    """{'zero_shot': model, method: <train_dir>/<run_prefix>_<method>_<profile>/final}."""
    paths = {"zero_shot": zero_shot_model}
    for m in methods:
        final = method_run_dir(train_dir, run_prefix, m, profile) / "final"
        if not final.is_dir():
            raise FileNotFoundError(f"{final} missing: run notebook 03 first")
        paths[m] = str(final)
    return paths


__all__ = [
    "example_tables",
    "interpretation_counts",
    "mentions_multiple_interpretations",
    "pick_examples",
    "reasoning_model_paths",
]
