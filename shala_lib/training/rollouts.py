"""Structured rollouts: GRPO generation constrained to the JSON answer shape.

With free sampling, a small model's rollouts differ mostly in format noise (a stray brace, a
truncated number, trailing text), so the group's reward variance, which is all GRPO learns from,
comes from the format rather than from the probabilities. `StructuredGRPOTrainer` passes the same
logits processor that constrained inference uses (`shala_lib.generation.constrained.JsonDistributionProcessor`)
into TRL's transformers generation, so every rollout is `{"k1": N, ..., "kC": N}` and rollouts of a
prompt differ only in their numbers. The log-probabilities TRL trains on are the policy's own
(unconstrained) ones, as with TRL's `vllm_structured_outputs_regex` for vLLM rollouts.

Override set, against trl 1.16.0: `_generate_single_turn` only (the transformers path; vLLM rollouts
are rejected with structured rollouts, see `ExperimentConfig.validate`).
"""

from __future__ import annotations

from typing import Any

from trl import GRPOTrainer


class StructuredGRPOTrainer(GRPOTrainer):
    """`GRPOTrainer` whose rollouts are generated under `rollout_processor` (a logits processor
    with an optional `reset()` for per-call state), when one is given."""

    def __init__(self, *args: Any, rollout_processor: Any = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.rollout_processor = rollout_processor

    def _generate_single_turn(self, *args: Any, **kwargs: Any) -> Any:
        if self.rollout_processor is None:
            return super()._generate_single_turn(*args, **kwargs)
        from transformers import LogitsProcessorList

        model = self.accelerator.unwrap_model(self.model_wrapped)  # what TRL's generation context yields
        proc = self.rollout_processor
        plain = model.generate

        def generate(*a: Any, **kw: Any) -> Any:
            if hasattr(proc, "reset"):
                proc.reset()  # per-call state (the prompt length)
            return plain(*a, logits_processor=LogitsProcessorList([proc]), **kw)

        model.generate = generate  # an instance attribute: shadows the class method for this call only
        try:
            return super()._generate_single_turn(*args, **kwargs)
        finally:
            del model.generate
