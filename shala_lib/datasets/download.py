"""Real acquisition from the canonical URLs, with caching, verification and clear offline errors."""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

from tqdm.auto import tqdm

from shala_lib.datasets.base import DataNotFoundError


@dataclass(frozen=True)
class RemoteFile:
    url: str
    name: str  # file name under the dataset folder
    sha256: str | None = None
    size: int | None = None
    member: str | None = None  # for zip archives: the member to extract as `name`


CHAOSNLI_ZIP = "https://www.dropbox.com/s/h4j7dqszmpt2679/chaosNLI_v1.0.zip"
GOEMOTIONS_RAW = "https://storage.googleapis.com/gresearch/goemotions/data/full_dataset/goemotions_{}.csv"

SOURCES: dict[str, list[RemoteFile]] = {
    "chaosnli": [
        RemoteFile(CHAOSNLI_ZIP, "chaosNLI_snli.jsonl", member="chaosNLI_v1.0/chaosNLI_snli.jsonl"),
        RemoteFile(CHAOSNLI_ZIP, "chaosNLI_mnli_m.jsonl", member="chaosNLI_v1.0/chaosNLI_mnli_m.jsonl"),
    ],
    "goemotions": [
        RemoteFile(
            GOEMOTIONS_RAW.format(1),
            "goemotions_1.csv",
            "cac049036bad5d68d1081f72b65f2cc51e4df82af05e3e22cfa747051cac1af3",
            14_174_600,
        ),
        RemoteFile(
            GOEMOTIONS_RAW.format(2),
            "goemotions_2.csv",
            "f699ecc5aa425c1720c1d02475f1e41815244b680bd75b282eb770d2c76cd84d",
            14_173_154,
        ),
        RemoteFile(
            GOEMOTIONS_RAW.format(3),
            "goemotions_3.csv",
            "467f1e7191af00f2e76cc7f425885c2dc304bea8aff284b10e8c460d22f2e1af",
            14_395_164,
        ),
    ],
}

MANUAL: dict[str, str] = {
    "msp_podcast": (
        "MSP-Podcast is licensed by its owners (https://www.lab-msp.com/MSP/MSP-Podcast.html). "
        "Request a copy and place it as <data_dir>/msp_podcast/Labels/labels_detailed.csv, "
        "<data_dir>/msp_podcast/Transcripts/<file>.txt and <data_dir>/msp_podcast/Audios/<file>.wav."
    ),
}


def sha256_of(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def require_files(name: str, folder: Path, files: list[str]) -> list[Path]:
    """Paths of the needed files, or a DataNotFoundError saying what to download and where."""
    paths = [folder / f for f in files]
    missing = [p for p in paths if not p.is_file()]
    if missing:
        hint = MANUAL.get(name)
        if hint is None:
            urls = sorted({r.url for r in SOURCES.get(name, []) if r.name in {p.name for p in missing}})
            hint = (
                f"Download them with `python -m shala_lib.datasets.download {name} --data-dir "
                f"{folder.parent}` (needs internet) or fetch {', '.join(urls)} by hand"
            )
        raise DataNotFoundError(
            f"{name}: missing {', '.join(str(p) for p in missing)}. {hint}. "
            "Set SHALA_DATA_DIR (or pass data_dir=) to use another data root."
        )
    return paths


def _fetch(url: str, dest: Path) -> None:
    with urllib.request.urlopen(url, timeout=60) as resp:  # noqa: S310 - fixed https URLs
        total = int(resp.headers.get("Content-Length") or 0) or None
        with open(dest, "wb") as out, tqdm(total=total, unit="B", unit_scale=True, desc=dest.name) as bar:
            for block in iter(lambda: resp.read(1 << 16), b""):
                out.write(block)
                bar.update(len(block))


def download(name: str, data_dir: Path, force: bool = False) -> list[Path]:
    """Download a dataset's files into `data_dir/name`, verifying checksums; skip files present."""
    if name in MANUAL:
        raise DataNotFoundError(MANUAL[name])
    if name not in SOURCES:
        raise KeyError(f"no download source for {name!r}; known: {sorted(SOURCES)}")
    folder = data_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    done: list[Path] = []
    fetched: dict[str, Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rf in SOURCES[name]:
            target = folder / rf.name
            if target.is_file() and not force and (rf.sha256 is None or sha256_of(target) == rf.sha256):
                done.append(target)
                continue
            if rf.url not in fetched:
                fetched[rf.url] = Path(tmp) / Path(rf.url).name
                try:
                    _fetch(rf.url, fetched[rf.url])
                except OSError as e:
                    raise DataNotFoundError(
                        f"could not download {rf.url} ({e}); fetch it by hand and place "
                        f"{rf.member or rf.name} at {target}"
                    ) from e
            src = fetched[rf.url]
            if rf.member:
                with zipfile.ZipFile(src) as zf, zf.open(rf.member) as m, open(target, "wb") as out:
                    shutil.copyfileobj(m, out)
            else:
                shutil.copyfile(src, target)
            if rf.sha256 and sha256_of(target) != rf.sha256:
                target.unlink()
                raise DataNotFoundError(f"checksum mismatch for {rf.url}; the file was removed")
            done.append(target)
    return done


def main(argv: list[str] | None = None) -> int:
    import argparse

    from shala_lib.paths import data_dir as resolve

    ap = argparse.ArgumentParser(description="Download a dataset from its canonical URL.")
    ap.add_argument("name", choices=sorted([*SOURCES, *MANUAL]))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    for p in download(args.name, resolve(args.data_dir), force=args.force):
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
