"""Run the ordered notebooks headless with papermill for one profile.

    python -m shala_lib.reproduce --profile smoke     # CPU, minutes, embedded SmolLM2
    python -m shala_lib.reproduce --profile paper     # GPUs, the paper's settings
    python -m shala_lib.reproduce --profile smoke --dataset path/to/my_dataset.yaml   # your own data

Parameters come from `papermill_params/<profile>.yaml`: a `common` mapping given to every
notebook and one mapping per notebook. A notebook mapping with `per_dataset: true` runs once per
name in the top-level `datasets` list, with `{dataset}` in its string values replaced; a dataset
that notebook 01 did not prepare (its files are absent) is skipped and reported, never silently.
`{runs}` in a value is the run folder, `runs/<profile>/` unless `--runs-dir` says otherwise: the
executed notebooks go there (`04_evaluation_chaosnli.ipynb` for a per-dataset run) with a
`summary.json` of what ran and what was skipped, and the profiles put predictions and checkpoints
under it. Tables go to `results/` and figures to `figures/` (`--results-dir`, `--figures-dir`).
On failure: exit 1, naming the notebook and the failing cell.

Data first: every dataset of the profile's `datasets` list must be present under the data root. One that
is absent is downloaded from its definition's `download:` URLs (checksums verified) unless
`--no-download`; one that is still absent stops the run before any notebook, exit 2, naming the dataset
and the command that fetches it (or how to obtain a licensed copy), except the profile's
`optional_datasets`, which are skipped and reported. `--dataset NAME_OR_DEFINITION` (repeatable) runs the
profile on those datasets instead of its list (a definition file is registered for the notebooks'
kernels and the training subprocesses through `SHALA_DATASETS`); `--model` replaces the profile's model
everywhere (zero-shot, training, reasoning).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from shala_lib.data.loading import prepared_path
from shala_lib.paths import project_root
from shala_lib.pipeline.prepare import DEFAULT_PROCESSED_DIR

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


@dataclass(frozen=True)
class Job:
    """One papermill execution: a notebook, its parameters, and the dataset of a per-dataset run."""

    notebook: str
    params: dict[str, Any]
    dataset: str | None = None

    @property
    def label(self) -> str:
        return self.notebook if self.dataset is None else f"{self.notebook}_{self.dataset}"


def load_profile(profile: str, params_dir: Path | None = None) -> dict[str, Any]:
    params_dir = params_dir or project_root() / "papermill_params"
    path = params_dir / f"{profile}.yaml"
    if not path.is_file():
        known = sorted(p.stem for p in params_dir.glob("*.yaml"))
        raise FileNotFoundError(f"no profile {profile!r} ({path} missing); known profiles: {known}")
    data = yaml.safe_load(path.read_text()) or {}
    unknown = set(data) - {"common", "datasets", "optional_datasets"} - set(NOTEBOOKS)
    if unknown:
        raise ValueError(
            f"{path}: unknown top-level key(s) {sorted(unknown)}; "
            f"known: common, datasets, optional_datasets, {NOTEBOOKS}"
        )
    for name in NOTEBOOKS:
        per = (data.get(name) or {}).get("per_dataset", False)
        if not isinstance(per, bool):
            raise ValueError(f"{path}: {name}.per_dataset must be true or false, got {per!r}")
        if per and not data.get("datasets"):
            raise ValueError(f"{path}: {name} has per_dataset: true but the profile has no top-level datasets list")
    return data


def _substitute(value: Any, names: dict[str, str]) -> Any:
    """Replace `{dataset}` and `{runs}` in every string of a parameter value."""
    if isinstance(value, str):
        for key, text in names.items():
            value = value.replace("{" + key + "}", text)
        return value
    if isinstance(value, list):
        return [_substitute(v, names) for v in value]
    if isinstance(value, dict):
        return {k: _substitute(v, names) for k, v in value.items()}
    return value


@cache
def notebook_parameters(name: str) -> frozenset[str]:
    """The parameters a notebook declares in its `parameters` cell."""
    import papermill as pm

    return frozenset(pm.inspect_notebook(str(project_root() / "notebooks" / f"{name}.ipynb")))


@dataclass(frozen=True)
class Dirs:
    """Where a profile's run writes: executed notebooks, predictions and checkpoints (`runs`, the
    `{runs}` of the profile's parameters), tables (`results`) and figures (`figures`)."""

    runs: Path
    results: Path
    figures: Path

    @classmethod
    def default(cls, profile: str) -> Dirs:
        root = project_root()
        return cls(root / "runs" / profile, root / "results", root / "figures")


def plan(
    prof: dict[str, Any],
    notebooks: list[str] | None = None,
    overrides: dict[str, Any] | None = None,
    dirs: Dirs | None = None,
) -> list[Job]:
    """The papermill executions of a profile, in order (per-dataset notebooks expanded). Notebooks
    that declare RESULTS_DIR / FIGURES_DIR get `dirs.results` / `dirs.figures`."""
    jobs = []
    for name in NOTEBOOKS:
        if notebooks is not None and name not in notebooks:
            continue
        entry = dict(prof.get(name) or {})
        per_dataset = entry.pop("per_dataset", False)
        params = {**(prof.get("common") or {}), **entry, **(overrides or {})}
        names = {}
        if dirs is not None:
            names["runs"] = str(dirs.runs)
            declared = notebook_parameters(name)
            for key, path in (("RESULTS_DIR", dirs.results), ("FIGURES_DIR", dirs.figures)):
                if key in declared:
                    params.setdefault(key, str(path))
        if per_dataset:
            jobs += [Job(name, _substitute(params, {**names, "dataset": d}), d) for d in prof["datasets"]]
        else:
            jobs.append(Job(name, _substitute(params, names)))
    return jobs


def not_prepared(prep_params: dict[str, Any], dataset: str, root: Path) -> str | None:
    """Why `dataset` has no processed table from notebook 01 run with `prep_params` (None: it has one)."""
    folder = prep_params.get("PROCESSED_DIR", DEFAULT_PROCESSED_DIR)
    path = prepared_path(folder, dataset)
    path = path if path.is_absolute() else root / path
    if path.is_file():
        return None
    return f"{dataset} was not prepared by 01_data_preparation (no {path}: its data files are absent, see notebook 01)"


class DataUnavailable(RuntimeError):
    """A dataset the profile needs is absent and could not be fetched; the message says how to get it."""


def with_datasets(prof: dict[str, Any], datasets: list[str]) -> dict[str, Any]:
    """The profile run on `datasets` (names or definition files) instead of its own list: definition
    files are registered (`SHALA_DATASETS`, inherited by kernels and subprocesses) and named by their
    definition's `name`; notebooks 01 and 02 get the same list."""
    from shala_lib.data.definition import get_definition, is_definition_path, register_paths

    register_paths([d for d in datasets if is_definition_path(d)])
    names = [get_definition(d).name for d in datasets]
    out = {**prof, "datasets": names, "optional_datasets": []}
    for nb in ("01_data_preparation", "02_zero_shot_baselines"):
        if nb in out:
            out[nb] = {**out[nb], "DATASETS": names}
    return out


def with_model(jobs: list[Job], model: str) -> list[Job]:
    """Every job with `model` in place of the profile's: MODEL, ZERO_SHOT_MODEL, and training's config."""
    out = []
    for job in jobs:
        declared = notebook_parameters(job.notebook)
        params = dict(job.params)
        for key in ("MODEL", "ZERO_SHOT_MODEL"):
            if key in declared:
                params[key] = model
        if "OVERRIDES" in declared and job.notebook == "03_grpo_training":
            params["OVERRIDES"] = [*params.get("OVERRIDES", []), f"model={model}"]
        out.append(Job(job.notebook, params, job.dataset))
    return out


def ensure_data(prof: dict[str, Any], data_root: Path, download: bool = True) -> list[str]:
    """Fetch what the profile's datasets miss (unless `download` is False); returns the optional ones
    still absent (skipped later, reported); raises DataUnavailable for any other still absent."""
    from shala_lib.data.canonical import DataNotFoundError
    from shala_lib.data.definition import get_definition
    from shala_lib.data.download import download as fetch
    from shala_lib.data.download import fetch_command

    problems, optional_absent = [], []
    for name in prof.get("datasets") or []:
        d = get_definition(name)
        missing = d.missing(data_root)
        why = ""
        if missing and d.download and download:
            print(f"{name}: {len(missing)} file(s) absent under {data_root}; downloading ...", flush=True)
            try:
                fetch(name, data_root)
            except (DataNotFoundError, OSError) as e:
                why = f" (download failed: {e})"
            missing = d.missing(data_root)
        if not missing:
            continue
        if name in (prof.get("optional_datasets") or []):
            optional_absent.append(name)
            continue
        if d.download:
            how = f"fetch it with `{fetch_command(name, data_root)}` (needs internet)"
            how += "" if download else "; the runner did not try: --no-download"
        else:
            how = d.manual or f"place it at {missing[0]} (its definition: {d.source})"
        problems.append(f"{name}: missing {', '.join(str(p) for p in missing)}{why}. To get it: {how}")
    if problems:
        raise DataUnavailable(
            "the profile needs data that is not here:\n- "
            + "\n- ".join(problems)
            + "\n(SHALA_DATA_DIR, or the profile's common DATA_DIR, sets the data root)"
        )
    return optional_absent


def run_profile(
    profile: str,
    notebooks: list[str] | None = None,
    dirs: Dirs | None = None,
    params_dir: Path | None = None,
    overrides: dict[str, Any] | None = None,
    progress: bool = True,
    datasets: list[str] | None = None,
    model: str | None = None,
    download: bool = True,
    check_data: bool = True,
) -> list[Path]:
    """Execute a profile's notebooks; returns the executed notebooks' paths. Its datasets are fetched
    first when absent (`ensure_data`); skipped per-dataset runs are printed and listed in
    `<dirs.runs>/summary.json`."""
    import papermill as pm
    from papermill.exceptions import PapermillExecutionError

    from shala_lib.paths import data_dir as resolve_data_dir

    root = project_root()
    prof = load_profile(profile, params_dir)
    if datasets:
        prof = with_datasets(prof, datasets)
    dirs = dirs or Dirs.default(profile)
    if check_data:
        ensure_data(prof, resolve_data_dir((prof.get("common") or {}).get("DATA_DIR")), download)
    jobs = plan(prof, notebooks, overrides, dirs)
    if model:
        jobs = with_model(jobs, model)
    prep_params = plan(prof, ["01_data_preparation"], overrides, dirs)[0].params
    dirs.runs.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    summary: dict[str, Any] = {"profile": profile, "ran": [], "skipped": []}
    for i, job in enumerate(jobs, start=1):
        tag = f"[{i}/{len(jobs)}] {job.label}"
        why = not_prepared(prep_params, job.dataset, root) if job.dataset is not None else None
        if why is not None:
            print(f"{tag} skipped: {why}", flush=True)
            summary["skipped"].append({"notebook": job.label, "why": why})
            continue
        src = root / "notebooks" / f"{job.notebook}.ipynb"
        dst = dirs.runs / f"{job.label}.ipynb"
        print(f"{tag} ...", flush=True)
        t0 = time.time()
        try:
            pm.execute_notebook(
                str(src),
                str(dst),
                parameters=job.params,
                cwd=str(root),
                progress_bar=progress,
                kernel_name="python3",
                log_output=False,
            )
        except PapermillExecutionError as e:
            raise NotebookFailed(
                f"{job.label}: {job.notebook}.ipynb failed in cell {e.cell_index} (execution count {e.exec_count}): "
                f"{e.ename}: {e.evalue}\nexecuted notebook with the traceback: {dst}"
            ) from None
        seconds = time.time() - t0
        print(f"{tag} done in {seconds:.0f} s -> {dst}", flush=True)
        summary["ran"].append({"notebook": job.label, "seconds": round(seconds, 1), "output": str(dst)})
        written.append(dst)
    (dirs.runs / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    print(f"{len(summary['ran'])} notebook run(s), {len(summary['skipped'])} skipped; see {dirs.runs / 'summary.json'}")
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="shala-reproduce", description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", default="smoke")
    ap.add_argument("--only", nargs="*", default=None, help=f"notebooks to run (default all): {NOTEBOOKS}")
    ap.add_argument("--runs-dir", type=Path, help="executed notebooks, predictions, checkpoints (runs/<profile>)")
    ap.add_argument("--results-dir", type=Path, help="tables (default results/)")
    ap.add_argument("--figures-dir", type=Path, help="figures (default figures/)")
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument(
        "--dataset",
        action="append",
        default=None,
        metavar="NAME_OR_DEFINITION",
        help="run the profile on this dataset (a registered name or a definition .yaml) instead of its list "
        "(repeatable)",
    )
    ap.add_argument("--model", default=None, help="replace the profile's model everywhere (Hub id or local directory)")
    ap.add_argument("--no-download", action="store_true", help="never download absent data (exit 2 instead)")
    args = ap.parse_args(argv)
    default = Dirs.default(args.profile)
    dirs = Dirs(
        (args.runs_dir or default.runs).resolve(),
        (args.results_dir or default.results).resolve(),
        (args.figures_dir or default.figures).resolve(),
    )
    try:
        run_profile(
            args.profile,
            args.only,
            dirs=dirs,
            progress=not args.no_progress,
            datasets=args.dataset,
            model=args.model,
            download=not args.no_download,
        )
    except DataUnavailable as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except (NotebookFailed, FileNotFoundError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
