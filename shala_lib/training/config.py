"""`ExperimentConfig`: one dataclass per GRPO experiment, serialised to and from YAML and checked
by a strict pydantic v2 schema before anything runs.

Every field has a type and bounds (`Field(...)`): no truthy strings for a boolean (`lora: maybe` is
an error), no float for an integer, no negative learning rate, no unknown key at any level. The
`grpo` mapping passes through to TRL's `GRPOConfig`, so every TRL field stays reachable; a key that
is not a `GRPOConfig` field is refused, and the ones the workbench relies on (`GrpoSettings`) are
typed and bounded. Errors name the source (the YAML file, or `--set`) and the key path:
`my.yaml: grpo.learning_rate must be > 0, got -1.0`.

`paper_grpo()` gives the paper's values (App. D.2) with the batch semantics made explicit: 4 prompts
x 4 rollouts per optimizer step on any GPU count (see README, "Decisions"). Every objective and
schedule setting is written out, never inherited from whatever TRL version is installed: TRL's
defaults have changed under users before (`loss_type` was `bnpo`, now `dapo`). `PAPER_SOURCES` names
where each value comes from (a paper section, or "TRL default" where the paper defers to
`GRPOConfig`'s defaults); README's decisions table is checked against it.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import asdict, field, fields
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import BeforeValidator, ConfigDict, Field, ValidationError, with_config
from pydantic.dataclasses import dataclass
from typing_extensions import TypedDict

from shala_lib.files import read_yaml, write_text_atomic
from shala_lib.generation.embedded import EMBEDDED
from shala_lib.schema import describe, either

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

# a run's name is one folder under output_dir: no separators, no `.`/`..`, not empty
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_.-]*$"
NAME_WORDS = "a plain folder name (letters, digits, '_', '.', '-'; starting with a letter or digit; no '/')"
SPLITS = ("train", "validation", "test")
# GRPOConfig fields the workbench sets itself: the run folder is `<output_dir>/<name>`, nothing else
WORKBENCH_OWNED_GRPO = {
    "output_dir": "the run folder is <output_dir>/<name>: set output_dir and name instead",
    "save_total_limit": (
        "set keep_checkpoints (the last N plus the best by validation JSD) instead of grpo.save_total_limit "
        "(TRL would count the best checkpoint within the limit)"
    ),
}


@functools.cache
def _generation_config_keys() -> frozenset[str]:
    """The keys `generate` takes as generation settings (transformers' `GenerationConfig` fields)."""
    from transformers import GenerationConfig

    return frozenset(GenerationConfig().to_dict()) | {"suppress_tokens", "begin_suppress_tokens", "logits_processor"}


class ConfigError(ValueError):
    """An experiment config that does not validate; the message names the source and every key path."""


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


_FLOAT_SYNTAX = re.compile(r"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


def _yaml_float(value: Any) -> Any:
    """YAML 1.1 reads `1e-5` (no dot) as a string: a string in float syntax is that number."""
    if isinstance(value, str) and _FLOAT_SYNTAX.match(value.strip()):
        return float(value)
    return value


Float = Annotated[float, BeforeValidator(_yaml_float), Field(allow_inf_nan=False)]
PositiveFloat = Annotated[float, BeforeValidator(_yaml_float), Field(gt=0, allow_inf_nan=False)]
NonNegativeFloat = Annotated[float, BeforeValidator(_yaml_float), Field(ge=0, allow_inf_nan=False)]
Fraction = Annotated[float, BeforeValidator(_yaml_float), Field(ge=0, le=1, allow_inf_nan=False)]
PositiveInt = Annotated[int, Field(ge=1)]
NonNegativeInt = Annotated[int, Field(ge=0)]
Text = Annotated[str, Field(min_length=1)]
# steps: an integer >= 1, or (TRL's convention) a ratio of the total steps in (0, 1)
Steps = PositiveInt | Annotated[float, Field(gt=0, lt=1)]


@with_config(ConfigDict(extra="allow", strict=True))
class GrpoSettings(TypedDict, total=False):
    """The `GRPOConfig` fields the workbench relies on, typed and bounded; any other `GRPOConfig`
    field passes through as written (a key that is not one is refused, see `ExperimentConfig.validate`)."""

    learning_rate: PositiveFloat
    num_generations: Annotated[int, Field(ge=2)]  # GRPO needs a group
    temperature: PositiveFloat
    top_p: Annotated[float, BeforeValidator(_yaml_float), Field(gt=0, le=1)]
    top_k: NonNegativeInt | None
    max_completion_length: PositiveInt
    beta: NonNegativeFloat
    epsilon: PositiveFloat
    epsilon_high: PositiveFloat | None
    per_device_train_batch_size: PositiveInt
    gradient_accumulation_steps: PositiveInt
    generation_batch_size: PositiveInt | None
    steps_per_generation: PositiveInt | None
    num_iterations: PositiveInt
    max_steps: Annotated[int, Field(ge=-1)]  # -1: run num_train_epochs (0 is refused in validate)
    num_train_epochs: PositiveFloat
    logging_steps: Steps
    save_steps: Steps
    weight_decay: NonNegativeFloat
    max_grad_norm: PositiveFloat
    warmup_steps: NonNegativeInt | Annotated[float, Field(ge=0, lt=1)]
    seed: NonNegativeInt
    loss_type: Literal["grpo", "dr_grpo", "dapo", "bnpo", "cispo", "sapo", "luspo", "vespo"]
    importance_sampling_level: Literal["token", "sequence"]
    scale_rewards: Literal["group", "batch", "none"] | bool
    mask_truncated_completions: bool
    use_vllm: bool
    bf16: bool
    fp16: bool
    gradient_checkpointing: bool
    optim: Text
    lr_scheduler_type: Text
    generation_kwargs: dict[str, Any] | None
    model_init_kwargs: dict[str, Any] | None
    report_to: list[str] | str


@dataclass(config=ConfigDict(strict=True, extra="forbid"))
class ExperimentConfig:
    name: Annotated[str, Field(pattern=NAME_PATTERN)] = "shala_chaosnli"
    dataset: Text = "chaosnli"
    subset: Text | None = None
    data_dir: Text | None = None
    # notebook 01's processed folder: train and evaluate on its prepared table (`data.loading.prepared_path`);
    # None: load the dataset's files with `seed` and `subset`
    processed_dir: Text | None = None
    seed: NonNegativeInt = 42
    model: Text = EMBEDDED
    method: Text = "shala"  # a registered method that trains (shala_lib.scoring.methods): shala | shala_no_ambi | mls
    prompt_variant: Literal["paper", "reasoning"] = "paper"
    # text | speech | speech+text; None: the dataset's (speech+text for MSP-Podcast, as the paper). One
    # modality per run: ZeRO-3 hangs when some ranks run the audio tower and others do not
    modality: Text | None = None
    prefill: bool = False
    output_dir: Text = "runs/train"
    prompts_per_step: PositiveInt = PAPER_PROMPTS_PER_STEP  # prompts per optimizer step, summed over GPUs
    max_train_items: PositiveInt | None = None
    max_eval_items: PositiveInt | None = None
    # the split evaluated after training (train | validation | test; null: none)
    eval_split: Literal["train", "validation", "test"] | None = "test"
    eval_batch_size: PositiveInt = 64
    val_every: NonNegativeInt = 0  # steps between validation-JSD checks (0: off)
    val_items: PositiveInt = 32
    zero_std_warn: Fraction = 0.8  # warn when frac_reward_zero_std stays above this
    zero_std_window: PositiveInt = 10
    # checkpoints kept: the last `keep_checkpoints`, plus the one with the lowest validation JSD
    # when validation is on (`val_every`); None keeps all (a 7B fp32 + Adam checkpoint is ~100 GB)
    keep_checkpoints: PositiveInt | None = 2
    # reward and rollout options the paper leaves open (README, "Decisions"); off = the paper's setting
    sum_tolerance: Float | None = None  # strict sum: |sum of the raw values - 1| > tolerance scores 0
    structured_rollouts: bool = False  # GRPO rollouts constrained to the JSON shape (shala_lib.training.rollouts)
    constrained_eval: bool = False  # validation and test predictions constrained to the JSON shape too
    grammar: Text = "json"  # of both: "json" (any numbers) or "simplex" (numbers that sum to 1)
    # train only the top N decoder layers and the final norm (embeddings and the rest frozen): the
    # backward pass stops there, so a CPU step costs about half (small-model recipes; None: all)
    train_top_layers: PositiveInt | None = None
    lora: bool = False
    lora_r: PositiveInt = 16
    lora_alpha: PositiveInt = 32
    lora_target_modules: Text | list[Text] = "all-linear"
    device: Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:\d+)?)$")] = "auto"  # auto | cpu | cuda[:N]
    report_to: list[Text] = field(default_factory=lambda: ["tensorboard"])
    grpo: GrpoSettings = field(default_factory=paper_grpo)  # type: ignore[assignment]

    @property
    def run_dir(self) -> Path:
        return Path(self.output_dir) / self.name

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_yaml(self, path: str | Path | None = None) -> str:
        text = yaml.safe_dump(asdict(self), sort_keys=False)
        if path is not None:
            write_text_atomic(path, text)
        return text

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "<dict>") -> ExperimentConfig:
        """Validate `data` (unknown keys, types, bounds, then the rules across fields); `grpo` is
        merged over `paper_grpo()`. Errors are `ConfigError`s naming `source` and the key paths."""
        return _build(data, lambda _path: source)

    @classmethod
    def from_yaml(cls, path: str | Path) -> ExperimentConfig:
        data = read_yaml(path)
        if data is None:
            raise ConfigError(f"{path}: the config is empty; copy one of configs/*.yaml and change what you need")
        if not isinstance(data, dict):
            raise ConfigError(f"{path}: expected a mapping of config keys at the top level, got {type(data).__name__}")
        cfg = cls.from_dict(data, source=str(path))
        object.__setattr__(cfg, "_source", str(path))
        return cfg

    def with_overrides(self, overrides: list[str]) -> ExperimentConfig:
        """Apply `key=value` overrides (`grpo.learning_rate=1e-5` reaches into `grpo`), then validate
        the whole config. An error in a key that an override set names `--set`; any other names the
        config's file."""
        data = asdict(self)
        touched: set[str] = set()
        for item in overrides:
            if not isinstance(item, str) or "=" not in item:
                raise ConfigError(f"--set: {item!r} must look like key=value (e.g. grpo.learning_rate=1e-5)")
            key, raw = item.split("=", 1)
            path = key.strip().split(".")
            if any(not part for part in path):
                raise ConfigError(f"--set: {item!r}: the key {key!r} is not a key path like grpo.learning_rate")
            if path[0] not in _FIELD_NAMES:
                raise ConfigError(_unknown_keys_message("--set", [path[0]]))
            target = data
            for i, part in enumerate(path[:-1]):
                nxt = target.get(part)
                if nxt is None:
                    nxt = target[part] = {}
                if not isinstance(nxt, dict):
                    raise ConfigError(f"--set: {'.'.join(path[: i + 1])} is not a mapping; cannot set {key}")
                target = nxt
            target[path[-1]] = _parse_value(raw, string_field=len(path) == 1 and path[0] in _STRING_FIELDS)
            touched.add(key)
        file = getattr(self, "_source", "config")

        def source_for(key_path: str) -> str:
            hit = any(key_path == t or key_path.startswith(t + ".") or t.startswith(key_path + ".") for t in touched)
            return "--set" if hit else f"{file} (with --set {' '.join(overrides)})"

        cfg = _build(data, source_for, merge_paper=False)
        object.__setattr__(cfg, "_source", file)
        object.__setattr__(cfg, "_set_keys", frozenset({*getattr(self, "_set_keys", ()), *touched}))
        return cfg

    def source_of(self, key_path: str) -> str:
        """Where a key's value came from, for error messages: `--set` when an override set it, else the
        config's file (`config` for one built in code)."""
        keys = getattr(self, "_set_keys", ())
        if any(key_path == k or key_path.startswith(k + ".") for k in keys):
            return "--set"
        return getattr(self, "_source", "config")

    def validate(self, source: str = "config") -> None:
        """The rules across fields and against TRL's `GRPOConfig` (types and bounds are the schema's)."""
        errors = _cross_field_errors(self)
        if errors:
            raise ConfigError("\n".join(f"{source}: {msg}" for _path, msg in errors))


_FIELD_NAMES = frozenset(f.name for f in fields(ExperimentConfig))
# fields whose --set value is the text as written (`name=123` is the name "123", not a number)
_STRING_FIELDS = frozenset(
    {"name", "dataset", "subset", "data_dir", "processed_dir", "model", "method", "modality", "output_dir", "grammar"}
)


def _parse_value(raw: str, string_field: bool = False) -> Any:
    """An override's value as YAML (`[]`, `null`, `true`, `1e-5` as a float); for a string field a
    scalar that YAML reads as a number or boolean stays the text written."""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError as e:
        raise ConfigError(f"--set: value {raw!r} is not valid YAML: {e}") from None
    if string_field and isinstance(value, bool | int | float):
        return raw.strip()
    return _yaml_float(value)


def _unknown_keys_message(source: str, unknown: list[str]) -> str:
    import difflib

    hints = []
    for key in unknown:
        close = difflib.get_close_matches(key, sorted(_FIELD_NAMES), n=1)
        if close:
            hints.append(f"{key!r}: did you mean {close[0]!r}?")
    hint = f" ({'; '.join(hints)})" if hints else ""
    return f"{source}: unknown config key(s) {unknown}{hint}; known: {sorted(_FIELD_NAMES)}"


def _build(data: Any, source_for: Callable[[str], str], merge_paper: bool = True) -> ExperimentConfig:
    if not isinstance(data, dict):
        raise ConfigError(f"{source_for('')}: expected a mapping of config keys, got {type(data).__name__}")
    unknown = sorted(str(k) for k in data if k not in _FIELD_NAMES)
    if unknown:
        raise ConfigError(_unknown_keys_message(source_for(unknown[0]), unknown))
    data = dict(data)
    grpo = data.get("grpo")
    if grpo is not None and not isinstance(grpo, dict):
        raise ConfigError(f"{source_for('grpo')}: grpo must be a mapping of GRPOConfig fields, got {grpo!r}")
    if merge_paper:
        data["grpo"] = {**paper_grpo(), **(grpo or {})}
    elif grpo is None:
        data["grpo"] = {}
    try:
        cfg = ExperimentConfig(**data)
    except ValidationError as e:
        raise ConfigError("\n".join(_schema_messages(e, data, source_for))) from None
    errors = _cross_field_errors(cfg)
    if errors:
        raise ConfigError("\n".join(f"{source_for(path)}: {msg}" for path, msg in errors))
    return cfg


def _key_path(loc: tuple[Any, ...], data: Any) -> str:
    """The part of a pydantic error location that is keys of the input (union member tags dropped)."""
    parts = []
    for item in loc:
        if isinstance(data, dict) and item in data:
            parts.append(str(item))
            data = data[item]
        elif isinstance(data, list) and isinstance(item, int) and 0 <= item < len(data):
            parts.append(f"[{item}]")
            data = data[item]
        else:
            break
    return ".".join(parts).replace(".[", "[")


def _schema_messages(e: ValidationError, data: dict[str, Any], source_for: Callable[[str], str]) -> list[str]:
    by_path: dict[str, list[str]] = {}
    for err in e.errors():
        path = _key_path(err["loc"], data) or ".".join(map(str, err["loc"]))
        msg = describe(err, {NAME_PATTERN: NAME_WORDS})
        if msg not in by_path.setdefault(path, []):
            by_path[path].append(msg)
    return [f"{source_for(path)}: {path} {either(msgs)}" for path, msgs in by_path.items()]


@functools.cache
def grpo_config_fields() -> frozenset[str]:
    """The field names of TRL's `GRPOConfig` (imports TRL the first time)."""
    import dataclasses

    from trl import GRPOConfig

    return frozenset(f.name for f in dataclasses.fields(GRPOConfig))


def _cross_field_errors(cfg: ExperimentConfig) -> list[tuple[str, str]]:
    """(key path, message) for each rule across fields, and each `grpo` key TRL does not have."""
    from shala_lib.data.specs import MODALITIES
    from shala_lib.generation.constrained import GRAMMARS
    from shala_lib.scoring.methods import trained_methods

    out: list[tuple[str, str]] = []
    grpo = cfg.grpo
    unknown = sorted(k for k in grpo if k not in grpo_config_fields())
    for key in unknown:
        import difflib

        close = difflib.get_close_matches(key, sorted(grpo_config_fields()), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        out.append((f"grpo.{key}", f"grpo.{key} is not a field of TRL's GRPOConfig{hint}"))
    for key, why in WORKBENCH_OWNED_GRPO.items():
        if grpo.get(key) is not None:
            out.append((f"grpo.{key}", f"grpo.{key}: {why}"))
    if cfg.method not in trained_methods():
        out.append(("method", f"method must be one of {trained_methods()}, got {cfg.method!r}"))
    if cfg.modality is not None and cfg.modality not in MODALITIES:
        out.append(("modality", f"modality must be one of {MODALITIES} (or null: the dataset's), got {cfg.modality!r}"))
    if cfg.modality not in (None, "text") and grpo.get("use_vllm"):
        out.append(("grpo.use_vllm", "grpo.use_vllm: TRL's vLLM rollouts have no audio input; set it false for speech"))
    if grpo.get("max_steps") == 0:
        out.append(("grpo.max_steps", "grpo.max_steps must be >= 1 (or -1: run num_train_epochs), got 0"))
    if cfg.sum_tolerance is not None and not 0 <= cfg.sum_tolerance < 1:
        out.append(("sum_tolerance", f"sum_tolerance must be in [0, 1) (or null: off), got {cfg.sum_tolerance}"))
    if cfg.grammar not in GRAMMARS:
        out.append(("grammar", f"grammar must be one of {GRAMMARS}, got {cfg.grammar!r}"))
    if cfg.train_top_layers is not None and cfg.lora:
        out.append(("train_top_layers", "train_top_layers must be null with lora: true (they cannot be combined)"))
    if cfg.structured_rollouts and grpo.get("use_vllm"):
        out.append(
            (
                "structured_rollouts",
                "structured_rollouts uses a transformers logits processor; set grpo.use_vllm false",
            )
        )
    import difflib

    gen = grpo.get("generation_kwargs") or {}
    known_gen = _generation_config_keys()
    for k in sorted(gen):
        if k not in known_gen:
            close = difflib.get_close_matches(k, known_gen, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            out.append(
                (
                    f"grpo.generation_kwargs.{k}",
                    f"grpo.generation_kwargs.{k}: not a field of transformers' GenerationConfig{hint}",
                )
            )
    for k in ("do_sample", "use_cache"):
        if k in gen and not isinstance(gen[k], bool):
            out.append(
                (f"grpo.generation_kwargs.{k}", f"grpo.generation_kwargs.{k} must be true or false, got {gen[k]!r}")
            )
    if gen.get("do_sample") is False:
        out.append(
            (
                "grpo.generation_kwargs.do_sample",
                "grpo.generation_kwargs.do_sample: greedy rollouts give identical completions and zero "
                "advantage; greedy decoding is for evaluation only",
            )
        )
    return out
