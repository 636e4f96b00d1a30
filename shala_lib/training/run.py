"""One GRPO run of SHALA, SHALA w/o Ambi-En or MLS on TRL's `GRPOTrainer`; the command is `shala_lib.train`.

    python -m shala_lib.train CONFIG.yaml [--resume | --overwrite] [--set grpo.max_steps=10 ...]
    accelerate launch --config_file configs/accelerate_zero3.yaml --num_processes 2 \
        -m shala_lib.train CONFIG.yaml          # multi-GPU, DeepSpeed ZeRO-3

Writes into `<output_dir>/<name>/`: checkpoints (`checkpoint-N/`), `final/`, `metrics.csv`,
TensorBoard logs, `completions.parquet` (sampled completions with rewards and parse status),
`effective_config.yaml` (the experiment, the full effective GRPOConfig and package versions),
and after training the test-split predictions and metrics, like the zero-shot ones.
"""

from __future__ import annotations

import logging
import warnings
from typing import Any

import numpy as np

from shala_lib.data.prompts import prefill_text
from shala_lib.generation.models import load_tokenizer
from shala_lib.scoring.rewards import make_reward_func
from shala_lib.training.callbacks import CompletionLog, NonFiniteTrainingError, make_callbacks
from shala_lib.training.config import ExperimentConfig
from shala_lib.training.distributed import leave_distributed_training
from shala_lib.training.grpo_args import grpo_config
from shala_lib.training.inputs import (
    OMNI_LORA_TARGETS,
    build_dataset,
    freeze_below_top_layers,
    json_processor,
    model_setup,
)
from shala_lib.training.preflight import check_inputs
from shala_lib.training.run_dir import (
    checkpoint_step,
    last_checkpoint,
    plan_run_dir,
    prepare_run_dir,
    write_effective_config,
)
from shala_lib.training.validation import evaluate_checkpoint

log = logging.getLogger(__name__)


def train(cfg: ExperimentConfig, resume: bool = False, overwrite: bool = False) -> dict[str, Any]:
    """Run GRPO for one experiment; returns paths and the post-training test metrics.

    Nothing is moved, created or deleted before every input is checked (`check_inputs`: dataset,
    subset, data files, splits, model; then the tokenizer and TRL's arguments). A folder holding an
    earlier run is never replaced: the run refuses to start there (RunExistsError) unless `resume`
    (continue from its last checkpoint; an error when it has none) or `overwrite` (the earlier run is
    moved aside, whole, to `<name>.previous-N/`).

    Runs as one process or as several (`torchrun` / `accelerate launch`): every process checks the
    inputs and the run folder, then the main process alone moves the earlier run aside and creates the
    folder while the others wait; every process logs the completions it scored to its own part, and after
    training the main process merges them and, with every distributed engine released, evaluates the
    final model on the test split.
    """
    import torch
    from accelerate import PartialState

    from shala_lib.training.rollouts import StructuredGRPOTrainer

    if resume and overwrite:
        raise ValueError("resume and overwrite exclude each other: resume continues the run, overwrite sets it aside")
    inputs = check_inputs(cfg, training=True)  # read-only: a typo fails here, the earlier run untouched
    spec, table, model_path = inputs.spec, inputs.table, inputs.model_path
    tok = load_tokenizer(model_path)
    setup = model_setup(cfg, spec, model_path, tok)
    train_ds = build_dataset(
        table, spec, "train", cfg, setup.renderer, cfg.max_train_items, setup.modality, setup.system
    )
    on_cpu = cfg.device == "cpu" or (cfg.device == "auto" and not torch.cuda.is_available())
    args = grpo_config(cfg, on_cpu)  # starts the process group when launched with several processes
    state = PartialState()
    plan = plan_run_dir(cfg.run_dir, "resume" if resume else "overwrite" if overwrite else "refuse")
    state.wait_for_everyone()  # every process has looked at the folder before the main one changes it
    if state.is_main_process:
        prepare_run_dir(plan)
        cfg.to_yaml(cfg.run_dir / "experiment.yaml")
    state.wait_for_everyone()  # the folder is ready before any process writes into it
    ckpt = plan.checkpoint
    resume_step = checkpoint_step(ckpt) if ckpt else None
    completions = CompletionLog(cfg.run_dir, cfg.method, state.process_index, state.num_processes, resume_step)
    reward = make_reward_func(
        cfg.method,
        spec,
        prefill=prefill_text(spec) if cfg.prefill else "",
        on_scored=completions,
        sum_tolerance=cfg.sum_tolerance,
    )
    peft_config = None
    if cfg.lora:
        from peft import LoraConfig

        targets = cfg.lora_target_modules
        if setup.omni and targets == "all-linear":
            targets = OMNI_LORA_TARGETS  # the language model only: no adapters on the audio or vision towers
        peft_config = LoraConfig(r=cfg.lora_r, lora_alpha=cfg.lora_alpha, target_modules=targets, task_type="CAUSAL_LM")
    val_set, val_audio = None, None
    if cfg.val_every:
        val = build_dataset(table, spec, "validation", cfg, setup.renderer, cfg.val_items, setup.modality, setup.system)
        val_set = (list(val["prompt"]), prefill_text(spec) if cfg.prefill else "", np.asarray(val["target"]))
        if setup.speech:
            val_audio = (list(val["audio_path"]), setup.processor)
    callbacks = make_callbacks(cfg, completions, val_set, spec, tok, resume_step, val_audio)
    model: Any = model_path  # TRL loads it (model_init_kwargs; under ZeRO-3 partitioned as it loads)
    if setup.omni:
        from shala_lib.generation.omni import load_thinker, placeholder_token_ids

        # the thinker is loaded here (TRL would pick AutoModelForCausalLM); after grpo_config(), so under
        # ZeRO-3 it is partitioned as it loads, like TRL's own loading
        model = load_thinker(model_path, **args.model_init_kwargs)
        # a sampled <|AUDIO|> / image / video placeholder would break the next forward's feature merge
        args.generation_kwargs = {**(args.generation_kwargs or {}), "suppress_tokens": placeholder_token_ids(model)}
    if cfg.train_top_layers:
        from transformers import AutoModelForCausalLM

        if not setup.omni:
            model = AutoModelForCausalLM.from_pretrained(model_path, **args.model_init_kwargs)
        trainable, total = freeze_below_top_layers(model, int(cfg.train_top_layers))
        log.info("train_top_layers=%s: %d of %d parameters trainable", cfg.train_top_layers, trainable, total)
    rollout_processor = json_processor(tok, spec, cfg.prefill, cfg.grammar) if cfg.structured_rollouts else None
    common = dict(
        model=model,
        reward_funcs=[reward],
        args=args,
        train_dataset=train_ds,
        processing_class=tok,
        callbacks=callbacks,
        peft_config=peft_config,
        rollout_processor=rollout_processor,
    )
    if setup.speech:
        from shala_lib.training.speech_trainer import SpeechGRPOTrainer

        trainer: Any = SpeechGRPOTrainer(**common, audio_processor=setup.processor)
    else:
        trainer = StructuredGRPOTrainer(**common)
    if state.is_main_process:
        write_effective_config(cfg, trainer.args, setup, trainer.accelerator)
    with warnings.catch_warnings():
        # TRL reads `model.is_gradient_checkpointing` at every generation and transformers 5 warns each time
        # (hundreds of identical lines in a notebook); the attribute still works, nothing else is hidden
        warnings.filterwarnings("ignore", message="`is_gradient_checkpointing` is deprecated", category=FutureWarning)
        trainer.train(resume_from_checkpoint=str(ckpt) if ckpt else None)
    state.wait_for_everyone()  # every process has flushed its completions (on_train_end)
    if state.is_main_process:
        completions.merge()
    guard = callbacks[0]
    if guard.tripped is not None:
        step, key, value = guard.tripped
        good = last_checkpoint(cfg.run_dir)
        raise NonFiniteTrainingError(
            f"{key} = {value} at step {step}; training stopped. Last good checkpoint: {good or 'none'}. "
            "Lower the learning rate, keep fp32 master weights (bf16 autocast), or check the rewards."
        )
    final = cfg.run_dir / "final"
    trainer.save_model(str(final))  # every process: under ZeRO-3 the weights are gathered from all
    if state.is_main_process:
        tok.save_pretrained(final)
        if setup.processor is not None:
            from shala_lib.generation.omni import save_processor

            save_processor(setup.processor, final)
    if setup.speech:
        trainer.clip_report.log(f"{cfg.name} (training clips)")
    result: dict[str, Any] = {
        "run_dir": str(cfg.run_dir),
        "final": str(final),
        "global_step": trainer.state.global_step,
        "world_size": state.num_processes,
        "modality": setup.modality,
        "train_runtime_s": round(float(trainer.state.log_history[-1].get("train_runtime", 0)), 1),
    }
    if torch.cuda.is_available():
        result["peak_gpu_mem_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    leave_distributed_training(trainer)
    del trainer
    state.wait_for_everyone()  # final/ is complete before it is read
    if state.is_main_process and cfg.eval_split:
        for stale in (
            cfg.run_dir / f"predictions_{cfg.eval_split}.jsonl",
            cfg.run_dir / f"metrics_{cfg.eval_split}.json",
        ):
            stale.unlink(missing_ok=True)  # a new final model: earlier predictions are not its own
        result["metrics"] = evaluate_checkpoint(cfg, final, table)
    return result
