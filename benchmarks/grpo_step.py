"""Seconds per GRPO optimizer step: TRL defaults vs our rollout configuration, same model and GPU.

    python benchmarks/grpo_step.py --steps 12                       # GPU, embedded SmolLM2
    python benchmarks/grpo_step.py --model /tmp/tiny --device cpu --steps 3 --max-completion-length 16

Each step is 4 prompts x 4 rollouts (16 completions) x --max-completion-length tokens, SHALA
reward, fp32 weights with bf16 autocast on GPU. "ours" generates the rollouts of
--steps-per-generation optimizer steps in one batched `generate` call (TRL's
`steps_per_generation`; later steps reuse them with importance-sampling correction), which
amortises HF generate's per-token overhead; "ours+cb" adds transformers' continuous batching.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from typing import Any

import torch

from shala_lib.data.specs import CHAOSNLI
from shala_lib.generation.embedded import EMBEDDED
from shala_lib.generation.models import load_tokenizer, resolve_model
from shala_lib.scoring.rewards import make_reward_func
from shala_lib.training.config import ExperimentConfig
from shala_lib.training.inputs import build_dataset, load_table


def timed_run(model_path: str, grpo: dict[str, Any], steps: int, on_cpu: bool, prefill: bool) -> dict[str, Any]:
    from transformers import TrainerCallback
    from trl import GRPOConfig, GRPOTrainer

    cfg = ExperimentConfig(name="bench", model=model_path, prefill=prefill, max_train_items=256)
    tok = load_tokenizer(model_path)
    ds = build_dataset(load_table(cfg), CHAOSNLI, "train", cfg, tok, cfg.max_train_items)
    stamps: list[float] = []

    class Clock(TrainerCallback):
        def on_step_end(self, *a: Any, **k: Any) -> None:
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            stamps.append(time.perf_counter())

    args = GRPOConfig(
        output_dir=tempfile.mkdtemp(prefix="grpo_bench_"),
        max_steps=steps,
        report_to=[],
        save_strategy="no",
        logging_steps=1,
        use_cpu=on_cpu,
        bf16=not on_cpu,
        model_init_kwargs={"dtype": "float32"},
        **grpo,
    )
    reward = make_reward_func("shala", CHAOSNLI, prefill='{"entailment": ' if prefill else "")
    trainer = GRPOTrainer(
        model=model_path, reward_funcs=[reward], args=args, train_dataset=ds, processing_class=tok, callbacks=[Clock()]
    )
    t0 = time.perf_counter()
    trainer.train()
    total = time.perf_counter() - t0
    # whole-run mean: with steps_per_generation=k one step in k pays for the generation, so the
    # run must cover whole generation cycles (--steps a multiple of --steps-per-generation)
    n_completions = args.per_device_train_batch_size * args.gradient_accumulation_steps
    mean = (stamps[-1] - t0) / len(stamps)
    out = {
        "steps": len(stamps),
        "total_s": round(total, 2),
        "s_per_step": round(mean, 3),
        "completions_per_step": n_completions,
        "completions_per_s": round(n_completions / mean, 2),
        "peak_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if torch.cuda.is_available() else None,
    }
    del trainer
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=EMBEDDED)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--steps", type=int, default=16)
    ap.add_argument("--max-completion-length", type=int, default=128)
    ap.add_argument("--steps-per-generation", type=int, default=8)
    ap.add_argument("--prefill", action="store_true")
    ap.add_argument("--skip", nargs="*", default=[], help="configs to skip: trl_default ours ours+cb")
    args = ap.parse_args()
    if args.steps % args.steps_per_generation:
        ap.error("--steps must be a multiple of --steps-per-generation (whole generation cycles)")
    on_cpu = args.device == "cpu" or not torch.cuda.is_available()
    path = resolve_model(args.model)
    common = {
        "num_generations": 4,
        "temperature": 1.2,
        "max_completion_length": args.max_completion_length,
        "learning_rate": 1e-6,
        "beta": 0.0,
        "per_device_train_batch_size": 16,
        "gradient_accumulation_steps": 1,
    }
    configs = {
        "trl_default": dict(common),
        "ours": {**common, "steps_per_generation": args.steps_per_generation},
        "ours+cb": {
            **common,
            "steps_per_generation": args.steps_per_generation,
            "use_transformers_continuous_batching": True,
        },
    }
    res: dict[str, Any] = {"device": torch.cuda.get_device_name() if not on_cpu else "cpu", "model": args.model}
    for name, grpo in configs.items():
        if name in args.skip:
            continue
        try:
            res[name] = timed_run(path, grpo, args.steps, on_cpu, args.prefill)
        except Exception as e:  # noqa: BLE001 - report a config that fails, keep measuring the others
            res[name] = {"error": f"{type(e).__name__}: {e}"[:300]}
        print(json.dumps({name: res[name]}), flush=True)
    base = res.get("trl_default", {}).get("s_per_step")
    for name in ("ours", "ours+cb"):
        if base and isinstance(res.get(name), dict) and "s_per_step" in res[name]:
            res[name]["speedup_vs_trl_default"] = round(base / res[name]["s_per_step"], 2)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
