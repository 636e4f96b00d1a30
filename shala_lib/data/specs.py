"""`DatasetSpec`: what the rest of the workbench needs to know about a dataset.

Specs are built from dataset definition files (`shala_lib/resources/datasets/*.yaml` for the paper's
datasets; your own anywhere: `shala_lib.data.definition`). Class order is the order of every
distribution vector.
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
    # normalised-entropy edges of the low / medium / high levels (entropy scheme; paper App. C.2.1)
    entropy_bins: tuple[float, float] = (0.33, 0.66)
    # the definition file this spec was read from (its prompt and loader are looked up there, so a dataset
    # known only by its file works everywhere, registered or not)
    source: str = ""

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


def get_spec(name_or_path: str) -> DatasetSpec:
    """The spec of a registered dataset (built-in or listed in `SHALA_DATASETS`) or of a definition
    file (`path/to/dataset.yaml`); see `shala_lib.data.definition`."""
    from shala_lib.data.definition import get_definition

    return get_definition(name_or_path).spec


def registered() -> list[str]:
    from shala_lib.data.definition import registry

    return sorted(registry())


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


# the paper's datasets and the probe, by their usual constant names (read from their definitions)
_CONSTANTS = {
    "CHAOSNLI": "chaosnli",
    "GOEMOTIONS": "goemotions",
    "MSP_PODCAST": "msp_podcast",
    "TRIAGE_PROBE": "triage_probe",
}


def __getattr__(attr: str) -> DatasetSpec:
    if attr in _CONSTANTS:
        return get_spec(_CONSTANTS[attr])
    raise AttributeError(f"module {__name__!r} has no attribute {attr!r}")
