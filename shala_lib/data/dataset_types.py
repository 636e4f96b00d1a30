"""The plain types of a dataset, shared by its definition, the registry and every consumer.

`DatasetSpec` (what the workbench needs to know about a dataset), `PromptTemplate` (the paper's prompt
fields), `RemoteFile` (a download), the canonical table's column names, and `label_key`: the one
normalisation under which two spellings of a class are the same (definitions refuse classes, aliases and
prompt keys that collide under it; loaders match data labels with it; the parser's key matching agrees).
This module imports nothing else of the workbench, so the registry (`definition`) can sit on it and
`specs`, `prompts` and `download` can sit on the registry without an import cycle.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Literal

AmbiguityScheme = Literal["entropy", "active_labels"]
Modality = Literal["text", "speech", "speech+text"]
MODALITIES: tuple[str, ...] = ("text", "speech", "speech+text")

ENTROPY_LEVELS: tuple[str, ...] = ("low", "medium", "high")
ACTIVE_LABEL_LEVELS: tuple[str, ...] = ("1", "2", "3", "4+")
ENTROPY_BINS: tuple[float, float] = (0.33, 0.66)

# the columns of the canonical table every loader returns (text fields go after `subset`)
CANONICAL_COLUMNS: tuple[str, ...] = (
    "id",
    "dataset",
    "subset",
    "counts",
    "dist",
    "n_annotators",
    "majority",
    "entropy_norm",
    "n_active",
    "ambiguity_level",
    "split",
)
# names a text field may not take: it would overwrite (or be overwritten by) a column the workbench
# writes: the canonical ones, the clip path, MSP-Podcast's fold, and the generic loader's own
RESERVED_COLUMNS: frozenset[str] = frozenset({*CANONICAL_COLUMNS, "audio_path", "fold", "_line", "_id", "_label"})


def label_key(text: str) -> str:
    """A class spelling as compared everywhere: Unicode NFC, case-folded, surrounding whitespace dropped,
    runs of whitespace, `_` and `-` read as one space (`" Very_Bad "` == `"very bad"`)."""
    return re.sub(r"[\s_\-]+", " ", unicodedata.normalize("NFC", str(text)).casefold()).strip()


@dataclass(frozen=True)
class DatasetSpec:
    """What the rest of the workbench needs to know about a dataset."""

    name: str
    classes: tuple[str, ...]
    text_fields: tuple[str, ...]
    ambiguity_scheme: AmbiguityScheme
    display_name: str
    class_display: dict[str, str] = field(default_factory=dict)
    # Extra spellings the parser accepts for a class (case-insensitive), e.g. "angry" -> "anger".
    aliases: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # The JSON keys the paper's prompt asks for, in class order (their exact spelling).
    prompt_keys: tuple[str, ...] = ()
    subsets: tuple[str, ...] = ()
    subset_display: dict[str, str] = field(default_factory=dict)
    # The paper's input modality for this dataset: "text", or "speech+text" where the items have clips
    # (`audio_path` column) and the model hears the clip and reads the transcript (MSP-Podcast).
    modality: Modality = "text"
    # normalised-entropy edges of the low / medium / high levels (entropy scheme; paper App. C.2.1)
    entropy_bins: tuple[float, float] = ENTROPY_BINS
    # the definition file this spec was read from (its prompt and loader are looked up there, so a dataset
    # known only by its file works everywhere, registered or not)
    source: str = ""

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"{self.name}: modality must be one of {MODALITIES}, got {self.modality!r}")
        keys = [label_key(c) for c in self.classes]
        if len(set(keys)) != len(keys):
            raise ValueError(f"{self.name}: duplicate class names (after case/space/Unicode folding) in {self.classes}")
        if self.prompt_keys and len(self.prompt_keys) != len(self.classes):
            raise ValueError(f"{self.name}: prompt_keys must match classes one to one")
        reserved = sorted(set(self.text_fields) & RESERVED_COLUMNS)
        if reserved:
            raise ValueError(f"{self.name}: text field(s) {reserved} are names of columns the workbench writes")
        if len(set(self.text_fields)) != len(self.text_fields) or not self.text_fields:
            raise ValueError(f"{self.name}: text_fields must be distinct and at least one, got {self.text_fields}")

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def levels(self) -> tuple[str, ...]:
        return ENTROPY_LEVELS if self.ambiguity_scheme == "entropy" else ACTIVE_LABEL_LEVELS

    @property
    def keys(self) -> tuple[str, ...]:
        """JSON keys used in prompts (the paper's spelling), in class order."""
        return self.prompt_keys or self.classes

    def display(self, cls: str) -> str:
        return self.class_display.get(cls, cls.capitalize())


def custom_spec(
    classes: list[str] | tuple[str, ...],
    text_fields: list[str] | tuple[str, ...] = ("text",),
    ambiguity_scheme: AmbiguityScheme = "entropy",
    name: str = "custom",
) -> DatasetSpec:
    """A spec for a bring-your-own dataset (not registered globally)."""
    return DatasetSpec(
        name=name,
        classes=tuple(classes),
        text_fields=tuple(text_fields),
        ambiguity_scheme=ambiguity_scheme,
        display_name=name,
    )


def json_shape(spec: DatasetSpec) -> str:
    """`{"entailment": float, "neutral": float, "contradiction": float}` in the spec's key spelling."""
    return "{" + ", ".join(f'"{k}": float' for k in spec.keys) + "}"


@dataclass(frozen=True)
class PromptTemplate:
    background: str
    target: str  # format string over the spec's text fields
    task: str
    label_word: str  # "label" or "emotion"
    reasoning_questions: tuple[str, ...]

    def output_constraints(self, spec: DatasetSpec) -> str:
        return (
            "Before outputting, check if the format of your output is in accordance with the "
            "requirements I provided.\n"
            f"1. Generate the {self.label_word} probabilities in EXACTLY this JSON structure: {json_shape(spec)}.\n"
            "2. The sum of all probabilities must be exactly 1.0.\n"
            "3. Do not include any explanations or text besides the dictionary."
        )

    def reasoning_constraints(self, spec: DatasetSpec) -> str:
        bullets = "\n".join(f"- {q}" for q in self.reasoning_questions)
        return (
            "Before producing your final answer, explain your reasoning:\n"
            f"{bullets}\n"
            f"Then output EXACTLY this JSON on its own line: {json_shape(spec)}"
        )


@dataclass(frozen=True)
class RemoteFile:
    url: str
    name: str  # file name under the dataset folder
    sha256: str | None = None
    size: int | None = None
    member: str | None = None  # for zip archives: the member to extract as `name`
