"""The methods: one registry entry each, read by training, tables, figures and widgets alike.

A method is a name, its display label, its colour in every figure, and, for a method that trains,
its reward (`reward(pred, target) -> per-completion rewards`, arrays of items x classes, NaN rows =
unparsable). Rows that do not train (zero-shot, the data-only reference predictions) are methods
without a reward: they have a label and a colour so that every table and figure names and colours
them the same way.

    from shala_lib.scoring.methods import Method, register_method
    register_method(Method("half_shala", "Half SHALA", "#e377c2", reward=lambda p, q: 0.5 * shala_reward(p, q)))
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from shala_lib.scoring.registry import Registry
from shala_lib.scoring.rewards import majority_reward, shala_no_ambi_reward, shala_reward

RewardArray = Callable[[np.ndarray, np.ndarray], np.ndarray]
FALLBACK_COLOR = "#17becf"


@dataclass(frozen=True)
class Method:
    name: str
    label: str
    color: str
    reward: RewardArray | None = None  # a method with a reward trains with GRPO
    data_only: bool = False  # a reference prediction computed from the data (not ranked in Table 1)

    @property
    def trains(self) -> bool:
        return self.reward is not None


_METHODS: Registry[Method] = Registry("method")


def register_method(method: Method, replace: bool = False) -> Method:
    """Add a method to training (when it has a reward), Table 1, the figures and the widgets."""
    return _METHODS.register(method, replace)


def unregister_method(name: str) -> None:
    _METHODS.unregister(name)


def registered_methods() -> tuple[Method, ...]:
    return _METHODS.entries()


def get_method(name: str) -> Method:
    return _METHODS.get(name)


def trained_methods() -> tuple[str, ...]:
    """The methods GRPO can train (those with a reward)."""
    return tuple(m.name for m in registered_methods() if m.trains)


def data_only_methods() -> tuple[str, ...]:
    return tuple(m.name for m in registered_methods() if m.data_only)


def method_label(name: str) -> str:
    """The display label; an unregistered name is shown as it is."""
    method = _METHODS.find(name)
    return method.label if method else name


def method_palette(names: Sequence[str]) -> dict[str, str]:
    """Each method's fixed colour, the same in every figure (one fallback colour for unregistered names)."""
    found = {n: _METHODS.find(n) for n in names}
    return {n: m.color if m else FALLBACK_COLOR for n, m in found.items()}


# The paper's colours where its text names them (Section 5.2: "MLS (purple boxplots)", "SHALA-LLM
# (green lines)"); the others keep matplotlib's tab10 colours, none of them purple or green.
PAPER_COLORS: dict[str, str] = {"mls": "#9467bd", "shala": "#2ca02c"}

for _m in (
    Method("zero_shot", "Zero-shot", "#7f7f7f"),
    Method("mls", "MLS", PAPER_COLORS["mls"], reward=majority_reward),
    Method("shala_no_ambi", "SHALA-LLM (w/o Ambi-En)", "#ff7f0e", reward=shala_no_ambi_reward),
    Method("shala", "SHALA-LLM", PAPER_COLORS["shala"], reward=shala_reward),
    Method("uniform", "Uniform (data only)", "#c7c7c7", data_only=True),
    Method("constant_mean", "Constant train mean (data only)", "#bcbd22", data_only=True),
    Method("majority_oracle", "One-hot majority oracle (data only)", "#8c564b", data_only=True),
):
    register_method(_m)
