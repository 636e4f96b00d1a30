"""Dataset loading. Every loader returns the canonical table (see `canonical.CANONICAL_COLUMNS`).

`load(name, subset=None, data_dir=None, seed=42, **options)` reads a dataset's files. Notebook 01 writes
the result as the *prepared table* (`prepared_path(processed_dir, name)`), and every later step reads
that file (`read_prepared`, or `dataset_table` with a `processed_dir`), so the options notebook 01 loaded
with (split seed, subset, loader options) are the ones training, zero-shot, evaluation and analysis see.
"""

from __future__ import annotations

import importlib
import inspect
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
from shala_lib.data.definition import DatasetDefinition, get_definition
from shala_lib.data.loaders.generic import load_custom, load_definition_data
from shala_lib.data.specs import get_spec
from shala_lib.paths import data_dir as resolve_data_dir

DEFAULT_SEED = 42

__all__ = [
    "CANONICAL_COLUMNS",
    "DataFormatError",
    "DataNotFoundError",
    "dataset_table",
    "first_items",
    "load",
    "prepared_path",
    "read_prepared",
    "write_parquet",
]


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
    definition (options: path=, classes=, text_fields=, ...; see `loaders.generic.load_custom`).
    seed: the split seed (None: the definition's `seed`, else 42).
    Skipped rows are counted in `df.attrs['skipped']` and logged.
    """
    root = resolve_data_dir(data_dir)
    if name == "custom":
        if "path" not in options:
            raise TypeError("load('custom', ...) needs path= (and classes=)")
        path = Path(options.pop("path"))
        if "classes" not in options:
            raise TypeError("load('custom', ...) needs classes= (the ordered class list)")
        return load_custom(path, seed=DEFAULT_SEED if seed is None else seed, **options)
    definition = get_definition(name)
    seed = (DEFAULT_SEED if definition.seed is None else definition.seed) if seed is None else seed
    return load_definition(definition, root, seed, subset=subset, **options)


def load_definition(
    definition: DatasetDefinition, root: Path, seed: int, subset: str | None = None, **options: Any
) -> pd.DataFrame:
    """The canonical table of a definition: its `loader:` function, or the generic reader of its `data:`."""
    if definition.loader is None:
        return load_definition_data(definition, root, seed, subset=subset, **options)
    module, _, func = definition.loader.partition(":")
    fn = getattr(importlib.import_module(module), func)
    params = inspect.signature(fn).parameters
    kwargs: dict[str, Any] = {"seed": seed, **options}
    if "root" in params:
        kwargs["root"] = root
    if "subset" in params:
        kwargs["subset"] = subset
    elif subset is not None:
        raise ValueError(f"dataset {definition.name!r} has no subsets (got subset={subset!r})")
    return fn(**kwargs)


def prepared_path(processed_dir: str | os.PathLike[str], name: str) -> Path:
    """Where notebook 01 writes a dataset's prepared table (and where every later step reads it)."""
    return Path(processed_dir) / f"{name}.parquet"


def read_prepared(path: str | os.PathLike[str], dataset: str | None = None) -> pd.DataFrame:
    """The prepared table notebook 01 wrote. A missing file, a table without the canonical columns, or
    (with `dataset`) a table of another dataset is an error naming the file."""
    path = Path(path)
    if not path.is_file():
        raise DataNotFoundError(f"{path}: no prepared table; run notebook 01 (01_data_preparation) first")
    table = pd.read_parquet(path)
    missing = [c for c in CANONICAL_COLUMNS if c not in table.columns]
    if missing:
        raise DataFormatError(f"{path}: not a prepared table, columns {missing} are missing")
    if dataset is not None:
        want = get_spec(dataset).name
        got = sorted(set(table["dataset"].astype(str)))
        if got != [want]:
            raise DataFormatError(f"{path}: holds dataset {got}, not {want!r}")
    return table


def dataset_table(
    name: str,
    processed_dir: str | os.PathLike[str] | None = None,
    data_dir: str | os.PathLike[str] | None = None,
    seed: int | None = None,
    subset: str | None = None,
) -> pd.DataFrame:
    """The table a pipeline step works on: notebook 01's prepared table when `processed_dir` is given
    (its rows of `subset` when given), else the dataset loaded from its files (`load`)."""
    if processed_dir is None:
        return load(name, subset=subset, data_dir=data_dir, seed=seed)
    table = read_prepared(prepared_path(processed_dir, get_spec(name).name), name)
    if subset is not None:
        table = table[table["subset"].astype(str) == subset].reset_index(drop=True)
        if table.empty:
            raise ValueError(f"{name}: the prepared table has no rows of subset {subset!r}")
    return table
