"""Bring your own annotations: CSV, JSONL or parquet, one row per rating (long) or per-class counts (wide).

`load_definition_data` reads the file a dataset definition's `data:` section names
(`shala_lib.data.definition`); `load_custom` is the same reader for a file without a definition
(`load("custom", path=..., classes=[...])`). Every problem is an error naming file, line and column:
an unknown class, a negative or non-numeric count, an item with zero ratings, two rows of one id with
different texts (both lines named), an empty text (or, with `empty_text="skip"`, a counted skip), an
unknown split name, an empty file.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np
import pandas as pd

from shala_lib.data.canonical import SPLITS, DataFormatError, SkipReport, assign_splits, canonical_table, read_jsonl
from shala_lib.data.specs import AmbiguityScheme, DatasetSpec, custom_spec

if TYPE_CHECKING:
    from shala_lib.data.definition import DatasetDefinition


def read_any(path: Path) -> pd.DataFrame:
    """Read CSV / JSONL / parquet as strings; malformed or empty files raise naming the file."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataFormatError(path, "the file is empty")
    if suffix == ".csv":
        try:
            df = pd.read_csv(path, keep_default_na=False, dtype=str)
        except pd.errors.EmptyDataError:
            raise DataFormatError(path, "the file is empty (no header)") from None
        except pd.errors.ParserError as e:
            raise DataFormatError(path, f"malformed CSV: {e}") from None
    elif suffix in (".jsonl", ".ndjson"):
        df = pd.DataFrame([rec for _, rec in read_jsonl(path)])
    elif suffix == ".parquet":
        df = pd.read_parquet(path)
    else:
        raise DataFormatError(path, f"unsupported file type {suffix!r}; use .csv, .jsonl or .parquet")
    if len(df) == 0:
        raise DataFormatError(path, "the file has a header but no rows")
    return df


def _first_line(path: Path) -> int:
    return 2 if path.suffix.lower() == ".csv" else 1  # CSV: line 1 is the header


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
    spec: DatasetSpec | None = None,
    data_format: Literal["auto", "long", "wide"] = "auto",
    counts_columns: dict[str, str] | None = None,
    rater_column: str | None = None,
    audio_column: str | None = None,
    subset_column: str | None = None,
    split_column: str | None = None,
    empty_text: Literal["error", "skip"] = "error",
    audio_root: Path | None = None,
) -> pd.DataFrame:
    """Canonical table from a user's file.

    Long format (one row per rating): columns `id_column`, `label_column` and the text fields (the same
    texts on every row of an item); optional rater column (a rater's repeated rating of an item is counted
    once, the skip reported). Wide format (per-class counts): `id_column`, one count column per class
    (`counts_columns` maps class -> column; default the class names), the text fields. `data_format="auto"`:
    wide when every count column is present, else long. Optional: a clip-path column (`audio_path`, paths
    relative to `audio_root`, default the file's folder), a subset column, a split column (train /
    validation / test) instead of seeded `fractions`.
    """
    path = Path(path)
    if not classes or len(set(classes)) != len(classes):
        raise ValueError(f"classes must be a non-empty list of distinct names, got {classes!r}")
    spec = spec or custom_spec(classes, text_fields, ambiguity_scheme, name=name)
    text_fields = spec.text_fields
    df = read_any(path).reset_index(drop=True)
    first = _first_line(path)
    header = 1 if first == 2 else None
    extra_cols = [c for c in (rater_column, audio_column, subset_column, split_column) if c]
    for col in (id_column, *text_fields, *extra_cols):
        if col not in df.columns:
            raise DataFormatError(path, f"missing column (columns: {list(df.columns)})", line=header, field=col)
    cols = counts_columns or {c: c for c in classes}
    wide = data_format == "wide" or (data_format == "auto" and all(cols[c] in df.columns for c in classes))
    report = SkipReport(source=str(path))
    df["_line"] = np.arange(len(df)) + first
    df["_id"] = df[id_column].astype(str).str.strip()
    blank_id = df["_id"] == ""
    if blank_id.any():
        raise DataFormatError(path, "empty id", line=int(df.loc[blank_id, "_line"].iloc[0]), field=id_column)
    for f in text_fields:
        df[f] = df[f].astype(str).str.strip()
        empty = df[f] == ""
        if empty.any():
            if empty_text == "error":
                raise DataFormatError(
                    path,
                    "empty text (set empty_text: skip to skip such items, counted)",
                    line=int(df.loc[empty, "_line"].iloc[0]),
                    field=f,
                )
            bad_ids = set(df.loc[empty, "_id"])
            for i in sorted(bad_ids):
                report.skip(f"item with an empty {f}", i)
            df = df[~df["_id"].isin(bad_ids)]
    if len(df) == 0:
        raise DataFormatError(path, "no item left after skipping empty texts")
    # one text per item: rows of one id must agree (both lines named)
    for f in [*text_fields, *(c for c in (audio_column, subset_column, split_column) if c)]:
        firsts = df.drop_duplicates("_id").set_index("_id")
        clash = df[df[f].astype(str) != df["_id"].map(firsts[f].astype(str))]
        if len(clash):
            row = clash.iloc[0]
            line0 = int(firsts.loc[row["_id"], "_line"])
            raise DataFormatError(
                path,
                f"id {row['_id']!r} has different {f} on lines {line0} and {int(row['_line'])}: "
                f"{str(firsts.loc[row['_id'], f])[:60]!r} vs {str(row[f])[:60]!r}",
                line=int(row["_line"]),
                field=f,
            )
    if wide:
        dup = df["_id"].duplicated(keep="first")
        if dup.any():
            row = df[dup].iloc[0]
            line0 = int(df.loc[(df["_id"] == row["_id"]) & ~dup, "_line"].iloc[0])
            raise DataFormatError(
                path,
                f"id {row['_id']!r} appears on lines {line0} and {int(row['_line'])}; wide files have one row per item",
                line=int(row["_line"]),
                field=id_column,
            )
        counts = np.zeros((len(df), len(classes)))
        for j, c in enumerate(classes):
            col = cols[c]
            if col not in df.columns:
                raise DataFormatError(path, f"missing count column for class {c!r}", line=header, field=col)
            vals = pd.to_numeric(df[col], errors="coerce").to_numpy(dtype=float)
            bad = ~np.isfinite(vals) | (vals < 0)
            if bad.any():
                i = int(np.flatnonzero(bad)[0])
                raise DataFormatError(
                    path,
                    f"count must be a non-negative number, got {df[col].iloc[i]!r}",
                    line=int(df["_line"].iloc[i]),
                    field=col,
                )
            counts[:, j] = vals
        zero = counts.sum(axis=1) == 0
        if zero.any():
            i = int(np.flatnonzero(zero)[0])
            raise DataFormatError(
                path, "item with zero ratings", line=int(df["_line"].iloc[i]), field=", ".join(cols[c] for c in classes)
            )
        firsts = df.set_index("_id")
        ids = df["_id"].tolist()
    else:
        if label_column is None or label_column not in df.columns:
            raise DataFormatError(
                path,
                f"neither per-class count columns {[cols[c] for c in classes]} nor a label column",
                line=header,
                field=label_column,
            )
        labels = df[label_column].astype(str).str.strip()
        alias = {a.lower(): c for c, spellings in spec.aliases.items() for a in spellings} | {
            c.lower(): c for c in classes
        }
        mapped = labels.str.lower().map(alias)
        if mapped.isna().any():
            i = int(np.flatnonzero(mapped.isna().to_numpy())[0])
            raise DataFormatError(
                path,
                f"unknown class {labels.iloc[i]!r}; declared classes {list(classes)}",
                line=int(df["_line"].iloc[i]),
                field=label_column,
            )
        df = df.assign(_label=pd.Categorical(mapped, categories=list(classes)))
        if rater_column:
            twice = df.duplicated(["_id", rater_column], keep="first")
            report.add("repeated rating by the same rater (first kept)", int(twice.sum()))
            df = df[~twice]
        table = pd.crosstab(df["_id"], df["_label"], dropna=False).reindex(columns=list(classes), fill_value=0)
        firsts = df.drop_duplicates("_id").set_index("_id")
        ids = table.index.tolist()
        counts = table.to_numpy(dtype=float)
    texts = {f: firsts.loc[ids, f].astype(str).tolist() for f in text_fields}
    extra: dict[str, Any] = {}
    if audio_column:
        base = audio_root or path.parent
        extra["audio_path"] = [str(p if Path(p).is_absolute() else base / p) for p in firsts.loc[ids, audio_column]]
    subset = firsts.loc[ids, subset_column].astype(str).tolist() if subset_column else spec.name
    report.log()
    out = canonical_table(
        spec, ids, counts, texts, subset=subset, n_annotators=counts.sum(axis=1).astype(int), extra=extra
    )
    if split_column:
        given = firsts.loc[out["id"], split_column].astype(str).str.strip().str.lower().to_numpy()
        unknown = sorted(set(given) - set(SPLITS))
        if unknown:
            bad_id = out["id"].to_numpy()[np.isin(given, unknown)][0]
            raise DataFormatError(
                path,
                f"unknown split {unknown[0]!r}; use {list(SPLITS)}",
                line=int(firsts.loc[bad_id, "_line"]),
                field=split_column,
            )
        out["split"] = given.tolist()
        out = out.sort_values("id", kind="stable").reset_index(drop=True)
    else:
        out = assign_splits(out, fractions, seed=seed, names=SPLITS[: len(fractions)])
    out.attrs["skipped"] = report.as_dict()
    return out


def load_definition_data(
    definition: DatasetDefinition, root: Path, seed: int, subset: str | None = None, **options: Any
) -> pd.DataFrame:
    """The canonical table of a definition's `data:` file (`subset`: only that subset's items)."""
    data = definition.data
    spec = definition.spec
    path = definition.data_path(root)
    if not path.exists():
        from shala_lib.data.canonical import DataNotFoundError

        raise DataNotFoundError(
            f"{definition.name}: annotations file {path} not found (data.path in {definition.source}, relative to "
            f"the definition or the data root {root})"
        )
    kwargs: dict[str, Any] = dict(
        classes=spec.classes,
        seed=seed,
        text_fields=spec.text_fields,
        id_column=str(data.get("id", "id")),
        label_column=data.get("label", "label"),
        fractions=definition.fractions,
        name=spec.name,
        spec=spec,
        data_format=data.get("format", "auto"),
        counts_columns=data.get("counts"),
        rater_column=data.get("rater"),
        audio_column=data.get("audio"),
        subset_column=data.get("subset"),
        split_column=data.get("split"),
        empty_text=data.get("empty_text", "error"),
    )
    kwargs.update(options)
    out = load_custom(path, **kwargs)
    if subset is not None:
        if subset not in set(out["subset"]):
            raise ValueError(f"{definition.name}: no subset {subset!r}; subsets: {sorted(set(out['subset']))}")
        out = out[out["subset"] == subset].reset_index(drop=True)
    return out
