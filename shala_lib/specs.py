"""Dataset specifications: one `DatasetSpec` per dataset, kept in a registry.

A new dataset is one small module that defines its spec, registers it, and provides a loader
(see `shala_lib.datasets`). Class order here is the order of every distribution vector.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

AmbiguityScheme = Literal["entropy", "active_labels"]
Modality = Literal["text", "speech", "speech+text"]
MODALITIES: tuple[str, ...] = ("text", "speech", "speech+text")

ENTROPY_LEVELS: tuple[str, ...] = ("low", "medium", "high")
ACTIVE_LABEL_LEVELS: tuple[str, ...] = ("1", "2", "3", "4+")


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

    def __post_init__(self) -> None:
        if self.modality not in MODALITIES:
            raise ValueError(f"{self.name}: modality must be one of {MODALITIES}, got {self.modality!r}")
        if len(set(self.classes)) != len(self.classes):
            raise ValueError(f"{self.name}: duplicate class names in {self.classes}")
        if self.prompt_keys and len(self.prompt_keys) != len(self.classes):
            raise ValueError(f"{self.name}: prompt_keys must match classes one to one")

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


_REGISTRY: dict[str, DatasetSpec] = {}


def register(spec: DatasetSpec) -> DatasetSpec:
    _REGISTRY[spec.name] = spec
    return spec


def get_spec(name: str) -> DatasetSpec:
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown dataset {name!r}; registered: {sorted(_REGISTRY)}") from None


def registered() -> list[str]:
    return sorted(_REGISTRY)


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


CHAOSNLI = register(
    DatasetSpec(
        name="chaosnli",
        classes=("entailment", "neutral", "contradiction"),
        text_fields=("premise", "hypothesis"),
        ambiguity_scheme="entropy",
        display_name="ChaosNLI",
        aliases={
            "entailment": ("entail", "entails", "e"),
            "neutral": ("neutrality", "n"),
            "contradiction": ("contradict", "contradicts", "contradictory", "c"),
        },
        subsets=("snli", "mnli"),
        subset_display={"snli": "ChaosNLI-S", "mnli": "ChaosNLI-M"},
    )
)

GOEMOTIONS = register(
    DatasetSpec(
        name="goemotions",
        classes=("anger", "disgust", "fear", "joy", "sadness", "surprise", "neutral"),
        text_fields=("text",),
        ambiguity_scheme="active_labels",
        display_name="GoEmotions",
        aliases={
            "anger": ("angry",),
            "disgust": ("disgusted",),
            "fear": ("afraid", "fearful", "scared"),
            "joy": ("happy", "happiness", "joyful"),
            "sadness": ("sad",),
            "surprise": ("surprised",),
        },
    )
)

MSP_PODCAST = register(
    DatasetSpec(
        name="msp_podcast",
        classes=("angry", "contempt", "disgust", "fear", "happy", "neutral", "sad", "surprise"),
        text_fields=("text",),
        ambiguity_scheme="active_labels",
        display_name="MSP-Podcast",
        modality="speech+text",  # paper §4 and Table 1: "MSP-Podcast (Speech + Text)"
        aliases={
            "angry": ("anger",),
            "disgust": ("disgusted",),
            "fear": ("afraid", "fearful", "scared"),
            "happy": ("happiness", "joy"),
            "sad": ("sadness",),
            "surprise": ("surprised",),
        },
        prompt_keys=("Angry", "Contempt", "Disgust", "Fear", "Happy", "Neutral", "Sad", "Surprise"),
    )
)

TRIAGE_PROBE = register(
    DatasetSpec(
        name="triage_probe",
        classes=("urgent", "routine", "junk"),
        text_fields=("message",),
        ambiguity_scheme="entropy",
        display_name="Triage probe (synthetic)",
        aliases={"urgent": ("urgency",), "junk": ("spam", "scam")},
    )
)
