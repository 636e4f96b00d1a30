"""What a run ran on: package versions and the git commit of the checkout, recorded in every run's
`effective_config.yaml` and the runner's `summary.json` (constraints.txt pins what install.sh installs)."""

from __future__ import annotations

import importlib.metadata as md
import subprocess
from pathlib import Path
from typing import Any

# the packages whose versions change results or behaviour (everything else is pinned in constraints.txt)
TRACKED_PACKAGES: tuple[str, ...] = (
    "torch",
    "transformers",
    "trl",
    "accelerate",
    "datasets",
    "peft",
    "deepspeed",
    "numpy",
    "pandas",
    "scipy",
    "scikit-learn",
    "papermill",
    "pydantic",
)


def package_versions(packages: tuple[str, ...] = TRACKED_PACKAGES) -> dict[str, str]:
    """`{package: version}`, "not installed" for an absent one."""
    out = {}
    for pkg in packages:
        try:
            out[pkg] = md.version(pkg)
        except md.PackageNotFoundError:
            out[pkg] = "not installed"
    return out


def git_commit(folder: str | Path | None = None) -> dict[str, Any]:
    """The checkout's commit and whether its tracked files differ from it (`dirty`); `commit: None` outside
    a git checkout (an installed wheel) or without git."""
    where = Path(folder) if folder is not None else Path(__file__).resolve().parent.parent
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}
    return {"commit": commit, "dirty": bool(status.strip())}


def provenance() -> dict[str, Any]:
    """Versions of the tracked packages, the Python version and the git commit."""
    import platform

    return {"python": platform.python_version(), "packages": package_versions(), "git": git_commit()}
