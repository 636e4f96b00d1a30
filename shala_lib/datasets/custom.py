"""Bring your own annotations: CSV, JSONL or parquet, one row per rating or per-class counts."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from shala_lib.datasets.base import DataFormatError, SkipReport, assign_splits, canonical_table, read_jsonl
from shala_lib.specs import AmbiguityScheme, custom_spec


def read_any(path: Path) -> pd.DataFrame:
    """Read CSV / JSONL / parquet; malformed lines raise with their line number."""
    suffix = path.suffix.lower()
    if suffix == ".csv":
        try:
            return pd.read_csv(path, keep_default_na=False, dtype=str)
        except pd.errors.ParserError as e:
            raise DataFormatError(path, f"malformed CSV: {e}") from None
    if suffix in (".jsonl", ".ndjson"):
        rows = [rec for _, rec in read_jsonl(path)]
        return pd.DataFrame(rows)
    if suffix == ".parquet":
        return pd.read_parquet(path)
    raise DataFormatError(path, f"unsupported file type {suffix!r}; use .csv, .jsonl or .parquet")


def load_custom(
    path: str | Path,
    classes: Sequence[str],
    seed: int,
    text_fields: Sequence[str] = ("text",),
    id_column: str = "id",
    label_column: str | None = "label",
    ambiguity_scheme: AmbiguityScheme = "entropy",
    fractions: Sequence[float] = (0.70, 0.15, 0.15),
    name: str = "custom",
) -> pd.DataFrame:
    """Canonical table from a user's file.

    Long format (one row per rating): columns `id_column`, `label_column` and the text fields.
    Wide format (per-class counts): columns `id_column`, one numeric column per class, text fields.
    The format is wide when every class is a column, else long.
    """
    path = Path(path)
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be a non-empty list of distinct names, got {classes!r}")
    spec = custom_spec(classes, text_fields, ambiguity_scheme, name=name)
    df = read_any(path)
    line_offset = 2 if path.suffix.lower() == ".csv" else 1
    for col in (id_column, *text_fields):
        if col not in df.columns:
            raise DataFormatError(path, "missing column", line=1 if line_offset == 2 else None, field=col)
    wide = all(c in df.columns for c in classes)
    report = SkipReport(source=str(path))
    if wide:
        counts = np.zeros((len(df), len(classes)))
        for j, c in enumerate(classes):
            vals = pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(vals) | (vals < 0)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataFormatError(
                    path, f"count must be a non-negative number, got {df[c].iloc[i]!r}", line=i + line_offset, field=c
                )
            counts[:, j] = vals
        zero = counts.sum(axis=1) == 0
        if zero.any():
            i = int(np.flatnonzero(zero)[0])
            raise DataFormatError(path, "item with zero ratings", line=i + line_offset, field=", ".join(classes))
        ids = df[id_column].astype(str).tolist()
        texts = {f: df[f].astype(str).tolist() for f in text_fields}
        n_ann = counts.sum(axis=1)
    else:
        if label_column is None or label_column not in df.columns:
            raise DataFormatError(
                path, f"neither per-class count columns {list(classes)} nor a label column", field=label_column
            )
        labels = df[label_column].astype(str).str.strip()
        known = labels.isin(classes)
        if not known.all():
            i = int(np.flatnonzero(~known.to_numpy())[0])
            raise DataFormatError(
                path,
                f"unknown label {labels.iloc[i]!r}; declared classes {list(classes)}",
                line=i + line_offset,
                field=label_column,
            )
        work = df.assign(_label=pd.Categorical(labels, categories=list(classes)), _id=df[id_column].astype(str))
        table = pd.crosstab(work["_id"], work["_label"], dropna=False).reindex(columns=list(classes), fill_value=0)
        first = work.drop_duplicates("_id").set_index("_id")
        ids = table.index.tolist()
        counts = table.to_numpy(dtype=float)
        texts = {f: first.loc[ids, f].astype(str).tolist() for f in text_fields}
        n_ann = counts.sum(axis=1)
    report.log()
    out = canonical_table(spec, ids, counts, texts, subset=name, n_annotators=n_ann.astype(int))
    out = assign_splits(out, fractions, seed=seed, names=("train", "validation", "test")[: len(fractions)])
    out.attrs["skipped"] = report.as_dict()
    return out
