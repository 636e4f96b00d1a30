"""Reproduction profiles (`papermill_params/<profile>.yaml`): read strictly (`shala_lib.files.read_yaml`:
no aliases, no duplicate keys) and validated before anything runs. Unknown keys are refused at every
level: a top-level key must be `datasets`, `optional_datasets`, `common`, `requires_gpu`, `notebooks` (which
notebooks run; default the six of the paper's pipeline) or a notebook name; a key of a
notebook's mapping must be `per_dataset` or a parameter that notebook declares; a key of `common` must be
a parameter some notebook declares (papermill would only warn, and a typo would be ignored). Errors name
the file and the key path: `papermill_params/x.yaml: 02_zero_shot_baselines.LIMTI: ...`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictStr, ValidationError

from shala_lib.files import read_yaml
from shala_lib.schema import describe

NOTEBOOKS: tuple[str, ...] = (
    "01_data_preparation",
    "02_zero_shot_baselines",
    "03_grpo_training",
    "04_evaluation",
    "05_ambiguity_analysis",
    "06_reasoning_inspection",
)  # the paper's pipeline: what a profile runs unless its `notebooks` key says otherwise
EXTRA_NOTEBOOKS: tuple[str, ...] = ("07_learning_check",)  # run only by a profile that names them
ALL_NOTEBOOKS: tuple[str, ...] = (*NOTEBOOKS, *EXTRA_NOTEBOOKS)
TOP_LEVEL: tuple[str, ...] = ("common", "datasets", "notebooks", "optional_datasets", "requires_gpu")


class ProfileError(ValueError):
    """A profile that cannot run; the message names the file and the key path."""

    def __init__(self, source: str | Path, key: str, message: str) -> None:
        self.source, self.key = str(source), key
        super().__init__(f"{source}: {key}: {message}" if key else f"{source}: {message}")


class NotebookEntry(BaseModel):
    """One notebook's mapping: `per_dataset` and its parameters (checked against the notebook)."""

    model_config = ConfigDict(extra="allow")

    per_dataset: StrictBool = False


class Profile(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    datasets: list[StrictStr] | None = None
    optional_datasets: list[StrictStr] | None = None
    # true: the runner refuses to start without a CUDA GPU (exit 2) unless --allow-cpu, which labels every
    # output `<profile>_cpu` (a CPU run of a GPU profile trains the CPU smoke setting: it is not the profile)
    requires_gpu: StrictBool = False
    common: dict[StrictStr, Any] | None = None
    nb01: NotebookEntry | None = Field(None, alias="01_data_preparation")
    nb02: NotebookEntry | None = Field(None, alias="02_zero_shot_baselines")
    nb03: NotebookEntry | None = Field(None, alias="03_grpo_training")
    nb04: NotebookEntry | None = Field(None, alias="04_evaluation")
    nb05: NotebookEntry | None = Field(None, alias="05_ambiguity_analysis")
    nb06: NotebookEntry | None = Field(None, alias="06_reasoning_inspection")
    nb07: NotebookEntry | None = Field(None, alias="07_learning_check")
    # the notebooks this profile runs, in pipeline order (None: the six of NOTEBOOKS)
    notebooks: list[StrictStr] | None = None


def _schema_error(e: ValidationError, source: Path) -> ProfileError:
    """The first problem of a pydantic error, in the profile's words (file, key path, what is wrong)."""
    unknown = [str(err["loc"][0]) for err in e.errors() if err["type"] == "extra_forbidden" and len(err["loc"]) == 1]
    if unknown:
        return ProfileError(
            source,
            "",
            f"unknown top-level key(s) {sorted(unknown)}; known: {', '.join(TOP_LEVEL)}, {', '.join(ALL_NOTEBOOKS)}",
        )
    err = e.errors()[0]
    key = ".".join(str(p) for p in err["loc"])
    message = describe(err)
    if err["loc"][-1] == "per_dataset":  # `<file>: 04_evaluation: per_dataset must be true or false, got 'yes'`
        key, message = str(err["loc"][0]), f"per_dataset {message}"
    return ProfileError(source, key, message)


def validate_profile(
    data: Any, source: str | Path, declared: Callable[[str], frozenset[str]] | None = None
) -> dict[str, Any]:
    """The profile mapping `data` (read from `source`) checked; returns it with absent sections as they
    were. `declared(notebook)` gives a notebook's parameters (None: parameters are not checked)."""
    source = Path(source)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ProfileError(source, "", f"must be a mapping of sections, got {type(data).__name__}")
    try:
        Profile.model_validate(data)
    except ValidationError as e:
        raise _schema_error(e, source) from None
    chosen = data.get("notebooks")
    if chosen is not None:
        if not chosen:
            raise ProfileError(source, "notebooks", f"name at least one notebook; choose from {list(ALL_NOTEBOOKS)}")
        for i, name in enumerate(chosen):
            if name not in ALL_NOTEBOOKS:
                why = f"unknown notebook {name!r}; choose from {list(ALL_NOTEBOOKS)}"
                raise ProfileError(source, f"notebooks[{i}]", why)
        if len(set(chosen)) != len(chosen):
            raise ProfileError(source, "notebooks", f"a notebook is named twice: {chosen}")
    runs = profile_notebooks(data)
    for name in ALL_NOTEBOOKS:
        if name not in runs and data.get(name) is not None:
            raise ProfileError(
                source,
                name,
                f"parameters for a notebook this profile does not run (it runs {list(runs)}; "
                "add it to `notebooks:` or remove this section)",
            )
    if declared is not None:
        everywhere: set[str] = set()
        for name in runs:
            params = declared(name)
            everywhere |= params
            extra = sorted(set(data.get(name) or {}) - params - {"per_dataset"})
            if extra:
                raise ProfileError(
                    source,
                    f"{name}.{extra[0]}",
                    f"not a parameter of notebooks/{name}.ipynb; it declares: {', '.join(sorted(params))} "
                    "(and per_dataset)",
                )
        extra = sorted(set(data.get("common") or {}) - everywhere)
        if extra:
            raise ProfileError(
                source,
                f"common.{extra[0]}",
                f"no notebook this profile runs declares this parameter; known: {sorted(everywhere)}",
            )
    datasets = data.get("datasets") or []
    for i, name in enumerate(data.get("optional_datasets") or []):
        if name not in datasets:
            raise ProfileError(source, f"optional_datasets[{i}]", f"{name!r} is not in datasets {datasets}")
    for name in ALL_NOTEBOOKS:
        if (data.get(name) or {}).get("per_dataset", False) and not datasets:
            raise ProfileError(
                source, f"{name}.per_dataset", "per_dataset: true but the profile has no top-level datasets list"
            )
    return data


def known_profiles(params_dir: Path) -> list[str]:
    return sorted(p.stem for p in params_dir.glob("*.yaml"))


def read_profile(
    profile: str, params_dir: Path, declared: Callable[[str], frozenset[str]] | None = None
) -> dict[str, Any]:
    """`<params_dir>/<profile>.yaml`, read strictly and validated; an unknown profile is a
    FileNotFoundError naming the known ones."""
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]*", profile) or ".." in profile:
        raise FileNotFoundError(
            f"--profile: {profile!r} is not a profile name (a file {params_dir}/<name>.yaml; give --params-dir for "
            f"another folder); known profiles: {known_profiles(params_dir)}"
        )
    path = params_dir / f"{profile}.yaml"
    if path.exists() and not path.is_file():
        raise FileNotFoundError(f"profile {profile!r}: {path} is not a file")
    if not path.is_file():
        raise FileNotFoundError(
            f"no profile {profile!r} ({path} missing); known profiles: {known_profiles(params_dir)}"
        )
    data = read_yaml(path)
    if data is None:
        raise ProfileError(path, "", "the profile is empty; copy papermill_params/smoke.yaml and change what you need")
    return validate_profile(data, path, declared)


def profile_notebooks(prof: dict[str, Any]) -> tuple[str, ...]:
    """The notebooks a (validated) profile runs, in pipeline order: its `notebooks` list, else NOTEBOOKS."""
    chosen = prof.get("notebooks")
    return NOTEBOOKS if chosen is None else tuple(n for n in ALL_NOTEBOOKS if n in chosen)
