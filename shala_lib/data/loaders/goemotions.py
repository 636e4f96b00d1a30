"""GoEmotions (Demszky et al. 2020) from the raw rater-level files, mapped to Ekman (paper App. B.3).

Each raw row is one rater's judgement of one comment. A rater may tick several emotions; after
mapping to the 6 Ekman categories + neutral, the rater counts once for each distinct category
they ticked (`multi_label="count"`, the default) or spreads one unit over them
(`multi_label="split"`). Raters who ticked nothing or flagged `example_very_unclear` give no
valid label. Items with fewer than `min_raters` valid raters are dropped (counted and reported).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from shala_lib.data.canonical import (
    DataFormatError,
    DataNotFoundError,
    SkipReport,
    assign_splits,
    canonical_table,
)
from shala_lib.data.specs import GOEMOTIONS

log = logging.getLogger(__name__)

FINE_LABELS: tuple[str, ...] = (
    "admiration",
    "amusement",
    "anger",
    "annoyance",
    "approval",
    "caring",
    "confusion",
    "curiosity",
    "desire",
    "disappointment",
    "disapproval",
    "disgust",
    "embarrassment",
    "excitement",
    "fear",
    "gratitude",
    "grief",
    "joy",
    "love",
    "nervousness",
    "optimism",
    "pride",
    "realization",
    "relief",
    "remorse",
    "sadness",
    "surprise",
    "neutral",
)
# Paper Table 4 (= google-research goemotions/data/ekman_mapping.json, plus neutral).
EKMAN: dict[str, tuple[str, ...]] = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "joy": (
        "joy",
        "amusement",
        "approval",
        "excitement",
        "gratitude",
        "love",
        "optimism",
        "relief",
        "pride",
        "admiration",
        "desire",
        "caring",
    ),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}
REQUIRED: tuple[str, ...] = ("id", "text", "rater_id", "example_very_unclear", *FINE_LABELS)
FRACTIONS: tuple[float, float, float] = (0.70, 0.15, 0.15)
RAW_GLOB = "goemotions_*.csv"


def find_raw_files(root: Path) -> list[Path]:
    folder = root / "goemotions"
    files = sorted(folder.glob(RAW_GLOB)) + sorted((folder / "raw").glob(RAW_GLOB))
    if not files:
        raise DataNotFoundError(
            f"goemotions: no raw rater files ({RAW_GLOB}) in {folder} or {folder / 'raw'}. Download "
            "goemotions_1.csv, goemotions_2.csv and goemotions_3.csv with `python -m "
            f"shala_lib.data.download goemotions --data-dir {root}` (needs internet) or from "
            "https://storage.googleapis.com/gresearch/goemotions/data/full_dataset/. The aggregated "
            "simplified/ split has no rater information and cannot give label distributions."
        )
    return files


def read_raw(path: Path) -> pd.DataFrame:
    """Read one raw file, checking its schema; errors name file, line and field."""
    try:
        df = pd.read_csv(path, dtype={"id": str, "rater_id": str, "text": str}, keep_default_na=False)
    except pd.errors.ParserError as e:
        raise DataFormatError(path, f"malformed CSV: {e}") from None
    missing = [c for c in REQUIRED if c not in df.columns]
    if missing:
        raise DataFormatError(path, f"missing column(s) {missing}", line=1, field=missing[0])
    for col in FINE_LABELS:
        vals = pd.to_numeric(df[col], errors="coerce")
        bad = ~vals.isin([0, 1])
        if bad.any():
            i = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataFormatError(path, f"expected 0 or 1, got {df[col].iloc[i]!r}", line=i + 2, field=col)
        df[col] = vals.astype(np.int8)
    unclear = df["example_very_unclear"].astype(str).str.strip().str.lower()
    bad = ~unclear.isin(["true", "false"])
    if bad.any():
        i = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataFormatError(
            path,
            f"expected True/False, got {df['example_very_unclear'].iloc[i]!r}",
            line=i + 2,
            field="example_very_unclear",
        )
    df["example_very_unclear"] = unclear.eq("true")
    empty_id = df["id"].astype(str).str.len() == 0
    if empty_id.any():
        i = int(np.flatnonzero(empty_id.to_numpy())[0])
        raise DataFormatError(path, "empty comment id", line=i + 2, field="id")
    df["_source"] = str(path)
    return df


def aggregate(raw: pd.DataFrame, multi_label: Literal["count", "split"], report: SkipReport) -> pd.DataFrame:
    """Per-comment Ekman counts over valid raters."""
    ekman = np.stack([raw[list(members)].to_numpy().max(axis=1) for members in EKMAN.values()], axis=1).astype(float)
    ticked = ekman.sum(axis=1)
    unclear = raw["example_very_unclear"].to_numpy()
    valid = (ticked > 0) & ~unclear
    for reason, mask in (
        ("rater flagged example_very_unclear", unclear),
        ("rater ticked no emotion", (ticked == 0) & ~unclear),
    ):
        report.add(reason, int(mask.sum()))
    if multi_label == "split":
        ekman = ekman / np.where(ticked > 0, ticked, 1.0)[:, None]
    elif multi_label != "count":
        raise ValueError(f"multi_label must be 'count' or 'split', got {multi_label!r}")
    frame = pd.DataFrame(ekman[valid], columns=list(EKMAN))
    frame["id"] = raw["id"].to_numpy()[valid]
    frame["n_raters"] = 1
    texts = raw.loc[valid, ["id", "text"]].drop_duplicates("id").set_index("id")["text"]
    agg = frame.groupby("id", sort=True).sum()
    agg["text"] = texts.reindex(agg.index).to_numpy()
    return agg


def balanced_sample(df: pd.DataFrame, per_class: int | None, seed: int) -> pd.DataFrame:
    """Stratified sampling to about equal counts per majority emotion (cap at `per_class`)."""
    if per_class is None:
        return df
    parts = []
    for cls in GOEMOTIONS.classes:
        sub = df[df["majority"] == cls].sort_values("id", kind="stable")
        if len(sub) > per_class:
            sub = sub.sample(n=per_class, random_state=seed)
        parts.append(sub)
    return pd.concat(parts, ignore_index=True)


def load_goemotions(
    root: Path,
    seed: int,
    files: Sequence[str | Path] | None = None,
    min_raters: int = 3,
    per_class: int | None = 1000,
    multi_label: Literal["count", "split"] = "count",
) -> pd.DataFrame:
    paths = [Path(f) for f in files] if files is not None else find_raw_files(root)
    raw = pd.concat([read_raw(p) for p in paths], ignore_index=True)
    report = SkipReport(source="goemotions")
    agg = aggregate(raw, multi_label, report)
    too_few = agg["n_raters"] < min_raters
    for item_id in agg.index[too_few]:
        report.skip(f"item with fewer than {min_raters} valid raters", str(item_id))
    agg = agg[~too_few]
    report.log()
    df = canonical_table(
        GOEMOTIONS,
        ids=[str(i) for i in agg.index],
        counts=agg[list(EKMAN)].to_numpy(),
        texts={"text": agg["text"].tolist()},
        subset="ekman",
        n_annotators=agg["n_raters"].to_numpy(),
    )
    n_before = len(df)
    df = balanced_sample(df, per_class, seed)
    if len(df) < n_before:
        log.info(
            "goemotions: stratified sampling kept %d of %d items (cap %s per majority emotion)",
            len(df),
            n_before,
            per_class,
        )
    out = assign_splits(df, FRACTIONS, seed=seed)
    out.attrs["skipped"] = report.as_dict()
    out.attrs["sampled_out"] = n_before - len(df)
    return out
