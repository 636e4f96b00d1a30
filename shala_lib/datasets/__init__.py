"""Dataset loaders. Every loader returns the canonical table (see `base.CANONICAL_COLUMNS`).

Public entry point: `load(name, subset=None, data_dir=None, seed=42, **options)`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from shala_lib.datasets.base import (
    CANONICAL_COLUMNS,
    DataFormatError,
    DataNotFoundError,
    first_items,
    write_parquet,
)
from shala_lib.paths import data_dir as resolve_data_dir

DEFAULT_SEED = 42
NAMES: tuple[str, ...] = ("chaosnli", "goemotions", "msp_podcast", "triage_probe", "custom")

__all__ = ["CANONICAL_COLUMNS", "DataFormatError", "DataNotFoundError", "NAMES", "first_items", "load", "write_parquet"]


def load(
    name: str,
    subset: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    seed: int = DEFAULT_SEED,
    **options: Any,
) -> pd.DataFrame:
    """Load a dataset as the canonical table, with its seeded split in the `split` column.

    name: 'chaosnli' (subset 'snli', 'mnli' or None for both), 'goemotions', 'msp_podcast',
    'triage_probe' (the generated learnability probe, `shala_lib.probe`), or 'custom'
    (options: path=, classes=, text_fields=, ...; see `custom.load_custom`).
    Skipped rows are counted in `df.attrs['skipped']` and logged.
    """
    root = resolve_data_dir(data_dir)
    if name == "chaosnli":
        from shala_lib.datasets.chaosnli import load_chaosnli

        return load_chaosnli(root, subset, seed, **options)
    if subset is not None:
        raise ValueError(f"dataset {name!r} has no subsets (got subset={subset!r})")
    if name == "goemotions":
        from shala_lib.datasets.goemotions import load_goemotions

        return load_goemotions(root, seed, **options)
    if name == "msp_podcast":
        from shala_lib.datasets.msp_podcast import load_msp_podcast

        return load_msp_podcast(root, seed, **options)
    if name == "triage_probe":  # generated from the seed (shala_lib.probe): no files
        from shala_lib.probe import triage_probe

        return triage_probe(seed=seed, **options)
    if name == "custom":
        from shala_lib.datasets.custom import load_custom

        if "path" not in options:
            raise TypeError("load('custom', ...) needs path= (and classes=)")
        path = Path(options.pop("path"))
        if "classes" not in options:
            raise TypeError("load('custom', ...) needs classes= (the ordered class list)")
        return load_custom(path, seed=seed, **options)
    raise ValueError(f"unknown dataset {name!r}; use one of {NAMES}")
