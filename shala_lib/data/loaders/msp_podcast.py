"""MSP-Podcast (Busso et al. 2025), licensed: users bring their copy (paper App. B.2, C.1.2).

Expected layout under `<data_dir>/msp_podcast/`:
  Labels/labels_detailed.csv  one row per rater, in either released form (detected from the header):
      v1.12 (Nov 2024): FileName,EmoDetail with EmoDetail like
      "WORKER00014363; Happy; Happy,Neutral,Excited; A:4.000000; V:5.000000; D:3.000000;"
      (the secondary field is absent on some rows);
      per-column: FileName,<Worker|Workers|WorkerID>,EmoClass_Major[,EmoClass_Second,EmoAct,EmoVal,EmoDom]
      with the primary emotion as a word ("Happy") or a one-letter code (A S H U F D C N; O, X: other)
  Transcripts/<stem>.txt      one transcript per audio file
  Audios/<FileName>           the clip (16 kHz mono PCM_16 WAV in the release); its path is recorded in
                              `audio_path`, read by speech runs (`shala_lib.data.audio`)
The rater's primary emotion is the label. Primary emotions outside the paper's 8 classes
(`Other-*`, codes O/X) are discarded: by default the whole item (paper: "examples containing
annotations outside this label set are discarded"); `other_policy="drop_rating"` drops only
those ratings. Splits: five even seeded folds, 3 train / 1 validation / 1 test.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from shala_lib.data.canonical import DataFormatError, SkipReport, canonical_table, fold_splits
from shala_lib.data.download import require_files
from shala_lib.data.specs import MSP_PODCAST

PRIMARY: dict[str, str] = {
    "angry": "angry",
    "anger": "angry",
    "contempt": "contempt",
    "disgust": "disgust",
    "disgusted": "disgust",
    "fear": "fear",
    "happy": "happy",
    "happiness": "happy",
    "neutral": "neutral",
    "sad": "sad",
    "sadness": "sad",
    "surprise": "surprise",
    "surprised": "surprise",
    # the one-letter codes of the per-column form and of labels_consensus.csv
    "a": "angry",
    "c": "contempt",
    "d": "disgust",
    "f": "fear",
    "h": "happy",
    "n": "neutral",
    "s": "sad",
    "u": "surprise",
}
RATER_COLUMNS = ("Worker", "Workers", "WorkerID", "Annotator")


def parse_detail(detail: str, path: Path, line: int) -> tuple[str, str]:
    """(rater id, primary emotion as written) from one EmoDetail string."""
    parts = [p.strip() for p in str(detail).split(";")]
    if len(parts) < 2 or not parts[0] or not parts[1]:
        raise DataFormatError(path, f"cannot read rater and primary emotion from {detail!r}", line, "EmoDetail")
    return parts[0], parts[1]


def detailed_form(path: Path, header: list[str] | None) -> str:
    """`detail` (FileName,EmoDetail: v1.12) or `columns` (FileName + EmoClass_Major per rater row)."""
    cols = header or []
    if "FileName" in cols and "EmoDetail" in cols:
        return "detail"
    if "FileName" in cols and "EmoClass_Major" in cols:
        return "columns"
    raise DataFormatError(
        path,
        f"unrecognised labels_detailed.csv header {cols}: expected FileName,EmoDetail (v1.12 release) or "
        "FileName,EmoClass_Major (one row per rater, optional Worker column)",
        line=1,
    )


def read_detailed(path: Path) -> pd.DataFrame:
    """(file, rater, primary, line) per rating, from either released form of labels_detailed.csv."""
    rows: list[tuple[str, str, str, int]] = []
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        form = detailed_form(path, list(reader.fieldnames or []))
        rater_col = next((c for c in RATER_COLUMNS if c in (reader.fieldnames or [])), None)
        for lineno, rec in enumerate(reader, start=2):
            fname = (rec.get("FileName") or "").strip()
            if not fname:
                raise DataFormatError(path, "empty file name", lineno, "FileName")
            if form == "detail":
                rater, primary = parse_detail(rec.get("EmoDetail") or "", path, lineno)
            else:
                primary = (rec.get("EmoClass_Major") or "").strip()
                if not primary:
                    raise DataFormatError(path, "empty primary emotion", lineno, "EmoClass_Major")
                # without a rater column each row is its own rater (no duplicate check possible)
                rater = (rec.get(rater_col) or "").strip() if rater_col else f"row{lineno}"
                if not rater:
                    raise DataFormatError(path, "empty rater id", lineno, rater_col)
            rows.append((fname, rater, primary, lineno))
    return pd.DataFrame(rows, columns=["file", "rater", "primary", "line"])


def load_msp_podcast(
    root: Path,
    seed: int,
    other_policy: Literal["drop_item", "drop_rating"] = "drop_item",
    require_transcript: bool = True,
    require_audio: bool = False,
) -> pd.DataFrame:
    """The rater distribution of every clip (8 classes), transcript in `text`, clip path in `audio_path`.
    `require_audio=True` skips (and counts) items whose clip is not under `Audios/`."""
    folder = root / "msp_podcast"
    (labels,) = require_files("msp_podcast", folder, ["Labels/labels_detailed.csv"])
    ratings = read_detailed(labels)
    report = SkipReport(source="msp_podcast")
    ratings["label"] = ratings["primary"].str.lower().map(PRIMARY)
    outside = ratings["label"].isna()
    if other_policy == "drop_item":
        bad_files = set(ratings.loc[outside, "file"])
        for f in sorted(bad_files):
            report.skip("item with a rating outside the 8 classes", f)
        ratings = ratings[~ratings["file"].isin(bad_files)]
    elif other_policy == "drop_rating":
        report.add("rating outside the 8 classes", int(outside.sum()))
        ratings = ratings[~outside]
    else:
        raise ValueError(f"other_policy must be 'drop_item' or 'drop_rating', got {other_policy!r}")
    dup = ratings.duplicated(["file", "rater"], keep="first")
    report.add("duplicate rating by the same rater (first kept)", int(dup.sum()))
    ratings = ratings[~dup]
    table = pd.crosstab(ratings["file"], ratings["label"]).reindex(columns=MSP_PODCAST.classes, fill_value=0)
    files = table.index.tolist()
    texts: list[str] = []
    keep = np.ones(len(files), dtype=bool)
    for i, f in enumerate(files):
        if require_audio and not (folder / "Audios" / f).is_file():
            report.skip("item without its clip under Audios/", f)
            keep[i] = False
            texts.append("")
            continue
        tpath = folder / "Transcripts" / (Path(f).stem + ".txt")
        if tpath.is_file():
            texts.append(tpath.read_text(encoding="utf-8").strip())
        elif require_transcript:
            report.skip("item without transcript", f)
            keep[i] = False
            texts.append("")
        else:
            texts.append("")
    report.log()
    kept = [f for f, k in zip(files, keep) if k]
    df = canonical_table(
        MSP_PODCAST,
        ids=kept,
        counts=table.to_numpy()[keep],
        texts={"text": [t for t, k in zip(texts, keep) if k]},
        subset="primary",
        n_annotators=table.to_numpy()[keep].sum(axis=1),
        extra={"audio_path": [str(folder / "Audios" / f) for f in kept]},
    )
    out = fold_splits(df, seed=seed)
    out.attrs["skipped"] = report.as_dict()
    return out
