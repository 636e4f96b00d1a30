"""`ExperimentConfig`: one dataclass per GRPO experiment, serialised to and from YAML.

The `grpo` mapping passes through to TRL's `GRPOConfig` untouched, so every TRL field stays
reachable. `paper_grpo()` gives the paper's values (App. D.2) with the batch semantics made
explicit: 4 prompts x 4 rollouts per optimizer step on any GPU count (see README, "Decisions").
Every objective and schedule setting is written out, never inherited from whatever TRL version is
installed: TRL's defaults have changed under users before (`loss_type` was `bnpo`, now `dapo`).
`PAPER_SOURCES` names where each value comes from (a paper section, or "TRL default" where the
paper defers to `GRPOConfig`'s defaults); README's decisions table is checked against it.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml

from shala_lib.generation.embedded import EMBEDDED

# where each of the paper's settings comes from (README, "Decisions", lists the same)
PAPER_PROMPTS_PER_STEP = 4  # App. D.2: batch 1 per GPU x 2 accumulation x 2 GPUs = "4 prompts per optimization step"
PAPER_SOURCES: dict[str, str] = {
    "learning_rate": "paper App. D.2 (1e-6)",
    "optim": "paper App. D.2 (AdamW)",
    "num_generations": "paper App. D.2 (4 rollouts)",
    "temperature": "paper App. D.2 (1.2)",
    "max_completion_length": "paper App. D.2 (128 tokens)",
    "beta": "paper App. D.2 (no KL term)",
    "loss_type": "paper eq. 7/11 (1/|o_i| per completion, then the group mean) = TRL 'grpo'",
    "importance_sampling_level": "paper eq. 11 (per-token ratio) = TRL default",
    "epsilon": "paper eq. 11 (PPO clip; value not given) -> TRL default 0.2",
    "mask_truncated_completions": "paper silent -> TRL default (False: truncated completions stay in the loss)",
    "scale_rewards": "paper eq. 6/10 (group std) = TRL default 'group'",
    "num_train_epochs": "paper App. D.2 ('remaining hyperparameters follow GRPOConfig defaults') -> 3",
    "logging_steps": "ours (every step: training curves)",
    "save_steps": "ours (a checkpoint every 100 steps)",
}


def paper_grpo() -> dict[str, Any]:
    """The paper's GRPO hyperparameters (App. D.2, eq. 7/11), every objective and schedule setting
    explicit; sources in `PAPER_SOURCES`."""
    return {
        "learning_rate": 1e-6,
        "optim": "adamw_torch",
        "num_generations": 4,
        "temperature": 1.2,
        "max_completion_length": 128,
        "beta": 0.0,
        "per_device_train_batch_size": 4,  # completions (TRL >= 0.16 semantics)
        "loss_type": "grpo",  # eq. 7/11; TRL 1.16's default is "dapo" (token-level normalisation)
        "importance_sampling_level": "token",
        "epsilon": 0.2,
        "mask_truncated_completions": False,
        "scale_rewards": "group",  # TRL default, stated explicitly: the faithful choice
        "num_train_epochs": 3,  # GRPOConfig's default, which the paper defers to
        "logging_steps": 1,
        "save_steps": 100,
    }


def _parse_value(raw: str) -> Any:
    """YAML scalar, except that YAML 1.1 reads `1e-5` as a string: numbers in any float syntax
    become floats."""
    value = yaml.safe_load(raw)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


@dataclass
class ExperimentConfig:
    name: str = "shala_chaosnli"
    dataset: str = "chaosnli"
    subset: str | None = None
    data_dir: str | None = None
    # notebook 01's processed folder: train and evaluate on its prepared table (`data.loading.prepared_path`);
    # None: load the dataset's files with `seed` and `subset`
    processed_dir: str | None = None
    seed: int = 42
    model: str = EMBEDDED
    method: str = "shala"  # a registered method that trains (shala_lib.scoring.methods): shala | shala_no_ambi | mls
    prompt_variant: str = "paper"
    # text | speech | speech+text; None: the dataset's (speech+text for MSP-Podcast, as the paper). One
    # modality per run: ZeRO-3 hangs when some ranks run the audio tower and others do not
    modality: str | None = None
    prefill: bool = False
    output_dir: str = "runs/train"
    prompts_per_step: int = PAPER_PROMPTS_PER_STEP  # prompts per optimizer step, summed over GPUs
    max_train_items: int | None = None
    max_eval_items: int | None = None
    eval_split: str = "test"
    eval_batch_size: int = 64
    val_every: int = 0  # steps between validation-JSD checks (0: off)
    val_items: int = 32
    zero_std_warn: float = 0.8  # warn when frac_reward_zero_std stays above this
    zero_std_window: int = 10
    # checkpoints kept: the last `keep_checkpoints`, plus the one with the lowest validation JSD
    # when validation is on (`val_every`); None keeps all (a 7B fp32 + Adam checkpoint is ~100 GB)
    keep_checkpoints: int | None = 2
    # reward and rollout options the paper leaves open (README, "Decisions"); off = the paper's setting
    sum_tolerance: float | None = None  # strict sum: |sum of the raw values - 1| > tolerance scores 0
    structured_rollouts: bool = False  # GRPO rollouts constrained to the JSON shape (shala_lib.training.rollouts)
    constrained_eval: bool = False  # validation and test predictions constrained to the JSON shape too
    grammar: str = "json"  # of both: "json" (any numbers) or "simplex" (numbers that sum to 1)
    # train only the top N decoder layers and the final norm (embeddings and the rest frozen): the
    # backward pass stops there, so a CPU step costs about half (small-model recipes; None: all)
    train_top_layers: int | None = None
    lora: bool = False
    lora_r: int = 16
    lora_alpha: int = 32
    lora_target_modules: str | list[str] = "all-linear"
    device: str = "auto"  # auto | cpu | cuda
    report_to: list[str] = field(default_factory=lambda: ["tensorboard"])
    grpo: dict[str, Any] = field(default_factory=paper_grpo)

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(asdict(self), sort_keys=False)
        if path is not None:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
            Path(path).write_text(text)
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> ExperimentConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{source}: unknown config key(s) {unknown}; known: {sorted(known)}")
        grpo = {**paper_grpo(), **(data.get("grpo") or {})}
        cfg = cls(**{**data, "grpo": grpo})
        cfg.validate(source)
        return cfg

    @classmethod
    def from_yaml(cls, path: str | Path) -> ExperimentConfig:
        data = yaml.safe_load(Path(path).read_text()) or {}
        if not isinstance(data, dict):
            raise ValueError(f"{path}: expected a mapping at the top level")
        return cls.from_dict(data, source=str(path))

    def with_overrides(self, overrides: list[str]) -> ExperimentConfig:
        """Apply `key=value` overrides (`grpo.learning_rate=1e-5` reaches into `grpo`)."""
        data = asdict(self)
        for item in overrides:
            if "=" not in item:
                raise ValueError(f"override {item!r} must look like key=value")
            key, raw = item.split("=", 1)
            value = _parse_value(raw)
            if key.startswith("grpo."):
                data["grpo"][key[5:]] = value
            else:
                data[key] = value
        return ExperimentConfig.from_dict(data, source="overrides")

    def validate(self, source: str = "config") -> None:
        from shala_lib.scoring.methods import trained_methods

        if self.method not in trained_methods():
            raise ValueError(f"{source}: method must be one of {trained_methods()}, got {self.method!r}")
        if self.prompt_variant not in ("paper", "reasoning"):
            raise ValueError(f"{source}: prompt_variant must be 'paper' or 'reasoning'")
        from shala_lib.data.specs import MODALITIES

        if self.modality is not None and self.modality not in MODALITIES:
            raise ValueError(
                f"{source}: modality must be one of {MODALITIES} (or null: the dataset's), got {self.modality!r}"
            )
        if self.modality not in (None, "text") and self.grpo.get("use_vllm"):
            raise ValueError(f"{source}: TRL's vLLM rollouts have no audio input; set grpo.use_vllm false for speech")
        g = int(self.grpo.get("num_generations", 8))
        if g < 2:
            raise ValueError(f"{source}: grpo.num_generations must be >= 2 (GRPO needs a group)")
        if self.grpo.get("scale_rewards") not in ("group", "batch", "none", True, False):
            raise ValueError(f"{source}: grpo.scale_rewards must be group, batch or none")
        if self.keep_checkpoints is not None and int(self.keep_checkpoints) < 1:
            raise ValueError(f"{source}: keep_checkpoints must be >= 1 (or null to keep every checkpoint)")
        if self.grpo.get("save_total_limit") is not None:
            raise ValueError(
                f"{source}: set keep_checkpoints (the last N plus the best by validation JSD) instead of "
                "grpo.save_total_limit (TRL would count the best checkpoint within the limit)"
            )
        if self.sum_tolerance is not None and not 0 <= float(self.sum_tolerance) < 1:
            raise ValueError(f"{source}: sum_tolerance must be in [0, 1) (or null: off), got {self.sum_tolerance}")
        from shala_lib.generation.constrained import GRAMMARS

        if self.grammar not in GRAMMARS:
            raise ValueError(f"{source}: grammar must be one of {GRAMMARS}, got {self.grammar!r}")
        if self.train_top_layers is not None and (int(self.train_top_layers) < 1 or self.lora):
            raise ValueError(f"{source}: train_top_layers must be >= 1 and cannot be combined with lora")
        if self.structured_rollouts and self.grpo.get("use_vllm"):
            raise ValueError(
                f"{source}: structured_rollouts uses a transformers logits processor; set grpo.use_vllm false"
            )
        gen = self.grpo.get("generation_kwargs") or {}
        if gen.get("do_sample") is False:
            raise ValueError(
                f"{source}: greedy rollouts give identical completions and zero advantage; "
                "greedy decoding is for evaluation only"
            )
