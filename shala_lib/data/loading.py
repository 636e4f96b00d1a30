"""Dataset loaders. Every loader returns the canonical table (see `base.CANONICAL_COLUMNS`).

Public entry point: `load(name, subset=None, data_dir=None, seed=42, **options)`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pandas as pd

from shala_lib.data.canonical import (
    CANONICAL_COLUMNS,
    DataFormatError,
    DataNotFoundError,
    first_items,
    write_parquet,
)
from shala_lib.paths import data_dir as resolve_data_dir

DEFAULT_SEED = 42

__all__ = ["CANONICAL_COLUMNS", "DataFormatError", "DataNotFoundError", "first_items", "load", "write_parquet"]


def load(
    name: str,
    subset: str | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    seed: int | None = None,
    **options: Any,
) -> pd.DataFrame:
    """Load a dataset as the canonical table, with its seeded split in the `split` column.

    name: a registered dataset ('chaosnli' (subset 'snli', 'mnli' or None for both), 'goemotions',
    'msp_podcast', 'triage_probe', or one listed in SHALA_DATASETS), a definition file
    (`path/to/dataset.yaml`, see `shala_lib.data.definition`), or 'custom' for a file without a
    definition (options: path=, classes=, text_fields=, ...; see `custom.load_custom`).
    seed: the split seed (None: the definition's `seed`, else 42).
    Skipped rows are counted in `df.attrs['skipped']` and logged.
    """
    root = resolve_data_dir(data_dir)
    if name == "custom":
        from shala_lib.data.loaders.generic import load_custom

        if "path" not in options:
            raise TypeError("load('custom', ...) needs path= (and classes=)")
        path = Path(options.pop("path"))
        if "classes" not in options:
            raise TypeError("load('custom', ...) needs classes= (the ordered class list)")
        return load_custom(path, seed=DEFAULT_SEED if seed is None else seed, **options)
    from shala_lib.data.definition import get_definition

    definition = get_definition(name)
    seed = (DEFAULT_SEED if definition.seed is None else definition.seed) if seed is None else seed
    return definition.load(root, seed, subset=subset, **options)
