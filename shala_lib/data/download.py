"""Real acquisition from the canonical URLs, with caching, verification and clear offline errors."""

from __future__ import annotations

import hashlib
import shutil
import sys
import tempfile
import urllib.request
import zipfile
from pathlib import Path

from tqdm.auto import tqdm

from shala_lib.data.canonical import DataNotFoundError
from shala_lib.data.dataset_types import RemoteFile
from shala_lib.data.definition import get_definition


def sources(name: str) -> list[RemoteFile]:
    """The files a dataset's definition says to download (`download:`)."""
    return list(get_definition(name).download)


def manual_hint(name: str) -> str | None:
    """How to obtain a dataset that cannot be downloaded (`manual:` in its definition)."""
    try:
        return get_definition(name).manual
    except KeyError:
        return None


def fetch_command(name: str, data_dir: Path | None = None) -> str:
    where = f" --data-dir {data_dir}" if data_dir is not None else ""
    return f"python -m shala_lib.data.download {name}{where}"


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
        hint = manual_hint(name)
        if hint is None:
            urls = sorted({r.url for r in sources(name) if r.name in {p.name for p in missing}})
            hint = (
                f"Download them with `{fetch_command(name, folder.parent)}` (needs internet) or fetch "
                f"{', '.join(urls)} by hand"
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
    """Download a dataset's files (its definition's `download:`) into `data_dir/name`, verifying
    checksums; files already present with the right checksum are kept."""
    files = sources(name)
    if not files:
        raise DataNotFoundError(manual_hint(name) or f"{name}: its definition has no download source")
    folder = data_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    done: list[Path] = []
    fetched: dict[str, Path] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for rf in files:
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
                extract_member(src, rf, target)
            else:
                shutil.copyfile(src, target)
            if rf.sha256 and sha256_of(target) != rf.sha256:
                got = sha256_of(target)
                target.unlink()
                raise DataNotFoundError(
                    f"{name}: checksum mismatch for {rf.member or rf.name} from {rf.url} (expected sha256 "
                    f"{rf.sha256}, got {got}); the file was removed. Fetch it by hand and place it at {target}"
                )
            done.append(target)
    return done


def extract_member(archive: Path, rf: RemoteFile, target: Path) -> None:
    """Copy one member of a downloaded zip to `target`; a download that is not the archive (an HTML
    page, a truncated file) or lacks the member raises a DataNotFoundError saying so."""
    if not zipfile.is_zipfile(archive):
        head = archive.read_bytes()[:60]
        raise DataNotFoundError(
            f"the download from {rf.url} is not a zip archive ({archive.stat().st_size} bytes starting {head!r}); "
            f"fetch it by hand and place {rf.member} at {target}"
        )
    with zipfile.ZipFile(archive) as zf:
        if rf.member not in zf.namelist():
            raise DataNotFoundError(f"{rf.url}: the archive has no {rf.member} (it has {zf.namelist()[:5]} ...)")
        with zf.open(str(rf.member)) as m, open(target, "wb") as out:
            shutil.copyfileobj(m, out)


def main(argv: list[str] | None = None) -> int:
    import argparse

    from shala_lib.paths import data_dir as resolve

    ap = argparse.ArgumentParser(description="Download a dataset from the URLs of its definition.")
    ap.add_argument("name", help="a registered dataset (e.g. chaosnli, goemotions) or a definition file")
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args(argv)
    try:
        paths = download(args.name, resolve(args.data_dir), force=args.force)
    except (DataNotFoundError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    for p in paths:
        print(p)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
