"""Dataset statistics like the paper's Tables 5-10, computed from the canonical table."""

from __future__ import annotations

import pandas as pd

from shala_lib.data.specs import DatasetSpec, get_spec


def _spec_of(df: pd.DataFrame) -> DatasetSpec | None:
    try:
        return get_spec(str(df["dataset"].iloc[0]))
    except KeyError:
        return None


def _subset_label(df: pd.DataFrame, subset: str | None) -> str:
    spec = _spec_of(df)
    if spec is None:
        return str(df["dataset"].iloc[0]) if subset is None else str(subset)
    if subset is None:
        return spec.display_name
    return spec.subset_display.get(subset, f"{spec.display_name}-{subset}")


def _parts(df: pd.DataFrame) -> list[tuple[str, pd.DataFrame]]:
    spec = _spec_of(df)
    parts = [(_subset_label(df, None), df)]
    if spec is not None and spec.subsets and df["subset"].nunique() > 1:
        parts += [(_subset_label(df, s), df[df["subset"] == s]) for s in spec.subsets if (df["subset"] == s).any()]
    return parts


def majority_stats(df: pd.DataFrame, spec: DatasetSpec | None = None) -> pd.DataFrame:
    """Count of items per majority label (paper Tables 5-7), whole set and per subset."""
    spec = spec or get_spec(df["dataset"].iloc[0])
    rows = []
    for label, part in _parts(df):
        counts = part["majority"].value_counts()
        for cls in spec.classes:
            rows.append({"dataset": label, "majority_label": spec.display(cls), "count": int(counts.get(cls, 0))})
    return pd.DataFrame(rows)


def ambiguity_stats(df: pd.DataFrame, spec: DatasetSpec | None = None) -> pd.DataFrame:
    """Count and mean normalized entropy per ambiguity level (paper Tables 8-10)."""
    spec = spec or get_spec(df["dataset"].iloc[0])
    rows = []
    for label, part in _parts(df):
        grouped = part.groupby("ambiguity_level")["entropy_norm"]
        counts, means = grouped.size(), grouped.mean()
        for lvl in spec.levels:
            rows.append(
                {
                    "dataset": label,
                    "ambiguity_level": lvl,
                    "count": int(counts.get(lvl, 0)),
                    "mean_entropy": float(means.get(lvl, float("nan"))),
                }
            )
    return pd.DataFrame(rows)


def split_stats(df: pd.DataFrame, spec: DatasetSpec | None = None) -> pd.DataFrame:
    """Items per split and ambiguity level."""
    spec = spec or get_spec(df["dataset"].iloc[0])
    table = pd.crosstab(df["split"], df["ambiguity_level"]).reindex(columns=list(spec.levels), fill_value=0)
    table["total"] = table.sum(axis=1)
    return table.reindex(["train", "validation", "test"]).fillna(0).astype(int)
