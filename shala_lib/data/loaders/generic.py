"""Bring your own annotations: CSV, JSONL or parquet, one row per rating (long) or per-class counts (wide).

`load_definition_data` reads the file a dataset definition's `data:` section names
(`shala_lib.data.definition`); `load_custom` is the same reader for a file without a definition
(`load("custom", path=..., classes=[...])`). Every problem is a `DataFormatError` naming file, line and
column: a column named twice in the header, a row with fewer fields than the header, a missing or
non-text id (ids are read as text, exactly as written: `1` and `01` are two items; a JSON/parquet number
`1.0` is refused rather than becoming `"1.0"`), an unknown class, a missing label, a count that is not a
non-negative whole number (any finite non-negative number with `fractional_counts`), an item with zero
ratings, two rows of one id with different texts (both lines named), an empty text (or, with
`empty_text="skip"`, a counted skip), an unknown split or subset name, an empty file.

Labels are matched to classes and aliases under `dataset_types.label_key` (case, surrounding whitespace,
`_`/`-`/space runs and Unicode NFC/NFD ignored: `" Joy"`, `"JOY"` and `"joy"` are one class).

Long format with a rater column: every distinct label a rater gives an item counts (multi-label data
such as VariErr-NLI or GoEmotions); an exact repeat (same item, rater and label) counts once and is
reported in `attrs["skipped"]`. `multi_label="votes"` (default): each distinct label is a whole vote;
`"split"`: a rater with k labels on an item gives 1/k to each (fractional counts). `n_annotators` is the
number of distinct raters (long with raters), the number of rows (long without), or the sum of counts
(wide; rounded, at least 1, with fractional counts).
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from shala_lib.data.canonical import SPLITS, DataFormatError, SkipReport, assign_splits, canonical_table, read_jsonl
from shala_lib.data.dataset_types import RESERVED_COLUMNS, label_key
from shala_lib.data.definition import DatasetDefinition
from shala_lib.data.specs import AmbiguityScheme, DatasetSpec, custom_spec

MAX_COUNT = 2**53  # counts above this are not exact as floats
REPEAT = "exact repeat of a rating (same item, rater and label; counted once)"


def read_any(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """The rows of a CSV / JSONL / parquet file (cells as written: CSV as strings, JSON values as parsed)
    and the line of each row (CSV: line 1 is the header; parquet: the row number). Malformed or empty files,
    a column named twice, a short CSV row or a JSONL line that is not an object raise naming the file."""
    suffix = path.suffix.lower()
    if not path.is_file():
        raise DataFormatError(path, "file not found")
    if path.stat().st_size == 0:
        raise DataFormatError(path, "the file is empty")
    if suffix == ".csv":
        df, lines = _read_csv(path)
    elif suffix in (".jsonl", ".ndjson"):
        records = read_jsonl(path, unique_keys=True)
        for lineno, rec in records:
            if not isinstance(rec, dict):
                raise DataFormatError(path, f"each line must be a JSON object, got {type(rec).__name__}", line=lineno)
        df = pd.DataFrame([rec for _, rec in records], dtype=object)
        lines = [lineno for lineno, _ in records]
    elif suffix == ".parquet":
        df = pd.read_parquet(path)
        lines = list(range(1, len(df) + 1))
    else:
        raise DataFormatError(path, f"unsupported file type {suffix!r}; use .csv, .jsonl or .parquet")
    if len(df) == 0:
        raise DataFormatError(path, "the file has a header but no rows")
    return df.reset_index(drop=True), lines


def _read_csv(path: Path) -> tuple[pd.DataFrame, list[int]]:
    """A CSV as strings, each record with the line it starts on (quoted newlines counted); a record with
    more or fewer fields than the header is an error naming its line."""
    records: list[list[str]] = []
    lines: list[int] = []
    try:
        with open(path, encoding="utf-8-sig", newline="") as fh:
            reader = csv.reader(fh)
            header = next(reader, None)
            if not header:
                raise DataFormatError(path, "the file is empty (no header)")
            twice = sorted({c for c in header if header.count(c) > 1})
            if twice:
                raise DataFormatError(path, "column named twice in the header", line=1, field=twice[0])
            start = reader.line_num + 1
            for rec in reader:
                if rec:  # a blank line is not a row
                    if len(rec) != len(header):
                        short = len(rec) < len(header)
                        raise DataFormatError(
                            path,
                            f"{len(rec)} fields for {len(header)} columns (the row has "
                            f"{'fewer' if short else 'more'} fields than the header)",
                            line=start,
                            field=header[len(rec)] if short else None,
                        )
                    records.append(rec)
                    lines.append(start)
                start = reader.line_num + 1
    except csv.Error as e:
        raise DataFormatError(path, f"malformed CSV: {e}", line=reader.line_num) from None
    except UnicodeDecodeError as e:
        raise DataFormatError(path, f"not UTF-8 text ({e.reason} at byte {e.start})") from None
    return pd.DataFrame(records, columns=header, dtype=object), lines


def _missing(v: object) -> bool:
    return v is None or v is pd.NA or (isinstance(v, float | np.floating) and math.isnan(v))


def _texts(df: pd.DataFrame, col: str, lines: list[int], path: Path, what: str, required: bool) -> list[str]:
    """A column as stripped text: strings as written, integers as digits; a missing cell is an error
    (`required`) or ""; any other value (a float, a boolean, a list) is an error naming the line."""
    out = []
    for i, v in enumerate(df[col].tolist()):
        if _missing(v):
            if required:
                raise DataFormatError(path, f"missing {what}", line=lines[i], field=col)
            out.append("")
        elif isinstance(v, str):
            if required and not v.strip():
                raise DataFormatError(path, f"empty {what}", line=lines[i], field=col)
            out.append(v.strip())
        elif isinstance(v, int | np.integer) and not isinstance(v, bool | np.bool_):
            out.append(str(int(v)))
        else:
            raise DataFormatError(
                path, f"{what} must be text (or an integer), got {v!r} ({type(v).__name__})", line=lines[i], field=col
            )
    return out


def _count(v: object, fractional: bool) -> float | str:
    """A count cell as a float, or the reason it is not one."""
    if isinstance(v, bool | np.bool_):
        return "a count is a number, not a boolean"
    if _missing(v) or (isinstance(v, str) and not v.strip()):
        return "missing count (write 0 for none)"
    try:
        x = float(v.strip()) if isinstance(v, str) else float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return "a count is a number"
    if not math.isfinite(x) or x < 0:
        return "a count is a finite non-negative number"
    if x > MAX_COUNT:
        return f"a count above {MAX_COUNT} cannot be held exactly"
    if not fractional and x != int(x):
        return "a count is a whole number (set data.fractional_counts: true for fractional counts)"
    return x


def _label_map(spec: DatasetSpec) -> dict[str, str]:
    out = {label_key(a): c for c, spellings in spec.aliases.items() for a in spellings}
    for k, c in zip(spec.keys, spec.classes):
        out[label_key(k)] = c
    return out | {label_key(c): c for c in spec.classes}


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
    fractional_counts: bool = False,
    multi_label: Literal["votes", "split"] = "votes",
) -> pd.DataFrame:
    """Canonical table from a user's file (see the module docstring for the rules).

    Long format (one row per rating): columns `id_column`, `label_column` and the text fields (the same
    texts on every row of an item); optional rater column. Wide format (per-class counts): `id_column`,
    one count column per class (`counts_columns` maps class -> column; default the class names), the text
    fields. `data_format="auto"`: wide when every count column is present, else long. Optional: a
    clip-path column (`audio_path`, paths relative to `audio_root`, default the file's folder), a subset
    column, a split column (train / validation / test) instead of seeded `fractions`.
    """
    path = Path(path)
    keys = [label_key(c) for c in classes]
    if not classes or len(set(keys)) != len(keys) or not all(keys):
        raise ValueError(
            f"classes must be a non-empty list of distinct names (case, whitespace and Unicode form ignored), "
            f"got {classes!r}"
        )
    if multi_label not in ("votes", "split"):
        raise ValueError(f"multi_label must be 'votes' or 'split', got {multi_label!r}")
    spec = spec or custom_spec(classes, text_fields, ambiguity_scheme, name=name)
    text_fields = spec.text_fields
    cols = counts_columns or {c: c for c in classes}
    if set(cols) != set(classes):
        raise ValueError(f"counts_columns must map every class to a column, got {cols!r} for classes {list(classes)}")
    leaks = sorted(set(text_fields) & ({label_column, rater_column} | set(cols.values()) | RESERVED_COLUMNS))
    if leaks:
        raise ValueError(f"text field(s) {leaks} are the label / count / rater column or a reserved column name")
    df, lines = read_any(path)
    header = 1 if path.suffix.lower() == ".csv" else None
    extra_cols = [c for c in (rater_column, audio_column, subset_column, split_column) if c]
    for col in (id_column, *text_fields, *extra_cols):
        if col not in df.columns:
            raise DataFormatError(path, f"missing column (columns: {list(df.columns)})", line=header, field=col)
    wide = data_format == "wide" or (data_format == "auto" and all(cols[c] in df.columns for c in classes))
    report = SkipReport(source=str(path))
    work = pd.DataFrame({"_line": lines, "_id": _texts(df, id_column, lines, path, "id", required=True)})
    blank = work["_id"] == ""
    if blank.any():
        raise DataFormatError(path, "empty id", line=int(work.loc[blank, "_line"].iloc[0]), field=id_column)
    for f in text_fields:
        work[f] = _texts(df, f, lines, path, "text", required=False)
    for col, what in ((audio_column, "clip path"), (subset_column, "subset"), (split_column, "split")):
        if col:
            work[col] = _texts(df, col, lines, path, what, required=True)
    if spec.subsets and subset_column:
        unknown = ~work[subset_column].isin(spec.subsets)
        if unknown.any():
            i = int(np.flatnonzero(unknown.to_numpy())[0])
            raise DataFormatError(
                path,
                f"subset {work[subset_column].iloc[i]!r} is not one of subsets.names {list(spec.subsets)}",
                line=int(work["_line"].iloc[i]),
                field=subset_column,
            )
    keep = np.ones(len(work), dtype=bool)
    for f in text_fields:
        empty = (work[f] == "").to_numpy()
        if empty.any():
            if empty_text == "error":
                raise DataFormatError(
                    path,
                    "empty text (set empty_text: skip to skip such items, counted)",
                    line=int(work["_line"].iloc[int(np.flatnonzero(empty)[0])]),
                    field=f,
                )
            bad_ids = set(work.loc[empty & keep, "_id"]) - set(work.loc[~keep, "_id"])
            for i in sorted(bad_ids):
                report.skip(f"item with an empty {f}", i)
            keep &= ~work["_id"].isin(set(work.loc[empty, "_id"])).to_numpy()
    # the rows kept, with their raw cells beside (counts / labels / raters are read from `raw`)
    raw = df[keep].reset_index(drop=True)
    work = work[keep].reset_index(drop=True)
    if len(work) == 0:
        raise DataFormatError(path, "no item left after skipping empty texts")
    # one text per item: rows of one id must agree (both lines named)
    for f in [*text_fields, *(c for c in (audio_column, subset_column, split_column) if c)]:
        firsts = work.drop_duplicates("_id").set_index("_id")
        clash = work[work[f] != work["_id"].map(firsts[f])]
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
    wlines = work["_line"].astype(int).tolist()
    if wide:
        dup = work["_id"].duplicated(keep="first")
        if dup.any():
            row = work[dup].iloc[0]
            line0 = int(work.loc[(work["_id"] == row["_id"]) & ~dup, "_line"].iloc[0])
            raise DataFormatError(
                path,
                f"id {row['_id']!r} appears on lines {line0} and {int(row['_line'])}; wide files have one row per item",
                line=int(row["_line"]),
                field=id_column,
            )
        counts = np.zeros((len(work), len(classes)))
        for j, c in enumerate(classes):
            col = cols[c]
            if col not in raw.columns:
                raise DataFormatError(path, f"missing count column for class {c!r}", line=header, field=col)
            for i, v in enumerate(raw[col].tolist()):
                x = _count(v, fractional_counts)
                if isinstance(x, str):
                    raise DataFormatError(path, f"{x}, got {v!r}", line=wlines[i], field=col)
                counts[i, j] = x
        total = counts.sum(axis=1)
        zero = total == 0
        if zero.any():
            i = int(np.flatnonzero(zero)[0])
            raise DataFormatError(
                path, "item with zero ratings", line=wlines[i], field=", ".join(cols[c] for c in classes)
            )
        n_annotators = np.maximum(1, np.rint(total)).astype(np.int64)
        firsts = work.set_index("_id")
        ids = work["_id"].tolist()
    else:
        if label_column is None or label_column not in raw.columns:
            raise DataFormatError(
                path,
                f"neither per-class count columns {[cols[c] for c in classes]} nor a label column",
                line=header,
                field=label_column,
            )
        labels = _texts(raw, label_column, wlines, path, "label", required=True)
        to_class = _label_map(spec)
        mapped = []
        for i, lab in enumerate(labels):
            if lab == "" or label_key(lab) not in to_class:
                what = "empty label" if lab == "" else f"unknown class {lab!r}"
                raise DataFormatError(
                    path, f"{what}; declared classes {list(classes)}", line=wlines[i], field=label_column
                )
            mapped.append(to_class[label_key(lab)])
        work["_label"] = mapped
        if rater_column:
            work["_rater"] = _texts(raw, rater_column, wlines, path, "rater", required=True)
            repeat = work.duplicated(["_id", "_rater", "_label"], keep="first")
            report.add(REPEAT, int(repeat.sum()))
            work = work[~repeat]
            k = work.groupby(["_id", "_rater"])["_label"].transform("size")
            weight = 1.0 / k if multi_label == "split" else pd.Series(1.0, index=work.index)
            n_by_id = work.groupby("_id")["_rater"].nunique()
        else:
            weight = pd.Series(1.0, index=work.index)
            n_by_id = work.groupby("_id").size()
        table = (
            pd.DataFrame({"_id": work["_id"], "_label": work["_label"], "w": weight.to_numpy()})
            .pivot_table(index="_id", columns="_label", values="w", aggfunc="sum", fill_value=0.0)
            .reindex(columns=list(classes), fill_value=0.0)
        )
        firsts = work.drop_duplicates("_id").set_index("_id")
        ids = table.index.tolist()
        counts = table.to_numpy(dtype=float)
        n_annotators = n_by_id.loc[ids].to_numpy(dtype=np.int64)
    texts = {f: firsts.loc[ids, f].astype(str).tolist() for f in text_fields}
    extra: dict[str, Any] = {}
    if audio_column:
        base = audio_root or path.parent
        extra["audio_path"] = [str(p if Path(p).is_absolute() else base / p) for p in firsts.loc[ids, audio_column]]
    subset = firsts.loc[ids, subset_column].astype(str).tolist() if subset_column else spec.name
    report.log()
    out = canonical_table(spec, ids, counts, texts, subset=subset, n_annotators=n_annotators, extra=extra)
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
        fractional_counts=bool(data.get("fractional_counts", False)),
        multi_label=data.get("multi_label", "votes"),
    )
    kwargs.update(options)
    out = load_custom(path, **kwargs)
    if subset is not None:
        if subset not in set(out["subset"]):
            raise ValueError(f"{definition.name}: no subset {subset!r}; subsets: {sorted(set(out['subset']))}")
        out = out[out["subset"] == subset].reset_index(drop=True)
    return out
