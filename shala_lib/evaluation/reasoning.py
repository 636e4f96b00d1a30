"""Reasoning inspection (paper Section 5.3, App. H): examples per ambiguity level and how often a
model's reasoning considers more than one interpretation.

Beside the seeded per-level samples, the paper's own items (ChaosNLI, Tables 3 and 14-16,
`resources/paper_reasoning_items.csv`) are found by their text in the data, whichever split holds
them (`find_paper_items`), and shown with the distributions the paper reports (`paper_example_table`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from importlib import resources
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


def paper_reasoning_items(dataset: str | None = None) -> pd.DataFrame:
    """The paper's reasoning tables (3, 14-16) as stored: per `table`, the item's text fields, the
    paper's ambiguity level, and each row's distribution as printed (`row`: Ground Truth, Zero-shot /
    Baseline, SHALA-LLM / R1; `method`: human or the registry name)."""
    with resources.files("shala_lib.resources").joinpath("paper_reasoning_items.csv").open() as fh:
        table = pd.read_csv(fh)
    return table if dataset is None else table[table["dataset"] == dataset].reset_index(drop=True)


def _norm(text: object) -> str:
    """Text compared without case, surrounding whitespace or final full stop (the paper drops it)."""
    return " ".join(str(text).split()).rstrip(".").strip().lower()


def find_paper_items(table: pd.DataFrame, spec: DatasetSpec) -> pd.DataFrame:
    """The paper's reasoning items found in `table` (all splits) by their text fields: one row each, in
    the paper's level order (low, medium, high), with `source` ("paper Tables 3, 14 (test split)"),
    `paper_tables` and `paper_level` (the level the paper gives it; ours is `ambiguity_level`). Empty
    for a dataset the paper shows no reasoning for; an item not found raises (the data changed)."""
    paper = paper_reasoning_items(spec.name)
    if paper.empty:
        return table.iloc[:0].assign(source=[], paper_tables=[], paper_level=[])
    fields = [f for f in spec.text_fields if f in paper.columns]
    keys = table[fields].map(_norm).apply(tuple, axis=1)
    rows = []
    items = paper.drop_duplicates(fields)
    items = items.assign(_order=items["ambiguity_level"].map({lvl: i for i, lvl in enumerate(spec.levels)}))
    for _, item in items.sort_values("_order").iterrows():
        want = tuple(_norm(item[f]) for f in fields)
        found = table[keys == want]
        if len(found) != 1:
            raise ValueError(f"paper item {want} found {len(found)} times in {spec.name} (expected once)")
        tables = sorted(set(paper.loc[(paper[fields] == item[fields]).all(axis=1), "table"].astype(int)))
        label = ", ".join(map(str, tables))
        row = found.iloc[0]
        rows.append(
            found.assign(
                source=f"paper Table{'s' if len(tables) > 1 else ''} {label} ({row['split']} split)",
                paper_tables=label,
                paper_level=item["ambiguity_level"],
            )
        )
    return pd.concat(rows, ignore_index=True)


def paper_example_table(
    found: pd.DataFrame, predictions: Mapping[str, pd.DataFrame], spec: DatasetSpec
) -> pd.DataFrame:
    """`example_tables` for the paper's items (`find_paper_items`), each followed by the distributions
    the paper reports for them (methods "paper: <label>", no reasoning text); column `source` says
    which rows are ours ("this workbench") and which the paper's."""
    from shala_lib.scoring.methods import method_label

    ours = example_tables(found, predictions, spec).assign(source="this workbench")
    paper = paper_reasoning_items(spec.name)
    fields = [f for f in spec.text_fields if f in paper.columns]
    parts = []
    for _, ex in found.iterrows():
        mine = ours[ours["id"] == ex["id"]]
        rows = paper[(paper[fields].map(_norm) == [_norm(ex[f]) for f in fields]).all(axis=1)]
        reported = []
        for method, part in rows[rows["method"] != "human"].groupby("method", sort=False):
            reported.append(
                {
                    **mine.iloc[0][["id", "ambiguity_level", "text"]].to_dict(),
                    "method": f"paper: {method_label(method)}",
                    **{c: float(part.iloc[0][c]) for c in spec.classes},
                    "reasoning": "",
                    "status": "",
                    "source": f"paper Table{'s' if len(part) > 1 else ''} {', '.join(part['table'].astype(str))}",
                }
            )
        parts += [mine, pd.DataFrame(reported)]
    out = pd.concat(parts, ignore_index=True)
    return out.assign(paper_level=out["id"].map(found.set_index("id")["paper_level"]))


__all__ = [
    "example_tables",
    "find_paper_items",
    "paper_example_table",
    "paper_reasoning_items",
    "interpretation_counts",
    "mentions_multiple_interpretations",
    "pick_examples",
    "reasoning_model_paths",
]
