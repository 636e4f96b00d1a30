"""ChaosNLI (Nie et al. 2020): SNLI and MNLI parts, 100 annotations per item."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from shala_lib.data.canonical import DataFormatError, assign_splits, canonical_table, read_jsonl
from shala_lib.data.download import require_files
from shala_lib.data.specs import CHAOSNLI

FILES: dict[str, str] = {"snli": "chaosNLI_snli.jsonl", "mnli": "chaosNLI_mnli_m.jsonl"}
FRACTIONS: tuple[float, float, float] = (0.65, 0.15, 0.20)
COUNTER_KEYS: tuple[str, str, str] = ("e", "n", "c")  # label_counter's keys, in label_count's order


def read_part(path: Path, subset: str) -> pd.DataFrame:
    """Read one ChaosNLI jsonl file; errors name file, line and field."""
    ids: list[str] = []
    counts: list[list[float]] = []
    premises: list[str] = []
    hypotheses: list[str] = []
    seen: dict[str, int] = {}
    for lineno, rec in read_jsonl(path):
        if not isinstance(rec, dict):
            raise DataFormatError(path, "expected a JSON object", line=lineno)
        for key in ("uid", "label_count", "example"):
            if key not in rec:
                raise DataFormatError(path, "missing field", line=lineno, field=key)
        lc = rec["label_count"]
        if not isinstance(lc, list) or len(lc) != 3:
            raise DataFormatError(path, f"expected 3 counts [e, n, c], got {lc!r}", lineno, "label_count")
        try:
            row = [float(x) for x in lc]
        except (TypeError, ValueError):
            raise DataFormatError(path, f"non-numeric count in {lc!r}", lineno, "label_count") from None
        if any(x < 0 or not np.isfinite(x) for x in row):
            raise DataFormatError(path, f"negative or non-finite count in {lc!r}", lineno, "label_count")
        if any(x > 2**53 for x in row):
            raise DataFormatError(path, f"a count beyond 2**53 raters in {lc!r}", lineno, "label_count")
        if any(x != int(x) for x in row) or any(isinstance(x, bool) for x in lc):
            raise DataFormatError(path, f"counts of raters must be whole numbers, got {lc!r}", lineno, "label_count")
        if sum(row) == 0:
            raise DataFormatError(path, "item with zero ratings", lineno, "label_count")
        counter = rec.get("label_counter")
        if counter is not None:  # the release gives both: they must agree (a typo'd key would vanish otherwise)
            if not isinstance(counter, dict) or set(counter) - set(COUNTER_KEYS):
                raise DataFormatError(
                    path, f"keys must be among {list(COUNTER_KEYS)}, got {counter!r}", lineno, "label_counter"
                )
            if [counter.get(k, 0) for k in COUNTER_KEYS] != row:
                raise DataFormatError(
                    path, f"{counter!r} disagrees with label_count {lc!r} (order e, n, c)", lineno, "label_counter"
                )
        uid = rec["uid"]
        if not isinstance(uid, str) or not uid.strip():
            raise DataFormatError(path, f"the item id must be a non-empty string, got {uid!r}", lineno, "uid")
        if uid in seen:
            raise DataFormatError(path, f"item id {uid!r} already on line {seen[uid]}", lineno, "uid")
        seen[uid] = lineno
        ex = rec["example"]
        for key in ("premise", "hypothesis"):
            if not isinstance(ex, dict) or key not in ex:
                raise DataFormatError(path, "missing field", line=lineno, field=f"example.{key}")
            if not isinstance(ex[key], str) or not ex[key].strip():
                raise DataFormatError(path, f"must be a non-empty text, got {ex[key]!r}", lineno, f"example.{key}")
        ids.append(uid)
        counts.append(row)
        premises.append(ex["premise"])
        hypotheses.append(ex["hypothesis"])
    return canonical_table(
        CHAOSNLI,
        ids,
        np.asarray(counts, dtype=float).reshape(-1, 3),
        {"premise": premises, "hypothesis": hypotheses},
        subset=subset,
        n_annotators=[int(sum(c)) for c in counts],
    )


def load_chaosnli(root: Path, subset: str | None, seed: int) -> pd.DataFrame:
    """Both parts or one; the 65/15/20 split is drawn within each part, so a part's split is the
    same whether it is loaded alone or with the other."""
    subsets = CHAOSNLI.subsets if subset is None else (subset,)
    if subset is not None and subset not in CHAOSNLI.subsets:
        raise ValueError(f"unknown ChaosNLI subset {subset!r}; use one of {CHAOSNLI.subsets} or None")
    folder = root / "chaosnli"
    paths = require_files("chaosnli", folder, [FILES[s] for s in subsets])
    parts = [read_part(p, s) for p, s in zip(paths, subsets)]
    df = pd.concat(parts, ignore_index=True)
    return assign_splits(df, FRACTIONS, seed=seed, group="subset")
