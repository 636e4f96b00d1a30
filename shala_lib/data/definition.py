"""Dataset definitions: one YAML file holds everything the workbench needs to know about a dataset.

A definition names the dataset, its ordered classes (and the parser's aliases), its text fields, the
ambiguity scheme, the split, the prompt (the paper's `PromptTemplate` fields), and where the annotations
are: either `data:` (a CSV / JSONL / parquet file, long or wide, read by `datasets.custom`) or `loader:`
(`module:function`, for raw formats that need code: the paper's three datasets). Optional: `download:`
(URLs with sha256), `manual:` (how to obtain a licensed copy), `files:` (what must be present under the
data root), `published:` (reference numbers for Table 2), subsets, display names.

The registry is built from definitions, never from an if-chain: the built-in ones in
`shala_lib/resources/datasets/*.yaml`, plus every file (or folder of files) listed in the environment
variable `SHALA_DATASETS` (`os.pathsep`-separated; the runner sets it for `--dataset path.yaml`, so
notebook kernels and training subprocesses resolve the name too). Everywhere a dataset name is accepted,
a definition path is too (`get_definition`). Errors name the file and the key.
"""

from __future__ import annotations

import importlib
import inspect
import os
import re
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from shala_lib.data.distributions import ENTROPY_BINS
from shala_lib.data.download import RemoteFile
from shala_lib.data.prompts import PromptTemplate
from shala_lib.data.specs import MODALITIES, DatasetSpec

ENV = "SHALA_DATASETS"
SUFFIXES = (".yaml", ".yml")
KNOWN_KEYS = {
    "name",
    "display_name",
    "classes",
    "class_display",
    "aliases",
    "prompt_keys",
    "text_fields",
    "modality",
    "ambiguity",
    "subsets",
    "split",
    "seed",
    "data",
    "loader",
    "files",
    "download",
    "manual",
    "prompt",
    "published",
}
DATA_KEYS = {"path", "format", "id", "label", "rater", "audio", "subset", "split", "counts", "empty_text"}
PROMPT_KEYS = {"background", "target", "task", "label_word", "reasoning_questions"}


class DefinitionError(ValueError):
    """A dataset definition is malformed; the message names the file and the key."""

    def __init__(self, source: str | Path, key: str, message: str) -> None:
        self.source, self.key = str(source), key
        super().__init__(f"{source}: key {key!r}: {message}")


@dataclass(frozen=True)
class DatasetDefinition:
    """A dataset as its definition file describes it (see the module docstring)."""

    spec: DatasetSpec
    template: PromptTemplate
    source: Path  # the definition file
    loader: str | None = None  # "module:function" (raw formats that need code)
    data: dict[str, Any] = field(default_factory=dict)  # the generic file loader's settings
    files: tuple[str, ...] = ()  # needed under the data root (relative paths)
    download: tuple[RemoteFile, ...] = ()
    manual: str | None = None
    fractions: tuple[float, ...] = (0.70, 0.15, 0.15)
    seed: int | None = None  # the split seed, when the definition fixes one
    published: tuple[dict[str, Any], ...] = ()

    @property
    def name(self) -> str:
        return self.spec.name

    def data_path(self, root: Path) -> Path:
        """The annotations file of a `data:` definition: relative to the definition, else the data root."""
        rel = Path(str(self.data["path"]))
        if rel.is_absolute():
            return rel
        beside = self.source.parent / rel
        return beside if beside.exists() else root / rel

    def required_paths(self, root: Path) -> list[Path]:
        """What must exist for the dataset to load (its annotations / raw files)."""
        if self.data:
            return [self.data_path(root)]
        return [root / f for f in self.files]

    def missing(self, root: Path) -> list[Path]:
        """Required paths that are absent (a `files` entry with `*` is present when anything matches)."""
        out = []
        for p in self.required_paths(root):
            present = any(p.parent.glob(p.name)) if "*" in p.name else p.exists()
            if not present:
                out.append(p)
        return out

    def load(self, root: Path, seed: int, subset: str | None = None, **options: Any) -> Any:
        """The canonical table (`shala_lib.data.loading.load` calls this)."""
        if self.loader:
            module, _, func = self.loader.partition(":")
            fn = getattr(importlib.import_module(module), func)
            params = inspect.signature(fn).parameters
            kwargs: dict[str, Any] = {"seed": seed, **options}
            if "root" in params:
                kwargs["root"] = root
            if "subset" in params:
                kwargs["subset"] = subset
            elif subset is not None:
                raise ValueError(f"dataset {self.name!r} has no subsets (got subset={subset!r})")
            return fn(**kwargs)
        from shala_lib.data.loaders.generic import load_definition_data

        return load_definition_data(self, root, seed, subset=subset, **options)


def _need(cond: bool, source: Path, key: str, message: str) -> None:
    if not cond:
        raise DefinitionError(source, key, message)


def _str_list(value: Any, source: Path, key: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    _need(
        isinstance(value, list) and all(isinstance(v, str) and v for v in value), source, key, "must be a list of names"
    )
    return list(value)


def parse_definition(doc: Any, source: str | Path) -> DatasetDefinition:
    """A `DatasetDefinition` from a parsed YAML mapping, validated (errors name file and key)."""
    src = Path(source)
    _need(isinstance(doc, dict), src, "<top>", "a definition is a mapping of keys")
    unknown = sorted(set(doc) - KNOWN_KEYS)
    _need(not unknown, src, unknown[0] if unknown else "", f"unknown key(s) {unknown}; known: {sorted(KNOWN_KEYS)}")
    name = doc.get("name")
    _need(
        isinstance(name, str) and bool(re.fullmatch(r"[a-z][a-z0-9_]*", name or "")),
        src,
        "name",
        f"must be a lower-case identifier (letters, digits, _), got {name!r}",
    )
    classes = _str_list(doc.get("classes"), src, "classes")
    _need(len(classes) >= 2, src, "classes", f"needs at least 2 classes, got {classes}")
    _need(len(set(classes)) == len(classes), src, "classes", f"duplicate class names in {classes}")
    text_fields = _str_list(doc.get("text_fields", ["text"]), src, "text_fields")
    keys = doc.get("prompt_keys")
    if isinstance(keys, dict):
        missing = [c for c in classes if c not in keys]
        _need(not missing, src, "prompt_keys", f"class(es) {missing} missing from the JSON shape")
        keys = [keys[c] for c in classes]
    if keys is not None:
        keys = _str_list(keys, src, "prompt_keys")
        _need(
            len(keys) == len(classes),
            src,
            "prompt_keys",
            f"{len(keys)} JSON keys for {len(classes)} classes: every class needs its key",
        )
    aliases = doc.get("aliases") or {}
    _need(
        isinstance(aliases, dict) and set(aliases) <= set(classes),
        src,
        "aliases",
        f"maps classes to spellings; unknown class(es) {sorted(set(aliases) - set(classes))}",
    )
    amb = doc.get("ambiguity") or {"scheme": "entropy"}
    scheme = amb.get("scheme", "entropy") if isinstance(amb, dict) else None
    _need(scheme in ("entropy", "active_labels"), src, "ambiguity.scheme", f"entropy or active_labels, got {scheme!r}")
    bins = tuple(float(b) for b in (amb.get("bins") or ENTROPY_BINS))
    _need(
        len(bins) == 2 and 0 < bins[0] < bins[1] < 1,
        src,
        "ambiguity.bins",
        f"two increasing normalised-entropy edges in (0, 1), got {list(bins)}",
    )
    modality = doc.get("modality", "text")
    _need(modality in MODALITIES, src, "modality", f"one of {MODALITIES}, got {modality!r}")
    subsets = doc.get("subsets") or {}
    sub_names = tuple(_str_list(subsets.get("names", []), src, "subsets.names")) if subsets else ()
    spec = DatasetSpec(
        name=name,
        classes=tuple(classes),
        text_fields=tuple(text_fields),
        ambiguity_scheme=scheme,
        display_name=str(doc.get("display_name") or name),
        class_display=dict(doc.get("class_display") or {}),
        aliases={k: tuple(_str_list(v, src, f"aliases.{k}")) for k, v in aliases.items()},
        prompt_keys=tuple(keys or ()),
        subsets=sub_names,
        subset_display=dict(subsets.get("display") or {}) if subsets else {},
        modality=modality,
        entropy_bins=bins,  # type: ignore[arg-type]
        source=str(src),
    )
    prompt = doc.get("prompt")
    _need(
        isinstance(prompt, dict),
        src,
        "prompt",
        "a mapping with target, task (background, label_word, reasoning_questions)",
    )
    unknown = sorted(set(prompt) - PROMPT_KEYS)
    _need(
        not unknown,
        src,
        f"prompt.{unknown[0] if unknown else ''}",
        f"unknown prompt key(s); known: {sorted(PROMPT_KEYS)}",
    )
    target = prompt.get("target")
    _need(isinstance(target, str) and bool(target.strip()), src, "prompt.target", "the target template is required")
    fields = [m for m in re.findall(r"{([^{}]*)}", target)]
    bad = [f for f in fields if f not in text_fields]
    _need(not bad, src, "prompt.target", f"field(s) {bad} are not text fields (text_fields: {text_fields})")
    _need(
        isinstance(prompt.get("task"), str) and bool(prompt["task"].strip()),
        src,
        "prompt.task",
        "the task text is required",
    )
    template = PromptTemplate(
        background=str(prompt.get("background") or ""),
        target=target,
        task=prompt["task"],
        label_word=str(prompt.get("label_word") or "label"),
        reasoning_questions=tuple(
            _str_list(
                prompt.get("reasoning_questions")
                or [
                    "Which cues in the text point to each label?",
                    "Are there multiple valid interpretations? If so, describe them.",
                    "How does your reasoning inform the probability you assign to each label?",
                ],
                src,
                "prompt.reasoning_questions",
            )
        ),
    )
    loader, data = doc.get("loader"), doc.get("data")
    _need(
        (loader is None) != (data is None), src, "data", "give exactly one of data (a file) or loader (module:function)"
    )
    if loader is not None:
        _need(isinstance(loader, str) and ":" in loader, src, "loader", f"module:function, got {loader!r}")
    if data is not None:
        _need(
            isinstance(data, dict) and isinstance(data.get("path"), str),
            src,
            "data.path",
            "the annotations file is required",
        )
        unknown = sorted(set(data) - DATA_KEYS)
        _need(
            not unknown,
            src,
            f"data.{unknown[0] if unknown else ''}",
            f"unknown data key(s); known: {sorted(DATA_KEYS)}",
        )
        _need(data.get("format", "auto") in ("auto", "long", "wide"), src, "data.format", "auto, long or wide")
        _need(data.get("empty_text", "error") in ("error", "skip"), src, "data.empty_text", "error or skip")
        if modality != "text":
            _need(bool(data.get("audio")), src, "data.audio", f"modality {modality!r} needs a column of clip paths")
    split = doc.get("split") or {}
    fractions = tuple(float(f) for f in split.get("fractions", (0.70, 0.15, 0.15)))
    _need(
        2 <= len(fractions) <= 3 and abs(sum(fractions) - 1) < 1e-6 and min(fractions) > 0,
        src,
        "split.fractions",
        f"2 or 3 positive fractions summing to 1 (train, validation[, test]), got {list(fractions)}",
    )
    downloads = []
    for i, rf in enumerate(doc.get("download") or []):
        _need(isinstance(rf, dict) and "url" in rf and "name" in rf, src, f"download[{i}]", "needs url and name")
        downloads.append(RemoteFile(rf["url"], rf["name"], rf.get("sha256"), rf.get("size"), rf.get("member")))
    published = doc.get("published") or []
    _need(isinstance(published, list), src, "published", "a list of rows (method, source, jsd, ...)")
    seed = doc.get("seed", split.get("seed"))
    return DatasetDefinition(
        spec=spec,
        template=template,
        source=src,
        loader=loader,
        data=dict(data or {}),
        files=tuple(_str_list(doc.get("files") or [], src, "files")),
        download=tuple(downloads),
        manual=doc.get("manual"),
        fractions=fractions,
        seed=int(seed) if seed is not None else None,
        published=tuple(dict(r) for r in published),
    )


def read_definition(path: str | Path) -> DatasetDefinition:
    """Read and validate one definition file (parsed once per content of the file: prompts are built per
    item and look their dataset up each time)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"dataset definition {path} not found")
    definition = _parse_file(path.resolve(), path.read_bytes())
    _READ[definition.name] = definition
    return definition


# definitions read by path in this process, resolvable by name afterwards (e.g. Table 2's published rows
# of a dataset a notebook was given as a file); registered names take precedence
_READ: dict[str, DatasetDefinition] = {}


@cache
def _parse_file(path: Path, content: bytes) -> DatasetDefinition:
    try:
        doc = yaml.safe_load(content.decode("utf-8"))
    except yaml.YAMLError as e:
        raise DefinitionError(path, "<yaml>", f"not valid YAML: {e}") from None
    return parse_definition(doc, path)


@cache
def _builtin() -> dict[str, DatasetDefinition]:
    out = {}
    folder = resources.files("shala_lib.resources").joinpath("datasets")
    for entry in sorted(folder.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(SUFFIXES):
            with resources.as_file(entry) as p:
                d = read_definition(p)
            out[d.name] = d
    return out


def _env_paths() -> list[Path]:
    paths: list[Path] = []
    for part in filter(None, os.environ.get(ENV, "").split(os.pathsep)):
        p = Path(part)
        paths += sorted(q for q in p.iterdir() if q.suffix in SUFFIXES) if p.is_dir() else [p]
    return paths


def registry() -> dict[str, DatasetDefinition]:
    """Every definition by name: the built-in ones, then those listed in `SHALA_DATASETS`."""
    out = dict(_builtin())
    for p in _env_paths():
        d = read_definition(p)
        if d.name in _builtin() and _builtin()[d.name].source != d.source:
            raise DefinitionError(p, "name", f"{d.name!r} is a built-in dataset; choose another name")
        out[d.name] = d
    return out


def is_definition_path(name_or_path: str | os.PathLike[str]) -> bool:
    return str(name_or_path).endswith(SUFFIXES)


def get_definition(name_or_path: str | os.PathLike[str]) -> DatasetDefinition:
    """A definition by registered name or by file path."""
    if is_definition_path(name_or_path):
        return read_definition(name_or_path)
    reg = {**_READ, **registry()}
    try:
        return reg[str(name_or_path)]
    except KeyError:
        raise KeyError(
            f"unknown dataset {str(name_or_path)!r}; registered: {sorted(reg)} (or pass a definition file, "
            f"*.yaml, or list it in {ENV})"
        ) from None


def register_paths(paths: list[str | Path]) -> None:
    """Make definition files resolvable by name in this process and its children (`SHALA_DATASETS`)."""
    current = [p for p in os.environ.get(ENV, "").split(os.pathsep) if p]
    for p in paths:
        s = str(Path(p).resolve())
        if s not in current:
            current.append(s)
    os.environ[ENV] = os.pathsep.join(current)
