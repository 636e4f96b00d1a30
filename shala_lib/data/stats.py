"""Dataset statistics like the paper's Tables 5-10, computed from the canonical table, and the
paper's own (`resources/paper_dataset_stats.csv`) beside them (`stats_vs_paper`)."""

from __future__ import annotations

from importlib import resources

import numpy as np
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


def paper_dataset_stats(dataset: str | None = None) -> pd.DataFrame:
    """The paper's Tables 5-10 (`resources/paper_dataset_stats.csv`): per `table`, `dataset` (display
    name: ChaosNLI, ChaosNLI-S, ChaosNLI-M, MSP-Podcast, GoEmotions), `grouping` ("majority": Tables
    5-7, by display label; "ambiguity": Tables 8-10, by our level name), `group`, the label the paper
    prints, `count` and, for the active-label tables 9-10, `mean_entropy` (4 decimals)."""
    with resources.files("shala_lib.resources").joinpath("paper_dataset_stats.csv").open() as fh:
        table = pd.read_csv(fh, dtype={"group": str})
    return table if dataset is None else table[table["dataset"] == dataset].reset_index(drop=True)


def stats_vs_paper(df: pd.DataFrame, spec: DatasetSpec | None = None) -> pd.DataFrame:
    """Our Tables 5-10 counts (and mean normalized entropies) beside the paper's, row by row, for every
    (sub)set of `df` the paper reports: columns table, dataset, grouping, group, count, paper_count,
    count_diff (ours - paper), mean_entropy, paper_mean_entropy. Empty for a dataset the paper
    does not cover."""
    spec = spec or get_spec(df["dataset"].iloc[0])
    ours = pd.concat(
        [
            majority_stats(df, spec).rename(columns={"majority_label": "group"}).assign(grouping="majority"),
            ambiguity_stats(df, spec).rename(columns={"ambiguity_level": "group"}).assign(grouping="ambiguity"),
        ],
        ignore_index=True,
    )
    paper = paper_dataset_stats()
    paper = paper[paper["dataset"].isin(set(ours["dataset"]))]
    out = paper.merge(ours, on=["dataset", "grouping", "group"], how="left", suffixes=("_paper", ""))
    out = out.rename(columns={"count_paper": "paper_count", "mean_entropy_paper": "paper_mean_entropy"})
    out["count"] = out["count"].astype(float)
    out["count_diff"] = out["count"] - out["paper_count"]
    out.loc[out["grouping"] == "majority", "mean_entropy"] = np.nan  # Tables 5-7 give counts only
    cols = ["table", "dataset", "grouping", "group", "count", "paper_count", "count_diff"]
    return out[[*cols, "mean_entropy", "paper_mean_entropy"]].reset_index(drop=True)
