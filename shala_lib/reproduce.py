"""Run the ordered notebooks headless with papermill for one profile.

    python -m shala_lib.reproduce --profile smoke     # CPU, minutes, embedded SmolLM2
    python -m shala_lib.reproduce --profile paper     # GPUs, the paper's settings

Parameters come from `papermill_params/<profile>.yaml`: a `common` mapping given to every
notebook and one mapping per notebook. Executed notebooks go to `runs/<profile>/`; tables to
`results/`, figures to `figures/`. On failure: exit 1, naming the notebook and the failing cell.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from shala_lib.paths import project_root

NOTEBOOKS: tuple[str, ...] = (
    "01_data_preparation",
    "02_zero_shot_baselines",
    "03_grpo_training",
    "04_evaluation",
    "05_ambiguity_analysis",
    "06_reasoning_inspection",
)


class NotebookFailed(RuntimeError):
    pass


def load_profile(profile: str, params_dir: Path | None = None) -> dict[str, Any]:
    params_dir = params_dir or project_root() / "papermill_params"
    path = params_dir / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in params_dir.glob("*.yaml"))
        raise FileNotFoundError(f"no profile {profile!r} ({path} missing); known profiles: {known}")
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - {"common", "notebooks"} - set(NOTEBOOKS)
    if unknown:
        raise ValueError(f"{path}: unknown top-level key(s) {sorted(unknown)}")
    return data


def run_profile(
    profile: str,
    notebooks: list[str] | None = None,
    out_root: Path | None = None,
    params_dir: Path | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
) -> list[Path]:
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    root = project_root()
    prof = load_profile(profile, params_dir)
    selected = [n for n in NOTEBOOKS if notebooks is None or n in notebooks]
    out_dir = (out_root or root / "runs") / profile
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for i, name in enumerate(selected, start=1):
        params = {**(prof.get("common") or {}), **(prof.get(name) or {}), **(overrides or {})}
        src = root / "notebooks" / f"{name}.ipynb"
        dst = out_dir / f"{name}.ipynb"
        print(f"[{i}/{len(selected)}] {name} ...", flush=True)
        t0 = time.time()
        try:
            pm.execute_notebook(
                str(src),
                str(dst),
                parameters=params,
                cwd=str(root),
                progress_bar=progress,
                kernel_name="python3",
                log_output=False,
            )
        except PapermillExecutionError as e:
            raise NotebookFailed(
                f"{name}.ipynb failed in cell {e.cell_index} (execution count {e.exec_count}): {e.ename}: {e.evalue}\n"
                f"executed notebook with the traceback: {dst}"
            ) from None
        print(f"[{i}/{len(selected)}] {name} done in {time.time() - t0:.0f} s -> {dst}", flush=True)
        written.append(dst)
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="shala-reproduce", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--only", nargs="*", default=None, help=f"notebooks to run (default all): {NOTEBOOKS}")
    ap.add_argument("--no-progress", action="store_true")
    args = ap.parse_args(argv)
    try:
        run_profile(args.profile, args.only, progress=not args.no_progress)
    except (NotebookFailed, FileNotFoundError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
