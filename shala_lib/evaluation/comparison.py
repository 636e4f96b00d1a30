"""Every method's predictions on the same test items: finding the prediction files of a profile's
runs, reading them, keeping the items all methods predicted, aligning them with the gold distributions
(notebooks 04 and 05)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from shala_lib.data.specs import DatasetSpec
from shala_lib.paths import method_run_dir


def load_method_predictions(
    frames: Mapping[str, pd.DataFrame], items: pd.DataFrame, n_classes: int
) -> dict[str, np.ndarray]:
    """Prediction arrays aligned with `items` (NaN rows where a method has no usable output)."""
    from shala_lib.generation.predictions import attach_gold

    out = {}
    for method, preds in frames.items():
        preds = preds[preds["id"].astype(str).isin(set(items["id"].astype(str)))]
        missing = set(items["id"]) - set(preds["id"])
        if missing:
            raise ValueError(
                f"{method}: no prediction for {len(missing)} of {len(items)} items (e.g. {sorted(missing)[:3]})"
            )
        pred, _, merged = attach_gold(preds, items, n_classes)
        order = pd.Series(np.arange(len(merged)), index=merged["id"].to_numpy())
        out[method] = pred[order.loc[items["id"]].to_numpy()]
    return out


def collect_prediction_files(
    zero_shot_file: str | Path, train_dir: str | Path, run_prefix: str, profile: str, methods: Sequence[str]
) -> dict[str, Path]:
    """{'zero_shot': ..., method: <train_dir>/<run_prefix>_<method>_<profile>/predictions_test.jsonl}."""
    files = {"zero_shot": Path(zero_shot_file)}
    for m in methods:
        files[m] = method_run_dir(train_dir, run_prefix, m, profile) / "predictions_test.jsonl"
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise FileNotFoundError(f"prediction file(s) missing: {missing}; run notebooks 02 and 03 first")
    return files


def common_items(frames: Mapping[str, pd.DataFrame], table: pd.DataFrame, split: str = "test") -> pd.DataFrame:
    """Items of `split` that every method predicted (methods must be compared on the same items)."""
    ids = None
    for preds in frames.values():
        got = set(preds["id"].astype(str))
        ids = got if ids is None else ids & got
    part = table[table["split"] == split]
    return part[part["id"].astype(str).isin(ids or set())]


@dataclass
class Comparison:
    """Every method's predictions on the same test items, with the data-only reference rows."""

    spec: DatasetSpec
    table: pd.DataFrame
    files: dict[str, Path]
    items: pd.DataFrame
    gold: np.ndarray
    preds: dict[str, np.ndarray]  # methods first, then the data-only reference rows when requested


def load_comparison(
    dataset: str,
    zero_shot_file: str | Path,
    train_dir: str | Path,
    run_prefix: str,
    profile: str,
    methods: Sequence[str],
    data_dir: str | None = None,
    seed: int = 42,
    with_references: bool = False,
    processed_dir: str | Path | None = None,
) -> Comparison:
    """The dataset (notebook 01's prepared table when `processed_dir` is given, else its files with
    `data_dir` and `seed`) and every method's test predictions, restricted to the items all predicted."""
    from shala_lib.data.loading import dataset_table
    from shala_lib.data.specs import get_spec
    from shala_lib.evaluation.reference import reference_predictions
    from shala_lib.generation.predictions import read_predictions

    spec = get_spec(dataset)
    table = dataset_table(dataset, processed_dir, data_dir, seed)
    files = collect_prediction_files(zero_shot_file, train_dir, run_prefix, profile, methods)
    frames = {m: read_predictions(p) for m, p in files.items()}  # each file read once
    items = common_items(frames, table)
    gold = np.asarray(items["dist"].tolist())
    preds = load_method_predictions(frames, items, spec.n_classes)
    if with_references:
        preds.update(reference_predictions(table, items=items))
    return Comparison(spec, table, files, items, gold, preds)
