"""Speech + text on a Qwen2.5-Omni thinker: processor identity, zero-shot throughput with audio, GRPO steps.

    python benchmarks/omni_proof.py --size 7b --device cuda --out gpu_out   # the GPU stage (gpu_proof.sh omni)
    python benchmarks/omni_proof.py --size tiny --device cpu                  # the same path, CPU-sized (tests)

`--size 7b` builds a randomly initialised thinker with Qwen2.5-Omni-7B's dimensions from its config (no
weights needed: throughput, memory and wiring do not depend on the values), on the generated MSP-Podcast
corpus (`shala_lib.data.speech_fixture`: clips at 8-44.1 kHz, mono and stereo). It prints one JSON document:
- `processor`: whether `Qwen2_5OmniProcessor` (needs torchvision) and the composed processor give identical
  `input_ids`, `attention_mask`, `input_features`, `feature_attention_mask` on the same clips and prompts;
- `zero_shot`: greedy speech+text generation through `generate_hf` (clips, processor, placeholder tokens
  suppressed): items/s and generated tokens/s;
- `grpo`: `SpeechGRPOTrainer` with LoRA on the language model, the paper's GRPO settings (4 rollouts,
  temperature 1.2, 128 tokens, beta 0, loss grpo, 4 prompts per optimizer step), bf16 on GPU: s/step,
  peak GPU memory, and a forward hook's count of forwards whose input has audio tokens but no features
  (must be 0: audio reaches every forward).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from shala_lib.data.audio import read_audio  # noqa: E402
from shala_lib.data.loading import load  # noqa: E402
from shala_lib.data.specs import get_spec  # noqa: E402
from shala_lib.data.speech_fixture import write_msp_fixture  # noqa: E402
from shala_lib.generation.inference import generate_hf  # noqa: E402
from shala_lib.generation.models import load_tokenizer  # noqa: E402
from shala_lib.generation.omni import ComposedOmniProcessor, encode, placeholder_token_ids  # noqa: E402
from shala_lib.generation.tiny import build_tiny_thinker  # noqa: E402
from shala_lib.training.config import ExperimentConfig, paper_grpo  # noqa: E402
from shala_lib.training.inputs import OMNI_LORA_TARGETS, build_dataset, model_setup  # noqa: E402

SPEC = get_spec("msp_podcast")


def processor_identity(model_dir: Path, prompts: list[str], clips: list[Any]) -> dict[str, Any]:
    """Compare transformers' Qwen2_5OmniProcessor with the composed one on the same inputs."""
    if importlib.util.find_spec("torchvision") is None:
        return {"compared": False, "why": "torchvision is not installed: Qwen2_5OmniProcessor cannot be built here"}
    from transformers import (
        Qwen2_5OmniProcessor,
        Qwen2VLImageProcessor,
        Qwen2VLVideoProcessor,
        WhisperFeatureExtractor,
    )

    tok = load_tokenizer(str(model_dir))
    real = Qwen2_5OmniProcessor(
        image_processor=Qwen2VLImageProcessor(),
        video_processor=Qwen2VLVideoProcessor(),
        feature_extractor=WhisperFeatureExtractor.from_pretrained(str(model_dir)),
        tokenizer=tok,
        chat_template=tok.chat_template,
    )
    a = real(text=prompts, audio=clips, padding=True, return_tensors="pt")
    b = encode(ComposedOmniProcessor(real.feature_extractor, tok, tok.chat_template), prompts, clips)
    keys = ("input_ids", "attention_mask", "input_features", "feature_attention_mask")
    return {
        "compared": True,
        "keys_real": sorted(a.keys()),
        "identical": {k: bool(k in a and torch.equal(a[k], b[k])) for k in keys},
        "n_clips": len(clips),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", choices=["tiny", "7b"], default="tiny")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--steps", type=int, default=3, help="GRPO optimizer steps (the first is warm-up)")
    ap.add_argument("--items", type=int, default=16, help="zero-shot items")
    ap.add_argument("--batch", type=int, default=8, help="zero-shot batch size")
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--out", default=None, help="folder for omni_proof.json")
    ap.add_argument("--full", action="store_true", help="train every weight (vision frozen), bf16 AdamW, no LoRA")
    ap.add_argument("--skip-zero-shot", action="store_true", help="GRPO only (benchmarks/gpu_check.py part 1)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    torch.manual_seed(0)
    work = Path(tempfile.mkdtemp(prefix="omni_proof_"))
    data = work / "data"
    write_msp_fixture(data, n_items=48, seed=1, seconds=(2.0, 8.0))
    table = load("msp_podcast", data_dir=data)
    texts = table["text"].tolist() + ["Predict the probability of the emotion in the target utterance"] * 5
    model_dir = build_tiny_thinker(work / "thinker", texts * 3, size=args.size, with_weights=args.size == "tiny")
    device = torch.device(args.device)
    on_gpu = device.type == "cuda"
    dtype = torch.bfloat16 if on_gpu else torch.float32
    from transformers import AutoConfig, Qwen2_5OmniThinkerForConditionalGeneration

    from shala_lib.generation.omni import freeze_vision

    t0 = time.perf_counter()
    if args.size == "7b":
        with torch.device(device):
            model = Qwen2_5OmniThinkerForConditionalGeneration._from_config(
                AutoConfig.from_pretrained(model_dir), dtype=dtype
            )
        model.name_or_path = str(model_dir)
    else:
        model = Qwen2_5OmniThinkerForConditionalGeneration.from_pretrained(model_dir, dtype=dtype).to(device)
    freeze_vision(model)
    model.generation_config.pad_token_id = load_tokenizer(str(model_dir)).pad_token_id
    model.generation_config.eos_token_id = load_tokenizer(str(model_dir)).eos_token_id
    report: dict[str, Any] = {
        "size": args.size,
        "device": torch.cuda.get_device_name() if on_gpu else "cpu",
        "parameters_b": round(sum(p.numel() for p in model.parameters()) / 1e9, 3),
        "build_s": round(time.perf_counter() - t0, 1),
    }
    cfg = ExperimentConfig(name="omni_proof", dataset="msp_podcast", model=str(model_dir))
    tok = load_tokenizer(str(model_dir))
    setup = model_setup(cfg, SPEC, str(model_dir), tok)
    report["processor_kind"] = setup.processor_kind
    test = build_dataset(table, SPEC, "test", cfg, setup.renderer, args.items, setup.modality, setup.system)
    prompts, clips = list(test["prompt"]), list(test["audio_path"])
    report["processor"] = processor_identity(model_dir, prompts[:6], [read_audio(c) for c in clips[:6]])

    # zero-shot throughput with audio (greedy, placeholders suppressed)
    model.eval()
    for warm in () if args.skip_zero_shot else (True, False):
        if on_gpu:
            torch.cuda.synchronize()
        t = time.perf_counter()
        gens = generate_hf(
            model,
            tok,
            prompts if not warm else prompts[: args.batch],
            args.max_new_tokens,
            batch_size=args.batch,
            clips=clips if not warm else clips[: args.batch],
            processor=setup.processor,
            suppress_tokens=placeholder_token_ids(model),
            progress=False,
        )
        dt = time.perf_counter() - t
    if args.skip_zero_shot:
        gens, dt = [], float("nan")
    n_tok = sum(g.n_tokens for g in gens)
    report["zero_shot"] = (
        None
        if args.skip_zero_shot
        else {
            "items": len(gens),
            "batch": args.batch,
            "seconds": round(dt, 2),
            "items_per_s": round(len(gens) / dt, 2),
            "generated_tokens_per_s": round(n_tok / dt, 1),
        }
    )

    # GRPO with audio: LoRA on the language model, the paper's settings
    from peft import LoraConfig, get_peft_model
    from trl import GRPOConfig

    from shala_lib.scoring.rewards import make_reward_func
    from shala_lib.training.speech_trainer import SpeechGRPOTrainer

    train = build_dataset(table, SPEC, "train", cfg, setup.renderer, None, setup.modality, setup.system)
    g = paper_grpo()
    grpo_args = GRPOConfig(
        output_dir=str(work / "run"),
        **{k: g[k] for k in ("learning_rate", "num_generations", "temperature", "max_completion_length", "beta")},
        **{k: g[k] for k in ("loss_type", "importance_sampling_level", "epsilon", "scale_rewards")},
        per_device_train_batch_size=4,
        gradient_accumulation_steps=4,  # 4 prompts x 4 rollouts per optimizer step (one device)
        max_steps=args.steps,
        logging_steps=1,
        save_strategy="no",
        report_to=[],
        bf16=on_gpu,
        use_cpu=not on_gpu,
        gradient_checkpointing=on_gpu,
        generation_kwargs={"suppress_tokens": placeholder_token_ids(model)},
        seed=0,
    )
    model.train()
    peft_model = (
        model
        if args.full
        else get_peft_model(
            model, LoraConfig(r=16, lora_alpha=32, target_modules=OMNI_LORA_TARGETS, task_type="CAUSAL_LM")
        )
    )
    trainable = sum(p.numel() for p in peft_model.parameters() if p.requires_grad)
    audio_id = tok.convert_tokens_to_ids("<|AUDIO|>")
    seen = {"forwards_with_audio_tokens": 0, "without_features": 0}

    def hook(module: Any, a: Any, kw: dict[str, Any]) -> None:
        ids = kw.get("input_ids")
        if ids is not None and bool((ids == audio_id).any()):
            seen["forwards_with_audio_tokens"] += 1
            seen["without_features"] += int(kw.get("input_features") is None)

    handle = model.register_forward_pre_hook(hook, with_kwargs=True)
    step_times: list[float] = []
    from transformers import TrainerCallback

    class Timer(TrainerCallback):
        def on_step_begin(self, *a: Any, **k: Any) -> None:
            if on_gpu:
                torch.cuda.synchronize()
            self.t = time.perf_counter()

        def on_step_end(self, *a: Any, **k: Any) -> None:
            if on_gpu:
                torch.cuda.synchronize()
            step_times.append(time.perf_counter() - self.t)

    if on_gpu:
        torch.cuda.reset_peak_memory_stats()
    trainer = SpeechGRPOTrainer(
        model=peft_model,
        reward_funcs=[make_reward_func("shala", SPEC)],
        args=grpo_args,
        train_dataset=train,
        processing_class=tok,
        audio_processor=setup.processor,
        callbacks=[Timer()],
    )
    trainer.train()
    handle.remove()
    timed = step_times[1:] or step_times
    report["grpo"] = {
        "trainable_parameters_m": round(trainable / 1e6, 2),
        "steps": len(step_times),
        "s_per_step": round(sum(timed) / len(timed), 2),
        "first_step_s": round(step_times[0], 2),
        "completions_per_step": 16,
        "peak_gpu_mem_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if on_gpu else None,
        "peak_cpu_rss_gib": round(__import__("resource").getrusage(0).ru_maxrss / 2**20, 2),
        "recipe": "full fine-tuning, bf16 weights and AdamW states (no fp32 master)" if args.full else "LoRA r 16",
        "audio": {**seen, "clips_heard": trainer.clip_report.n_clips},
        "losses": [round(float(r["loss"]), 5) for r in trainer.state.log_history if "loss" in r],
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
        (Path(args.out) / "omni_proof.json").write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
