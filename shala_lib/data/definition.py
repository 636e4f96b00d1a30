"""Dataset definitions: one YAML file holds everything the workbench needs to know about a dataset.

A definition names the dataset, its ordered classes (and the parser's aliases), its text fields, the
ambiguity scheme, the split, the prompt (the paper's `PromptTemplate` fields), and where the annotations
are: either `data:` (a CSV / JSONL / parquet file, long or wide, read by `loaders.generic`) or `loader:`
(`module:function`, for raw formats that need code: the paper's three datasets). Optional: `download:`
(URLs with sha256), `manual:` (how to obtain a licensed copy), `files:` (what must be present under the
data root), `published:` (reference numbers for Table 2), subsets, display names.

The file is read strictly (`shala_lib.files.load_yaml`: no aliases, no duplicate keys) and checked against
a typed schema (`DefinitionModel`, pydantic, strict: no truthy strings, no float for an int, no unknown key
at any level), then against the rules a schema cannot say (classes distinct once case, whitespace and
Unicode form are ignored; every alias and prompt key belongs to one class; text fields are not columns the
workbench writes, nor the label / count / rater column). Every error is a `DefinitionError` naming the file
and the dotted key path (`my.yaml: key 'split.fractions': ...`), raised before anything is loaded.

The registry is built from definitions, never from an if-chain: the built-in ones in
`shala_lib/resources/datasets/*.yaml`, plus every file (or folder of files) listed in the environment
variable `SHALA_DATASETS` (`os.pathsep`-separated; the runner sets it for `--dataset path.yaml`, so
notebook kernels and training subprocesses resolve the name too). Everywhere a dataset name is accepted,
a definition path is too (`get_definition`). This module imports only `dataset_types` and `files`:
`specs`, `prompts`, `download` and the loaders sit on it, never the other way round.
"""

from __future__ import annotations

import os
import string
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from shala_lib.data.dataset_types import (
    ENTROPY_BINS,
    RESERVED_COLUMNS,
    DatasetSpec,
    PromptTemplate,
    RemoteFile,
    label_key,
)
from shala_lib.files import YamlFileError, load_yaml
from shala_lib.schema import describe

ENV = "SHALA_DATASETS"
SUFFIXES = (".yaml", ".yml")
DEFAULT_QUESTIONS: tuple[str, ...] = (
    "Which cues in the text point to each label?",
    "Are there multiple valid interpretations? If so, describe them.",
    "How does your reasoning inform the probability you assign to each label?",
)

Text = Annotated[str, StringConstraints(min_length=1)]
Finite = Annotated[float, Field(allow_inf_nan=False)]


SHA256_PATTERN = r"^[0-9a-f]{64}$"
NAME_PATTERN = r"^[a-z][a-z0-9_]*$"
LOADER_PATTERN = r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$"
PATTERN_WORDS = {
    SHA256_PATTERN: "a SHA-256 digest (64 lowercase hex digits)",
    NAME_PATTERN: "a lowercase name (a-z, digits, '_'; starting with a letter)",
    LOADER_PATTERN: "a function as 'package.module:function'",
}


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class Ambiguity(_Section):
    scheme: Literal["entropy", "active_labels"] = "entropy"
    bins: list[Finite] = Field(default_factory=lambda: list(ENTROPY_BINS), min_length=2, max_length=2)


class Subsets(_Section):
    names: list[Text] = Field(min_length=1)
    display: dict[str, Text] = Field(default_factory=dict)


class Split(_Section):
    fractions: list[Finite] = Field(default_factory=lambda: [0.70, 0.15, 0.15], min_length=2, max_length=3)
    seed: int | None = Field(default=None, ge=0)


class Data(_Section):
    path: Text
    format: Literal["auto", "long", "wide"] = "auto"
    id: Text = "id"
    label: Text | None = "label"
    rater: Text | None = None
    audio: Text | None = None
    subset: Text | None = None
    split: Text | None = None
    counts: dict[str, Text] | None = None
    empty_text: Literal["error", "skip"] = "error"
    fractional_counts: bool = False  # wide counts may be non-integers (e.g. soft labels)
    multi_label: Literal["votes", "split"] = "votes"  # a rater's k distinct labels: k votes, or 1/k each


class Download(_Section):
    url: Text
    name: Text
    sha256: Annotated[str, StringConstraints(pattern=SHA256_PATTERN)] | None = None
    size: int | None = Field(default=None, ge=0)
    member: Text | None = None


class Prompt(_Section):
    background: str = ""
    target: Text
    task: Text
    label_word: Text = "label"
    reasoning_questions: list[Text] = Field(default_factory=lambda: list(DEFAULT_QUESTIONS), min_length=1)


class PublishedRow(_Section):
    method: Text
    source: Text
    jsd: Finite | None = None
    bc: Finite | None = None
    acc: Finite | None = None
    f1: Finite | None = None
    wf1: Finite | None = None
    jsd_log_base: Literal[2, "2", "e"] | None = None
    note: str | None = None


class DefinitionModel(_Section):
    """The schema of a definition file (every level refuses unknown keys)."""

    name: Annotated[str, StringConstraints(pattern=NAME_PATTERN)]
    display_name: Text | None = None
    classes: list[Text]
    class_display: dict[str, Text] = Field(default_factory=dict)
    aliases: dict[str, list[Text]] = Field(default_factory=dict)
    prompt_keys: list[Text] | None = None
    text_fields: list[Text] = Field(default_factory=lambda: ["text"], min_length=1)
    modality: Literal["text", "speech", "speech+text"] = "text"
    ambiguity: Ambiguity = Field(default_factory=Ambiguity)
    subsets: Subsets | None = None
    split: Split = Field(default_factory=Split)
    seed: int | None = Field(default=None, ge=0)
    data: Data | None = None
    loader: Annotated[str, StringConstraints(pattern=LOADER_PATTERN)] | None = None
    files: list[Text] = Field(default_factory=list)
    download: list[Download] = Field(default_factory=list)
    manual: Text | None = None
    prompt: Prompt
    published: list[PublishedRow] = Field(default_factory=list)


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
    data: dict[str, Any] = field(default_factory=dict)  # the generic file loader's settings (all keys)
    files: tuple[str, ...] = ()  # needed under the data root (relative paths)
    download: tuple[RemoteFile, ...] = ()
    manual: str | None = None
    fractions: tuple[float, ...] = (0.70, 0.15, 0.15)
    seed: int | None = None  # the split seed, when the definition fixes one
    published: tuple[dict[str, Any], ...] = ()
    schema: DefinitionModel | None = field(default=None, compare=False, repr=False)

    @property
    def name(self) -> str:
        return self.spec.name

    def to_dict(self) -> dict[str, Any]:
        """The definition as a YAML-ready mapping (keys as written; parsing it gives an equal definition)."""
        if self.schema is None:
            raise ValueError(f"{self.source}: definition built without its schema; read it with read_definition")
        return self.schema.model_dump(mode="json", exclude_unset=True)

    def to_yaml(self) -> str:
        return yaml.safe_dump(self.to_dict(), sort_keys=False, allow_unicode=True)

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


# --- parsing ------------------------------------------------------------------------------------------
def _dotted(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "[key]":
            out += " (a key)"
        else:
            out += f".{part}" if out else str(part)
    return out or "<top>"


def _model_at(loc: tuple[int | str, ...]) -> type[BaseModel] | None:
    """The schema section a location lies in (for the list of its known keys)."""
    cls: type[BaseModel] = DefinitionModel
    for part in loc:
        if isinstance(part, int):
            continue
        info = cls.model_fields.get(str(part))
        if info is None:
            return None
        found = [a for a in _flat(info.annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
        if not found:
            return None
        cls = found[0]
    return cls


def _flat(annotation: Any) -> list[Any]:
    args = getattr(annotation, "__args__", None)
    return [annotation] if not args else [x for a in args for x in _flat(a)]


def _schema_error(e: ValidationError, src: Path) -> DefinitionError:
    err = e.errors(include_url=False)[0]
    loc = tuple(err["loc"])
    key = _dotted(loc)
    if err["type"] == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = f"; known here: {sorted(model.model_fields)}" if model is not None else ""
        return DefinitionError(src, key, f"unknown key (a typo?){known}")
    if err["type"] == "missing":
        typos = [
            _dotted(tuple(x["loc"]))
            for x in e.errors(include_url=False)
            if x["type"] == "extra_forbidden" and tuple(x["loc"])[:-1] == loc[:-1]
        ]
        hint = f"; unknown key(s) {typos} here: a typo of it?" if typos else ""
        return DefinitionError(src, key, f"required key is missing{hint}")
    return DefinitionError(src, key, describe(err, PATTERN_WORDS, max_input=80))


def _prompt_keys_in_class_order(doc: dict[str, Any], src: Path) -> dict[str, Any]:
    """`prompt_keys` given as a mapping class -> key: the list in class order (checked here)."""
    keys, classes = doc.get("prompt_keys"), doc.get("classes")
    if not isinstance(keys, dict) or not (isinstance(classes, list) and all(isinstance(c, str) for c in classes)):
        return doc
    unknown = [k for k in keys if k not in classes]
    if unknown:
        raise DefinitionError(src, f"prompt_keys.{unknown[0]}", f"not a class; classes: {classes}")
    missing = [c for c in classes if c not in keys]
    if missing:
        raise DefinitionError(src, "prompt_keys", f"class(es) {missing} missing from the JSON shape")
    return {**doc, "prompt_keys": [keys[c] for c in classes]}


def _check_labels(m: DefinitionModel, src: Path) -> None:
    """Classes, prompt keys and aliases: one class per spelling once case, whitespace and Unicode form
    are ignored (`label_key`), as the data loader and the answer parser both compare them."""
    owner: dict[str, tuple[str, str]] = {}  # label key -> (class, what it is of the class)
    if len(m.classes) < 2:
        raise DefinitionError(src, "classes", f"needs at least 2 classes, got {m.classes}")
    for i, c in enumerate(m.classes):
        if c != c.strip() or not label_key(c):
            raise DefinitionError(src, f"classes[{i}]", f"{c!r}: a class name is text without surrounding whitespace")
        k = label_key(c)
        if k in owner:
            raise DefinitionError(
                src,
                "classes",
                f"{owner[k][0]!r} and {c!r} are the same class once case, whitespace, '_'/'-' and Unicode form "
                "are ignored; give distinct names",
            )
        owner[k] = (c, "the name")
    for c in m.class_display:
        if c not in m.classes:
            raise DefinitionError(src, f"class_display.{c}", f"not a class; classes: {m.classes}")
    if m.prompt_keys is not None:
        if len(m.prompt_keys) != len(m.classes):
            raise DefinitionError(
                src, "prompt_keys", f"{len(m.prompt_keys)} JSON keys for {len(m.classes)} classes: one per class"
            )
        seen: dict[str, str] = {}
        for i, (c, pk) in enumerate(zip(m.classes, m.prompt_keys)):
            k = label_key(pk)
            if k in seen:
                raise DefinitionError(
                    src,
                    f"prompt_keys[{i}]",
                    f"{pk!r} is also the key of {seen[k]!r}: one of the two classes could never be predicted",
                )
            seen[k] = c
            if k in owner and owner[k][0] != c:
                other = owner[k][0]
                raise DefinitionError(src, f"prompt_keys[{i}]", f"{pk!r} (the key of {c!r}) is the name of {other!r}")
        for k, c in seen.items():
            owner.setdefault(k, (c, "the prompt key"))
    for c in m.aliases:
        if c not in m.classes:
            raise DefinitionError(src, f"aliases.{c}", f"maps classes to spellings; {c!r} is not a class ({m.classes})")
    for c, spellings in m.aliases.items():
        for a in spellings:
            k = label_key(a)
            if not k:
                raise DefinitionError(src, f"aliases.{c}", f"{a!r} is not a spelling")
            if k in owner and owner[k][0] != c:
                other, what = owner[k]
                raise DefinitionError(
                    src,
                    f"aliases.{c}",
                    f"{a!r} is already {what} of {other!r}: the loader and the parser would disagree on its class",
                )
            owner.setdefault(k, (c, "an alias"))


def _check_fields(m: DefinitionModel, src: Path) -> None:
    """Text fields: distinct, not a column the workbench writes, not the label / count / rater column."""
    roles: dict[str, str] = {}
    if m.data is not None:
        d = m.data
        named = {"id": d.id, "label": d.label, "rater": d.rater, "audio": d.audio, "subset": d.subset, "split": d.split}
        for role, col in named.items():
            if col is None or (role == "label" and d.format == "wide" and "label" not in d.model_fields_set):
                continue
            if col in roles:
                raise DefinitionError(src, f"data.{role}", f"column {col!r} is already data.{roles[col]}")
            roles[col] = role
        if d.counts is not None:
            missing = [c for c in m.classes if c not in d.counts]
            unknown = [c for c in d.counts if c not in m.classes]
            if unknown:
                raise DefinitionError(src, f"data.counts.{unknown[0]}", f"not a class; classes: {m.classes}")
            if missing:
                raise DefinitionError(src, "data.counts", f"class(es) {missing} have no count column")
            for c, col in d.counts.items():
                if col in roles:
                    raise DefinitionError(src, f"data.counts.{c}", f"column {col!r} is already data.{roles[col]}")
                roles[col] = f"counts.{c}"
    seen: set[str] = set()
    for i, f in enumerate(m.text_fields):
        key = f"text_fields[{i}]"
        if f in seen:
            raise DefinitionError(src, key, f"{f!r} is listed twice")
        seen.add(f)
        if f in RESERVED_COLUMNS:
            raise DefinitionError(
                src,
                key,
                f"{f!r} is a column the workbench writes (reserved: {sorted(RESERVED_COLUMNS)}); "
                "rename the column in your file",
            )
        if f in roles and roles[f] not in ("id", "subset"):
            raise DefinitionError(
                src, key, f"{f!r} is the data.{roles[f]} column: the prompt would show the annotation itself"
            )


def _check_prompt(m: DefinitionModel, src: Path) -> None:
    target = m.prompt.target
    try:
        parsed = [(f, spec, conv) for _, f, spec, conv in string.Formatter().parse(target) if f is not None]
    except ValueError as e:
        raise DefinitionError(src, "prompt.target", f"not a format string over the text fields: {e}") from None
    names = [f for f, _, _ in parsed]
    styled = [
        f"{{{f}{'!' + conv if conv else ''}{':' + spec if spec else ''}}}" for f, spec, conv in parsed if spec or conv
    ]
    if styled:
        raise DefinitionError(
            src,
            "prompt.target",
            f"{styled[0]}: a field is inserted as written ({{field}}); a conversion or format spec would change or "
            "cut the text the raters read",
        )
    bad = [f for f in names if f not in m.text_fields]
    if bad:
        raise DefinitionError(
            src, "prompt.target", f"field(s) {bad} are not text fields (text_fields: {m.text_fields})"
        )
    if not names and m.modality != "speech":
        raise DefinitionError(src, "prompt.target", f"uses no text field: write e.g. {{{m.text_fields[0]}}}")
    try:
        target.format(**{f: "x" for f in m.text_fields})
    except (ValueError, KeyError, IndexError, AttributeError) as e:
        raise DefinitionError(src, "prompt.target", f"not a format string over the text fields: {e!r}") from None


def _check(m: DefinitionModel, src: Path) -> None:
    """The rules the schema's types cannot say (errors name the key path)."""
    _check_labels(m, src)
    _check_fields(m, src)
    _check_prompt(m, src)
    if m.ambiguity.scheme == "active_labels" and "bins" in m.ambiguity.model_fields_set:
        raise DefinitionError(
            src, "ambiguity.bins", "entropy edges apply to scheme: entropy; active_labels levels are 1, 2, 3, 4+ labels"
        )
    lo, hi = m.ambiguity.bins
    if not 0 < lo < hi < 1:
        raise DefinitionError(
            src, "ambiguity.bins", f"two increasing normalised-entropy edges in (0, 1), got {m.ambiguity.bins}"
        )
    if m.subsets is not None:
        if len(set(m.subsets.names)) != len(m.subsets.names):
            raise DefinitionError(src, "subsets.names", f"duplicate subset names in {m.subsets.names}")
        for s in m.subsets.display:
            if s not in m.subsets.names:
                raise DefinitionError(src, f"subsets.display.{s}", f"not a subset; names: {m.subsets.names}")
    fr = m.split.fractions
    if abs(sum(fr) - 1) > 1e-6 or min(fr) <= 0:
        raise DefinitionError(
            src,
            "split.fractions",
            f"2 or 3 positive fractions summing to 1 (train, validation[, test]), got {fr}",
        )
    if m.seed is not None and m.split.seed is not None:
        raise DefinitionError(src, "split.seed", "the seed is given twice (seed and split.seed): keep one")
    if (m.loader is None) == (m.data is None):
        raise DefinitionError(src, "data", "give exactly one of data (a file) or loader (module:function)")
    if m.data is not None:
        if m.modality != "text" and not m.data.audio:
            raise DefinitionError(src, "data.audio", f"modality {m.modality!r} needs a column of clip paths")
        if m.data.multi_label == "split" and m.data.rater is None:
            raise DefinitionError(src, "data.multi_label", "split divides a rater's vote: it needs data.rater")
        if m.data.counts is not None and m.data.format == "long":
            raise DefinitionError(
                src, "data.counts", "count columns are the wide format: drop format: long (or counts)"
            )
        if m.data.fractional_counts and m.data.format == "long":
            raise DefinitionError(src, "data.fractional_counts", "applies to wide files (count columns), not long ones")


def parse_definition(doc: Any, source: str | Path) -> DatasetDefinition:
    """A `DatasetDefinition` from a parsed YAML mapping, validated (errors name file and key path)."""
    src = Path(source)
    if not isinstance(doc, dict):
        raise DefinitionError(src, "<top>", f"a definition is a mapping of keys, got {type(doc).__name__}")
    bad_keys = [k for k in doc if not isinstance(k, str)]
    if bad_keys:
        raise DefinitionError(src, repr(bad_keys[0]), "keys are names (text); quote it if it is meant as text")
    try:
        m = DefinitionModel.model_validate(_prompt_keys_in_class_order(doc, src))
    except ValidationError as e:
        raise _schema_error(e, src) from None
    _check(m, src)
    spec = DatasetSpec(
        name=m.name,
        classes=tuple(m.classes),
        text_fields=tuple(m.text_fields),
        ambiguity_scheme=m.ambiguity.scheme,
        display_name=m.display_name or m.name,
        class_display=dict(m.class_display),
        aliases={k: tuple(v) for k, v in m.aliases.items()},
        prompt_keys=tuple(m.prompt_keys or ()),
        subsets=tuple(m.subsets.names) if m.subsets else (),
        subset_display=dict(m.subsets.display) if m.subsets else {},
        modality=m.modality,
        entropy_bins=(m.ambiguity.bins[0], m.ambiguity.bins[1]),
        source=str(src),
    )
    p = m.prompt
    template = PromptTemplate(
        background=p.background,
        target=p.target,
        task=p.task,
        label_word=p.label_word,
        reasoning_questions=tuple(p.reasoning_questions),
    )
    seed = m.seed if m.seed is not None else m.split.seed
    return DatasetDefinition(
        spec=spec,
        template=template,
        source=src,
        loader=m.loader,
        data=m.data.model_dump() if m.data else {},
        files=tuple(m.files),
        download=tuple(RemoteFile(d.url, d.name, d.sha256, d.size, d.member) for d in m.download),
        manual=m.manual,
        fractions=tuple(m.split.fractions),
        seed=seed,
        published=tuple(r.model_dump(exclude_none=True) for r in m.published),
        schema=m,
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
        doc = load_yaml(content, path)
    except YamlFileError as e:
        where = f"{e.source}:{e.line}" if e.line is not None else e.source
        detail = str(e).removeprefix(f"{where}: ")
        raise DefinitionError(path, "<yaml>", f"line {e.line}: {detail}" if e.line else detail) from None
    return parse_definition(doc, path)


# --- the registry -------------------------------------------------------------------------------------
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
    """Every definition by name: the built-in ones, then those listed in `SHALA_DATASETS` (two files
    defining one name is an error naming both)."""
    out = dict(_builtin())
    for p in _env_paths():
        d = read_definition(p)
        if d.name in out and out[d.name].source != d.source:
            what = "a built-in dataset" if d.name in _builtin() else f"also defined by {out[d.name].source}"
            raise DefinitionError(p, "name", f"{d.name!r} is {what}; choose another name")
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
