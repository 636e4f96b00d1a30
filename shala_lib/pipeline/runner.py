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

Checked before the first notebook runs, and refused with exit 2 and a message naming the bad value and
the valid choices, nothing written: an unknown profile, a profile that does not validate (unknown keys
at any level, parameters a notebook does not declare; `shala_lib.pipeline.profiles`), unknown `--only`
notebook names, unknown `--dataset` names (neither registered nor an existing definition file), and
output folders the runner cannot write (a file where a folder is needed, not writable). `summary.json`
(written atomically, rewritten after every notebook) gives the run's `status` (running / done /
failed) and every notebook's: done (seconds, output), failed (the error), skipped (the reason).

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
import os
import sys
import time
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from shala_lib.data.loading import prepared_path
from shala_lib.files import YamlFileError, write_text_atomic
from shala_lib.paths import project_root
from shala_lib.pipeline.prepare import DEFAULT_PROCESSED_DIR
from shala_lib.pipeline.profiles import ALL_NOTEBOOKS, NOTEBOOKS, ProfileError, profile_notebooks, read_profile

__all__ = ["NOTEBOOKS", "Dirs", "Job", "NotebookFailed", "UsageError", "load_profile", "main", "plan", "run_profile"]


class NotebookFailed(RuntimeError):
    pass


class UsageError(ValueError):
    """A request the runner refuses before running anything (exit 2): the message names the bad value
    and the valid choices."""


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
    """`papermill_params/<profile>.yaml`, read strictly and validated (`shala_lib.pipeline.profiles`):
    unknown keys, notebook parameters a notebook does not declare and wrong types are a ProfileError
    naming the file and the key; an unknown profile is a FileNotFoundError naming the known ones."""
    return read_profile(profile, params_dir or project_root() / "papermill_params", notebook_parameters)


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
    """The papermill executions of a profile, in order (per-dataset notebooks expanded): `notebooks`, else
    the profile's own (`profiles.profile_notebooks`). Notebooks that declare RESULTS_DIR / FIGURES_DIR get
    `dirs.results` / `dirs.figures`."""
    jobs = []
    chosen = profile_notebooks(prof) if notebooks is None else notebooks
    for name in ALL_NOTEBOOKS:
        if name not in chosen:
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


def model_parameters(notebook: str) -> frozenset[str]:
    """The parameters `--model` sets in a notebook (`with_model`): MODEL and ZERO_SHOT_MODEL where declared,
    and training's OVERRIDES (a `model=` override) in notebook 03; empty: the notebook takes no model."""
    declared = notebook_parameters(notebook)
    keys = declared & {"MODEL", "ZERO_SHOT_MODEL"}
    if notebook == "03_grpo_training" and "OVERRIDES" in declared:
        keys |= {"OVERRIDES"}
    return keys


def with_model(jobs: list[Job], model: str) -> list[Job]:
    """Every job with `model` in place of the profile's: MODEL, ZERO_SHOT_MODEL, and training's config."""
    out = []
    for job in jobs:
        params = dict(job.params)
        for key in model_parameters(job.notebook):
            params[key] = [*params.get(key, []), f"model={model}"] if key == "OVERRIDES" else model
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


def unusable_folder(path: Path) -> str | None:
    """Why the runner cannot write into `path` (None: it can, or can create it). Nothing is created."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            return f"{path} exists and is not a folder"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"{path} is not writable"
        return None
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        return f"{parent} is a file, so the folder {path} cannot be created"
    if not os.access(parent, os.W_OK | os.X_OK):
        return f"{parent} is not writable, so the folder {path} cannot be created"
    return None


def check_request(
    profile: str,
    notebooks: list[str] | None,
    dirs: Dirs,
    params_dir: Path | None = None,
    datasets: list[str] | None = None,
    allow_cpu: bool = False,
    gpus: int | None = None,
    model: str | None = None,
) -> dict[str, Any]:
    """Everything about a run that can be checked before it starts, checked without side effects
    (nothing written, nothing registered): the profile (known, valid, a GPU profile where a GPU is), the
    notebook names, the dataset names or definition files, the output folders. Returns the profile; raises
    UsageError, ProfileError, YamlFileError or FileNotFoundError (an unknown profile): the runner's exit 2."""
    from shala_lib.data.definition import get_definition, is_definition_path
    from shala_lib.training.dispatch import gpu_count

    params_dir = params_dir or project_root() / "papermill_params"
    prof = load_profile(profile, params_dir)  # FileNotFoundError naming the known profiles
    why = needs_gpu_refusal(prof, profile, allow_cpu, gpu_count() if gpus is None else gpus)
    if why is not None:
        raise UsageError(why)
    if notebooks is not None:
        own = list(profile_notebooks(prof))
        if not notebooks:
            raise UsageError(f"--only: name at least one notebook; choose from {own}")
        bad = [n for n in notebooks if n not in own]
        if bad:
            if all(n in ALL_NOTEBOOKS for n in bad):
                raise UsageError(f"--only: notebook(s) {bad} not in profile {profile!r}; choose from {own}")
            raise UsageError(f"--only: unknown notebook(s) {bad}; choose from {own}")
    running = notebooks if notebooks is not None else list(profile_notebooks(prof))
    if datasets is not None and not any(notebook_parameters(n) & {"DATASETS", "DATASET"} for n in running):
        raise UsageError(f"--dataset: profile {profile!r} runs {running}, which take no dataset")
    if model is not None and not any(model_parameters(n) for n in running):
        raise UsageError(f"--model: profile {profile!r} runs {running}, which take no model")
    if datasets is not None:
        for d in datasets:
            if is_definition_path(d) and not Path(d).is_file():
                raise UsageError(f"--dataset: {d!r}: no such definition file")
            try:
                get_definition(d)
            except KeyError as e:
                raise UsageError(f"--dataset: {e.args[0]}") from None
    else:
        path = params_dir / f"{profile}.yaml"
        for i, d in enumerate(prof.get("datasets") or []):
            try:
                get_definition(d)
            except KeyError as e:
                raise ProfileError(path, f"datasets[{i}]", e.args[0]) from None
    for flag, folder in (("--runs-dir", dirs.runs), ("--results-dir", dirs.results), ("--figures-dir", dirs.figures)):
        why = unusable_folder(folder)
        if why is not None:
            raise UsageError(f"{flag}: {why}; give a folder the runner can write to")
    if (dirs.runs / "summary.json").is_dir():
        raise UsageError(f"--runs-dir: {dirs.runs / 'summary.json'} is a folder; the run summary is written there")
    return prof


def cpu_label(profile: str) -> str:
    """How the outputs of a GPU profile run on CPU (`--allow-cpu`) are named: never as the profile itself."""
    return f"{profile}_cpu"


def needs_gpu_refusal(prof: dict[str, Any], profile: str, allow_cpu: bool, gpus: int) -> str | None:
    """Why a profile must not start here (a GPU profile on a machine without one), or None."""
    if not prof.get("requires_gpu") or gpus > 0 or allow_cpu:
        return None
    return (
        f"profile {profile!r} needs a GPU (requires_gpu: true; it trains the paper's model with the paper's "
        f"settings) and none is visible here. Run the CPU profile instead: python -m shala_lib.reproduce "
        f"--profile smoke. To run {profile!r} on CPU anyway (notebook 03 then trains its CPU smoke setting), add "
        f"--allow-cpu: every output is then labelled {cpu_label(profile)!r} (runs/{cpu_label(profile)}/, "
        f"*_{cpu_label(profile)}.* tables)"
    )


def label_cpu_run(jobs: list[Job], label: str) -> list[Job]:
    """Every notebook that names its outputs by PROFILE names them `label` instead."""
    return [
        Job(j.notebook, {**j.params, "PROFILE": label} if "PROFILE" in j.params else j.params, j.dataset) for j in jobs
    ]


def write_summary(runs: Path, summary: dict[str, Any]) -> Path:
    """`<runs>/summary.json`, replaced whole (a unique temporary file renamed into place)."""
    return write_text_atomic(runs / "summary.json", json.dumps(summary, indent=2) + "\n")


def _summary(
    profile: str, status: str, entries: list[dict[str, Any]], device: str = "cpu", label: str | None = None
) -> dict[str, Any]:
    """The run's summary: `status` (running / done / failed) and every notebook's entry (status done with
    its seconds and output, failed with the error, skipped with the reason, pending while running);
    `ran` and `skipped` list the done and skipped ones, as before; `label` names the outputs (the profile,
    or `<profile>_cpu` for a GPU profile run with --allow-cpu); `environment` is what it ran on (package
    versions, the git commit)."""
    from shala_lib.environment import provenance

    return {
        "profile": profile,
        "label": label or profile,
        "device": device,
        "environment": provenance(),
        "status": status,
        "notebooks": entries,
        "ran": [{k: e[k] for k in ("notebook", "seconds", "output")} for e in entries if e["status"] == "done"],
        "skipped": [{"notebook": e["notebook"], "why": e["why"]} for e in entries if e["status"] == "skipped"],
    }


def execute(src: Path, dst: Path, params: dict[str, Any], cwd: Path, progress: bool = True) -> None:
    """One papermill execution, with the kernel that does not print ipykernel's "running over TCP
    without encryption" line at each start (`shala_lib.pipeline.kernel`)."""
    import papermill as pm

    from shala_lib.pipeline.kernel import QuietKernelManager

    pm.execute_notebook(
        str(src),
        str(dst),
        parameters=params,
        cwd=str(cwd),
        progress_bar=progress,
        kernel_name="python3",
        log_output=False,
        kernel_manager_class=QuietKernelManager,
    )


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
    allow_cpu: bool = False,
    gpus: int | None = None,
) -> list[Path]:
    """Execute a profile's notebooks; returns the executed notebooks' paths. The request is checked
    first (`check_request`: nothing is written when it is refused), then its datasets are fetched when
    absent (`ensure_data`). `<dirs.runs>/summary.json` records every notebook's status, rewritten
    atomically after each one: on failure as on success."""
    from papermill.exceptions import PapermillExecutionError

    from shala_lib.paths import data_dir as resolve_data_dir

    root = project_root()
    dirs = dirs or Dirs.default(profile)
    from shala_lib.training.dispatch import gpu_count

    gpus = gpu_count() if gpus is None else gpus
    prof = check_request(profile, notebooks, dirs, params_dir, datasets, allow_cpu, gpus, model)
    device = "gpu" if gpus > 0 else "cpu"
    label = cpu_label(profile) if prof.get("requires_gpu") and gpus == 0 else profile
    if datasets:
        prof = with_datasets(prof, datasets)
    if check_data:
        ensure_data(prof, resolve_data_dir((prof.get("common") or {}).get("DATA_DIR")), download)
    jobs = plan(prof, notebooks, overrides, dirs)
    if model:
        jobs = with_model(jobs, model)
    if label != profile:  # --allow-cpu: a GPU profile on CPU is labelled so everywhere
        jobs = label_cpu_run(jobs, label)
    prep_params = plan(prof, ["01_data_preparation"], overrides, dirs)[0].params
    dirs.runs.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    entries: list[dict[str, Any]] = [{"notebook": job.label, "status": "pending"} for job in jobs]
    write_summary(dirs.runs, _summary(profile, "running", entries, device, label))
    for i, job in enumerate(jobs, start=1):
        tag = f"[{i}/{len(jobs)}] {job.label}"
        why = not_prepared(prep_params, job.dataset, root) if job.dataset is not None else None
        if why is not None:
            print(f"{tag} skipped: {why}", flush=True)
            entries[i - 1] = {"notebook": job.label, "status": "skipped", "why": why}
            write_summary(dirs.runs, _summary(profile, "running", entries, device, label))
            continue
        src = root / "notebooks" / f"{job.notebook}.ipynb"
        dst = dirs.runs / f"{job.label}.ipynb"
        print(f"{tag} ...", flush=True)
        t0 = time.time()
        try:
            execute(src, dst, job.params, root, progress)
        except BaseException as e:
            if isinstance(e, PapermillExecutionError):
                error = (
                    f"{job.label}: {job.notebook}.ipynb failed in cell {e.cell_index} (execution count "
                    f"{e.exec_count}): {e.ename}: {e.evalue}\nexecuted notebook with the traceback: {dst}"
                )
            else:
                error = f"{job.label}: {type(e).__name__}: {e}"
            entries[i - 1] = {"notebook": job.label, "status": "failed", "error": error, "output": str(dst)}
            for j in range(i, len(jobs)):
                entries[j] = {"notebook": jobs[j].label, "status": "skipped", "why": f"not run: {job.label} failed"}
            write_summary(dirs.runs, _summary(profile, "failed", entries, device, label))
            if isinstance(e, PapermillExecutionError):
                raise NotebookFailed(error) from None
            raise
        seconds = round(time.time() - t0, 1)
        print(f"{tag} done in {seconds:.0f} s -> {dst}", flush=True)
        entries[i - 1] = {"notebook": job.label, "status": "done", "seconds": seconds, "output": str(dst)}
        write_summary(dirs.runs, _summary(profile, "running", entries, device, label))
        written.append(dst)
    summary = _summary(profile, "done", entries, device, label)
    write_summary(dirs.runs, summary)
    print(f"{len(summary['ran'])} notebook run(s), {len(summary['skipped'])} skipped; see {dirs.runs / 'summary.json'}")
    return written


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="shala-reproduce", description=__doc__.split("\n\n")[0])
    ap.add_argument(
        "--profile", default="smoke", help="a file papermill_params/<profile>.yaml (smoke, paper, learning_check)"
    )
    ap.add_argument("--params-dir", type=Path, default=None, help="folder of the profiles (papermill_params/)")
    ap.add_argument(
        "--only",
        nargs="*",
        default=None,
        help=f"notebooks to run (default: the profile's; {NOTEBOOKS} unless it names others)",
    )
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
    ap.add_argument(
        "--allow-cpu",
        action="store_true",
        help="run a GPU profile (requires_gpu: true, e.g. paper) without a GPU; its outputs are labelled <profile>_cpu",
    )
    args = ap.parse_args(argv)
    default = Dirs.default(args.profile)
    if args.allow_cpu:
        from shala_lib.training.dispatch import gpu_count

        if gpu_count() == 0:
            default = Dirs.default(cpu_label(args.profile))
    dirs = Dirs(
        (args.runs_dir or default.runs).resolve(),
        (args.results_dir or default.results).resolve(),
        (args.figures_dir or default.figures).resolve(),
    )
    try:
        check_request(
            args.profile,
            args.only,
            dirs,
            args.params_dir,
            datasets=args.dataset,
            allow_cpu=args.allow_cpu,
            model=args.model,
        )
    except (UsageError, ProfileError, YamlFileError, FileNotFoundError, ValueError, KeyError) as e:
        print(f"error: {e.args[0] if isinstance(e, KeyError) else e}", file=sys.stderr)
        return 2  # refused before anything ran or was written
    try:
        run_profile(
            args.profile,
            args.only,
            dirs=dirs,
            params_dir=args.params_dir,
            progress=not args.no_progress,
            datasets=args.dataset,
            model=args.model,
            download=not args.no_download,
            allow_cpu=args.allow_cpu,
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
