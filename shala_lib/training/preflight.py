"""Everything a run needs, checked before anything is moved, created or deleted: the dataset and its
files (subset, classes, readable), the splits the run reads (train, validation when validated, the
evaluation split, each with items), the model (a local folder that exists; `embedded:` names known).

`check_inputs` is read-only; `shala_lib.training.run.train` and `shala-train --eval-only` call it
first, so a typo fails with the earlier run untouched. Errors name the config source and the key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from shala_lib.data.specs import DatasetSpec, get_spec
from shala_lib.generation.models import resolve_model
from shala_lib.training.config import SPLITS, ExperimentConfig
from shala_lib.training.inputs import load_table


class InputError(ValueError):
    """A run's input (dataset, subset, data file, split, model) that cannot be used; names source and key."""


@dataclass(frozen=True)
class RunInputs:
    spec: DatasetSpec
    table: pd.DataFrame
    model_path: str


def _where(cfg: ExperimentConfig, key: str) -> str:
    return f"{cfg.source_of(key)}: {key}"


def check_model(cfg: ExperimentConfig) -> str:
    """The model's local path or Hub id; a name that reads as a local path must exist (a Hub id is checked
    when its tokenizer loads, still before the run folder is touched)."""
    try:
        path = resolve_model(cfg.model)
    except ValueError as e:
        raise InputError(f"{_where(cfg, 'model')}: {e}") from None
    local = cfg.model.startswith(("/", "./", "../", "~")) or Path(cfg.model).exists()
    if local and not Path(path).expanduser().is_dir():
        raise InputError(f"{_where(cfg, 'model')}: no such model folder {cfg.model!r}")
    return path


def split_counts(table: pd.DataFrame) -> dict[str, int]:
    return {s: int((table["split"] == s).sum()) for s in SPLITS}


def check_inputs(cfg: ExperimentConfig, training: bool = True, base_model: bool = True) -> RunInputs:
    """Load and check what the run reads (`training`: also the train split, and validation when
    `val_every`; `base_model`: the config's model); raises InputError naming the source and the keys,
    before any side effect."""
    try:
        spec = get_spec(cfg.dataset)
    except (ValueError, LookupError, FileNotFoundError) as e:
        raise InputError(f"{_where(cfg, 'dataset')}: {e}") from None
    keys = ["dataset"] + [k for k in ("subset", "data_dir", "processed_dir") if getattr(cfg, k) is not None]
    try:
        table = load_table(cfg)
    except (ValueError, LookupError, OSError) as e:
        named = ", ".join(f"{k}={getattr(cfg, k)!r}" for k in keys)
        sources = sorted({cfg.source_of(k) for k in keys})
        raise InputError(f"{' + '.join(sources)}: {named}: {e}") from None
    counts = split_counts(table)
    need = []
    if training:
        need.append(("train", "dataset" if cfg.subset is None else "subset"))
        if cfg.val_every:
            need.append(("validation", "val_every"))
    if cfg.eval_split is not None:
        need.append((cfg.eval_split, "eval_split"))
    for split, key in need:
        if counts[split] == 0:
            subset = f" subset {cfg.subset!r}" if cfg.subset else ""
            raise InputError(
                f"{_where(cfg, key)}: split {split!r} of {cfg.dataset!r}{subset} has no items "
                f"(items per split: {counts}); "
                + ("set eval_split to a split with items (or null: no evaluation)" if key == "eval_split" else "")
            )
    model_path = check_model(cfg) if base_model else cfg.model
    return RunInputs(spec, table, model_path)
