"""Rewards for GRPO (paper eq. 8-9 and App. D.4), as arrays and as TRL reward functions.

- shala:          r = H~(p_q) * (1 - D_JS(p_hat, p_q)), D_JS base 2 in [0, 1]
- shala_no_ambi:  r = 1 - D_JS(p_hat, p_q)          (the "w/o Ambi-En" ablation, H~ = 1)
- mls:            r = p_hat[argmax p_q]              (majority-label supervision)
A row of NaN in `pred` means the completion could not be parsed: it scores 0.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from shala_lib.data.distributions import normalized_entropy
from shala_lib.data.specs import DatasetSpec
from shala_lib.generation.parsing import USABLE, parse_distribution
from shala_lib.scoring.metrics import js_distance


def _arrays(pred: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = np.atleast_2d(np.asarray(pred, dtype=float))
    q = np.atleast_2d(np.asarray(target, dtype=float))
    if p.shape != q.shape:
        raise ValueError(f"pred and target shapes differ: {p.shape} vs {q.shape}")
    ok = np.isfinite(p).all(axis=1)
    return p, q, ok


def _one_minus_jsd(p: np.ndarray, q: np.ndarray, ok: np.ndarray) -> np.ndarray:
    r = np.zeros(len(p))
    if ok.any():
        r[ok] = 1.0 - np.asarray(js_distance(p[ok], q[ok], base=2.0))
    return r


def shala_reward(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """H~(target) * (1 - JSD_2(pred, target)); unparsable (NaN) rows score 0."""
    p, q, ok = _arrays(pred, target)
    return normalized_entropy(q) * _one_minus_jsd(p, q, ok)


def shala_no_ambi_reward(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """1 - JSD_2(pred, target); unparsable rows score 0."""
    p, q, ok = _arrays(pred, target)
    return _one_minus_jsd(p, q, ok)


def majority_reward(pred: np.ndarray, target: np.ndarray) -> np.ndarray:
    """pred[argmax target] (ties to the first class); unparsable rows score 0."""
    p, q, ok = _arrays(pred, target)
    r = np.zeros(len(p))
    idx = np.argmax(q, axis=1)
    r[ok] = p[ok, idx[ok]]
    return r


def completion_text(completion: Any) -> str:
    """Text of a TRL completion: a string (standard) or a list of messages (conversational)."""
    if isinstance(completion, str):
        return completion
    if isinstance(completion, list) and completion and isinstance(completion[-1], dict):
        return "".join(str(m.get("content", "")) for m in completion if m.get("role", "assistant") == "assistant")
    if isinstance(completion, dict):
        return str(completion.get("content", ""))
    return ""


def make_reward_func(
    method: str,
    spec: DatasetSpec,
    prefill: str = "",
    target_column: str = "target",
    on_scored: Callable[[dict[str, Any], list[str], list[float], list[str]], None] | None = None,
    sum_tolerance: float | None = None,
) -> Callable[..., list[float]]:
    """A TRL `GRPOTrainer` reward function for `method` (its registered reward, `shala_lib.scoring.methods`).

    TRL calls it as `f(prompts=..., completions=..., completion_ids=..., **dataset_columns)`;
    the target distribution comes from the dataset column `target_column`. `prefill` is the
    text the assistant turn was started with (it is prepended before parsing). Parse statuses
    go to TRL's completions table and the unparsable rate to its metrics when TRL passes
    `log_extra` / `log_metric`. `on_scored(kwargs, texts, rewards, statuses)` sees every scored
    batch (the training loop uses it to save sampled completions with their rewards).

    `sum_tolerance` (strict sum, off by default): the paper's prompt demands probabilities summing to
    "exactly 1.0", but the parser renormalises any positive values, so `{1, 1, 1}` reads as uniform.
    With a tolerance, a completion whose raw values sum further than it from 1 scores 0, like an
    unparsable one (its status becomes `off_simplex`).
    """
    from shala_lib.scoring.methods import registered_methods

    trains = {m.name: m.reward for m in registered_methods() if m.reward is not None}
    if method not in trains:
        raise ValueError(f"unknown method {method!r}; use one of {tuple(trains)} (shala_lib.scoring.methods)")
    fn = trains[method]

    def reward(prompts: Sequence[Any] | None = None, completions: Sequence[Any] = (), **kwargs: Any) -> list[float]:
        if target_column not in kwargs:
            raise KeyError(f"reward {method!r} needs the dataset column {target_column!r}; got {sorted(kwargs)}")
        targets = np.asarray(kwargs[target_column], dtype=float)
        preds = np.full((len(completions), spec.n_classes), np.nan)
        statuses = []
        texts = [completion_text(c) for c in completions]
        for i, text in enumerate(texts):
            res = parse_distribution(prefill + text, spec)
            off = sum_tolerance is not None and res.usable and abs((res.raw_sum or 0.0) - 1.0) > sum_tolerance
            statuses.append("off_simplex" if off else res.status)
            if res.usable and not off:
                preds[i] = res.dist
        rewards = fn(preds, targets)
        if callable(kwargs.get("log_extra")):
            kwargs["log_extra"]("parse_status", statuses)
        if callable(kwargs.get("log_metric")):
            kwargs["log_metric"]("parse_fail_rate", float(np.mean([s not in USABLE for s in statuses])))
        out = rewards.astype(float).tolist()
        if on_scored is not None:
            on_scored(kwargs, texts, out, statuses)
        return out

    reward.__name__ = f"{method}_reward"
    reward.__qualname__ = reward.__name__
    return reward
