"""Data preparation (notebook 01): the prepared table every later step reads, statistics tables and
ambiguity figures."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from shala_lib.data.loading import DataNotFoundError, load, prepared_path, write_parquet
from shala_lib.data.specs import get_spec
from shala_lib.data.stats import ambiguity_stats, majority_stats, split_stats
from shala_lib.pipeline.artifacts import write_table
from shala_lib.viz.plots import plot_ambiguity, save_figure

log = logging.getLogger(__name__)

DEFAULT_PROCESSED_DIR = "runs/processed"


@dataclass
class Prepared:
    name: str
    table: pd.DataFrame | None
    files: list[Path] = field(default_factory=list)
    missing: str = ""
    tables: dict[str, pd.DataFrame] = field(default_factory=dict)


def prepare_dataset(
    name: str,
    seed: int,
    data_dir: str | None,
    processed_dir: str | Path,
    results_dir: str | Path,
    figures_dir: str | Path,
    **options: Any,
) -> Prepared:
    """Load one dataset (`options`: the loader's, e.g. subset), write its prepared table
    (`prepared_path(processed_dir, name)`), statistics tables and figure. A dataset
    whose files are absent is reported (with what to download), not silently skipped."""
    try:
        df = load(name, data_dir=data_dir, seed=seed, **options)
    except DataNotFoundError as e:
        log.warning("%s: not available: %s", name, e)
        return Prepared(name, None, missing=str(e))
    spec = get_spec(name)
    name = spec.name  # a definition file is named by its definition
    out = Prepared(name, df)
    out.files.append(write_parquet(df, prepared_path(processed_dir, name)))
    out.tables = {
        "by_majority": majority_stats(df),
        "by_ambiguity": ambiguity_stats(df),
        "by_split": split_stats(df).reset_index(),
    }
    for key, table in out.tables.items():
        out.files += write_table(table, results_dir, f"{name}_stats_{key}")
    fig = plot_ambiguity(df, spec)
    out.files += save_figure(fig, figures_dir, f"fig_{name}_ambiguity_distribution")
    return out
