"""The predictions table: one JSONL row per item (id, method, model, raw text, parse status, predicted
distribution, ...), its `.meta.json` sidecar, and how it is read back and aligned with the gold
distributions. Written by `generation.inference.predict`; read by training evaluation, tables, analysis
and the widgets.
"""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shala_lib.data.canonical import read_jsonl

log = logging.getLogger(__name__)


PRED_COLUMNS = ("id", "method", "model", "variant", "prefill", "raw_text", "status", "pred", "n_tokens", "latency_s")


def sidecar_path(out_path: str | Path) -> Path:
    """`predictions_x.jsonl` -> `predictions_x.meta.json` (fingerprint and decoding settings)."""
    out_path = Path(out_path)
    return out_path.with_name(f"{out_path.stem}.meta.json")


def set_aside_if_changed(out_path: Path, fingerprint: dict[str, Any]) -> Path | None:
    """If `out_path` holds rows made under another fingerprint (or under none: a file from before
    fingerprints), move it and its sidecar to `<stem>.stale-N.jsonl` with a warning naming what
    changed, and return where it went; None when the file can be resumed or is empty."""
    if not out_path.is_file() or out_path.stat().st_size == 0:
        return None
    meta = sidecar_path(out_path)
    old = json.loads(meta.read_text()).get("fingerprint") if meta.is_file() else None
    if old == fingerprint:
        return None
    if old is None:
        what = "it has no fingerprint (written before fingerprints, or its .meta.json is gone)"
    else:
        keys = sorted(k for k in set(old) | set(fingerprint) if old.get(k) != fingerprint.get(k))
        what = "; ".join(f"{k}: {old.get(k)!r} -> {fingerprint.get(k)!r}" for k in keys)
    n = 1
    while (aside := out_path.with_name(f"{out_path.stem}.stale-{n}{out_path.suffix}")).exists():
        n += 1
    out_path.rename(aside)
    if meta.is_file():
        meta.rename(sidecar_path(aside))
    msg = (
        f"{out_path}: not resumed, the earlier predictions were made differently ({what}); "
        f"they were moved to {aside.name} and prediction starts afresh"
    )
    warnings.warn(msg, stacklevel=3)
    log.warning(msg)
    return aside


def read_predictions(path: str | Path) -> pd.DataFrame:
    """Load a predictions JSONL written by `predict` (unparsable rows have pred = None)."""
    path = Path(path)
    if not path.is_file():
        return pd.DataFrame(columns=list(PRED_COLUMNS))
    # a run killed mid-write leaves at most a partial last line: it is reported, skipped, recomputed
    rows = [rec for _, rec in read_jsonl(path, strict=False)]
    return pd.DataFrame(rows, columns=list(PRED_COLUMNS)) if rows else pd.DataFrame(columns=list(PRED_COLUMNS))


def drop_partial_last_line(path: Path) -> None:
    """A run killed mid-write leaves a last line without its newline: cut it off before appending,
    or the next record would be glued onto it and lost."""
    if not path.is_file() or path.stat().st_size == 0:
        return
    with open(path, "rb+") as fh:
        fh.seek(-1, 2)
        if fh.read(1) == b"\n":
            return
        fh.seek(0)
        data = fh.read()
        keep = data.rfind(b"\n") + 1
        log.warning(
            "%s: dropping a partial last line (%d bytes) left by an interrupted run", path.name, len(data) - keep
        )
        fh.truncate(keep)


def pred_vector(value: object, n_classes: int) -> np.ndarray:
    """A stored prediction (list, or None / NaN when unparsable) as a vector; NaN row if unusable."""
    if value is None or (isinstance(value, float) and np.isnan(value)):
        return np.full(n_classes, np.nan)
    return np.asarray(value, dtype=float)


def attach_gold(
    preds: pd.DataFrame, items: pd.DataFrame, n_classes: int
) -> tuple[np.ndarray, np.ndarray, pd.DataFrame]:
    """(pred array with NaN rows for unparsable, gold array, merged table) aligned on id."""
    merged = items.merge(preds.drop(columns=[c for c in ("dataset",) if c in preds.columns]), on="id", how="inner")
    if len(merged) < len(preds):
        raise ValueError(f"{len(preds) - len(merged)} prediction id(s) are not in the gold table")
    pred = np.array([pred_vector(p, n_classes) for p in merged["pred"]]).reshape(len(merged), n_classes)
    gold = np.asarray(merged["dist"].tolist(), dtype=float)
    return pred, gold, merged
