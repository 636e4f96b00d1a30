"""The canonical table every loader returns, plus errors, skip reports and splits."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from shala_lib.data.dataset_types import CANONICAL_COLUMNS as CANONICAL_COLUMNS  # re-exported
from shala_lib.data.dataset_types import DatasetSpec
from shala_lib.data.distributions import (
    ambiguity_level,
    distribution,
    majority_index,
    n_active,
    normalized_entropy,
)

log = logging.getLogger(__name__)

SPLITS: tuple[str, ...] = ("train", "validation", "test")


class DataFormatError(ValueError):
    """Bad input data; the message names file, line/row and field."""

    def __init__(self, path: str | Path, message: str, line: int | None = None, field: str | None = None):
        self.path, self.line, self.field = str(path), line, field
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field {field!r}"
        super().__init__(f"{where}: {message}")


class DataNotFoundError(FileNotFoundError):
    """The data is not on disk; the message says what to download and where to put it."""


@dataclass
class SkipReport:
    """Rows a loader skipped on purpose, counted by reason. Never a silent drop."""

    source: str
    counts: Counter[str] = field(default_factory=Counter)
    examples: dict[str, list[str]] = field(default_factory=dict)

    def skip(self, reason: str, example: str = "") -> None:
        self.counts[reason] += 1
        ex = self.examples.setdefault(reason, [])
        if example and len(ex) < 5:
            ex.append(example)

    def add(self, reason: str, n: int) -> None:
        if n:
            self.counts[reason] += int(n)

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def as_dict(self) -> dict[str, int]:
        return dict(sorted(self.counts.items()))

    def log(self) -> None:
        if self.total:
            log.warning("%s: skipped %d row(s): %s", self.source, self.total, self.as_dict())


def canonical_table(
    spec: DatasetSpec,
    ids: Sequence[str],
    counts: np.ndarray,
    texts: dict[str, Sequence[str]],
    subset: Sequence[str] | str,
    n_annotators: Sequence[int] | np.ndarray,
    extra: dict[str, Sequence[object]] | None = None,
) -> pd.DataFrame:
    """Build the canonical table (one row per item) from per-class counts."""
    counts = np.asarray(counts, dtype=float)
    if counts.ndim != 2 or counts.shape[1] != spec.n_classes:
        raise ValueError(f"counts must have shape (n, {spec.n_classes}), got {counts.shape}")
    if len(set(ids)) != len(ids):
        dup = [k for k, v in Counter(ids).items() if v > 1][:5]
        raise ValueError(f"{spec.name}: duplicate item ids, e.g. {dup}")
    dist = distribution(counts) if len(counts) else counts
    n = len(ids)
    frame: dict[str, object] = {
        "id": pd.array(list(ids), dtype=object),
        "dataset": spec.name,
        "subset": list(subset) if not isinstance(subset, str) else [subset] * n,
    }
    for f in spec.text_fields:
        frame[f] = list(texts[f])
    frame["counts"] = [row.tolist() for row in counts]
    frame["dist"] = [row.tolist() for row in dist]
    frame["n_annotators"] = np.asarray(n_annotators, dtype=np.int64)
    if n:
        frame["majority"] = [spec.classes[i] for i in majority_index(dist)]
        frame["entropy_norm"] = normalized_entropy(dist)
        frame["n_active"] = n_active(dist).astype(np.int64)
        frame["ambiguity_level"] = ambiguity_level(dist, spec.ambiguity_scheme, spec.entropy_bins).tolist()
    else:
        frame.update(majority=[], entropy_norm=np.zeros(0), n_active=np.zeros(0, np.int64), ambiguity_level=[])
    frame["split"] = [""] * n
    for k, v in (extra or {}).items():
        frame[k] = list(v)
    df = pd.DataFrame(frame)
    for col in ["id", "dataset", "subset", "majority", "ambiguity_level", "split", *spec.text_fields]:
        df[col] = df[col].astype(object)
    return df


def read_jsonl(path: str | Path, strict: bool = True, unique_keys: bool = False) -> list[tuple[int, object]]:
    """(line number, parsed value) for each non-blank line of a JSONL file.

    strict: a malformed line raises DataFormatError naming file and line. Otherwise it is logged
    and skipped (for files this project appends to, where a killed run can leave a partial line).
    unique_keys: an object with a key twice (JSON keeps the last one silently) is an error naming the line.
    """
    import json

    def pairs(items: list[tuple[str, object]]) -> dict[str, object]:
        out: dict[str, object] = {}
        for k, v in items:
            if k in out:
                raise _DuplicateKey(k)
            out[k] = v
        return out

    hook = pairs if unique_keys else None
    out: list[tuple[int, object]] = []
    with open(path, "rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                raise DataFormatError(
                    path,
                    f"not UTF-8 text (byte {raw[e.start]:#04x} at column {e.start + 1}); save the file as UTF-8",
                    line=lineno,
                ) from None
            if not line.strip():
                continue
            try:
                out.append((lineno, json.loads(line, object_pairs_hook=hook)))
            except _DuplicateKey as e:
                raise DataFormatError(path, "key given twice in one object", line=lineno, field=e.key) from None
            except json.JSONDecodeError as e:
                if strict:
                    raise DataFormatError(path, f"malformed JSON ({e.msg})", line=lineno) from None
                log.warning("%s, line %d: malformed row skipped (%s)", path, lineno, e.msg)
    return out


class _DuplicateKey(Exception):
    def __init__(self, key: str) -> None:
        self.key = key


def split_sizes(n: int, fractions: Sequence[float]) -> list[int]:
    """Sizes for a split by fractions: all but the last rounded, the last takes the rest."""
    if abs(sum(fractions) - 1.0) > 1e-9:
        raise ValueError(f"split fractions must sum to 1, got {fractions}")
    sizes = [int(round(n * f)) for f in fractions[:-1]]
    sizes.append(n - sum(sizes))
    return sizes


def assign_splits(
    df: pd.DataFrame,
    fractions: Sequence[float],
    seed: int,
    names: Sequence[str] = SPLITS,
    group: str | None = None,
) -> pd.DataFrame:
    """Seeded shuffle then contiguous split; with `group`, split each group separately.

    Items are sorted by id first, so the result depends only on the item set and the seed,
    never on file order.
    """
    out = df.sort_values("id", kind="stable").reset_index(drop=True)
    split = np.empty(len(out), dtype=object)
    groups = (
        [np.arange(len(out))]
        if group is None
        else [np.flatnonzero((out[group] == g).to_numpy()) for g in sorted(out[group].unique())]
    )
    for idx in groups:
        rng = np.random.default_rng(seed)
        perm = idx[rng.permutation(len(idx))]
        start = 0
        for name, size in zip(names, split_sizes(len(idx), fractions)):
            split[perm[start : start + size]] = name
            start += size
    out["split"] = pd.Series(split, dtype=object)
    return out


def fold_splits(df: pd.DataFrame, seed: int, n_folds: int = 5, train_folds: int = 3) -> pd.DataFrame:
    """Even k-fold partition: `train_folds` folds train, one validation, one test (MSP-Podcast)."""
    if n_folds != train_folds + 2:
        raise ValueError("n_folds must equal train_folds + 2 (one validation and one test fold)")
    out = df.sort_values("id", kind="stable").reset_index(drop=True)
    rng = np.random.default_rng(seed)
    fold = np.empty(len(out), dtype=np.int64)
    fold[rng.permutation(len(out))] = np.arange(len(out)) % n_folds
    names = np.array(["train"] * train_folds + ["validation", "test"], dtype=object)
    out["fold"] = fold
    out["split"] = pd.Series(names[fold], dtype=object)
    return out


def write_parquet(df: pd.DataFrame, path: str | Path) -> Path:
    """Write a table so that the same table always gives the same bytes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean = df.copy()
    clean.attrs = {}
    from shala_lib.files import atomic_path

    with atomic_path(path) as tmp:  # a unique temporary file renamed into place: never half a table
        clean.to_parquet(tmp, index=False, engine="pyarrow", compression="zstd")
    return path


def first_items(items: pd.DataFrame, n: int | None, by: str | Sequence[str] | None = None) -> pd.DataFrame:
    """The first `n` items taking each group of `by` in turn (the 1st item of every group, then the
    2nd, ...; groups in sorted order, items in table order), so a small limit still covers every
    group and a smaller limit's items are a prefix of a larger one's (methods evaluated with
    different limits share their items). `by=None`: the ambiguity level, crossed with the subset when
    the table has several (ChaosNLI: 16 items cover SNLI and MNLI at every level, so Table 1's
    ChaosNLI-M and ChaosNLI-S blocks both have items). `n=None`: all items, in table order."""
    if n is None:
        return items
    if n < 0:
        raise ValueError(f"n must be >= 0 or None, got {n}")
    if by is None:
        several = "subset" in items.columns and items["subset"].astype(str).nunique() > 1
        by = ["subset", "ambiguity_level"] if several else ["ambiguity_level"]
    cols = [by] if isinstance(by, str) else list(by)
    labels = items[cols].astype(str).agg("\x1f".join, axis=1)
    rank = labels.groupby(labels, sort=True).cumcount()
    group = labels.map({v: i for i, v in enumerate(sorted(labels.unique()))})
    order = np.lexsort((group.to_numpy(), rank.to_numpy()))
    return items.iloc[order[:n]]
