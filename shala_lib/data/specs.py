"""`DatasetSpec`: what the rest of the workbench needs to know about a dataset, and lookups by name.

Specs are built from dataset definition files (`shala_lib/resources/datasets/*.yaml` for the paper's
datasets; your own anywhere: `shala_lib.data.definition`). Class order is the order of every
distribution vector. The types live in `dataset_types` (re-exported here); this module adds the lookups
through the registry, which imports nothing of this module (no cycle).
"""

from __future__ import annotations

from shala_lib.data.dataset_types import (
    ACTIVE_LABEL_LEVELS,
    ENTROPY_LEVELS,
    MODALITIES,
    AmbiguityScheme,
    DatasetSpec,
    Modality,
    custom_spec,
    label_key,
)
from shala_lib.data.definition import get_definition, registry

__all__ = [
    "ACTIVE_LABEL_LEVELS",
    "ENTROPY_LEVELS",
    "MODALITIES",
    "AmbiguityScheme",
    "DatasetSpec",
    "Modality",
    "custom_spec",
    "get_spec",
    "label_key",
    "registered",
]


def get_spec(name_or_path: str) -> DatasetSpec:
    """The spec of a registered dataset (built-in or listed in `SHALA_DATASETS`) or of a definition
    file (`path/to/dataset.yaml`); see `shala_lib.data.definition`."""
    return get_definition(name_or_path).spec


def registered() -> list[str]:
    return sorted(registry())


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
