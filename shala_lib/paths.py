"""Where data, caches and outputs live. Nothing here reads global state at import time."""

from __future__ import annotations

import os
from pathlib import Path


def project_root() -> Path:
    """The checkout root (the folder holding `shala_lib/`)."""
    return Path(__file__).resolve().parent.parent


def data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """The data root: explicit argument, else `SHALA_DATA_DIR`, else `../shared/data` when present.

    Falls back to `<project>/data` (the download target) when none of those exist.
    """
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get("SHALA_DATA_DIR")
    if env:
        return Path(env).expanduser()
    shared = project_root().parent / "shared" / "data"
    if shared.is_dir():
        return shared
    return project_root() / "data"


def cache_dir() -> Path:
    """Cache root for converted models and downloads: `SHALA_CACHE_DIR` or ~/.cache/shala_workbench."""
    env = os.environ.get("SHALA_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "shala_workbench"


def method_run_dir(train_dir: str | os.PathLike[str], run_prefix: str, method: str, profile: str) -> Path:
    """The run folder notebook 03 trains `method` into, and notebooks 04-06 read from:
    `<train_dir>/<run_prefix>_<method>_<profile>`."""
    return Path(train_dir) / f"{run_prefix}_{method}_{profile}"
