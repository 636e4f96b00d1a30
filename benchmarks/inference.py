"""Inference throughput: per-item loop vs batched dynamic cache vs our path, same model/device/items.

    python benchmarks/inference.py --items 64 --max-new-tokens 64            # CPU
    python benchmarks/inference.py --items 512 --ours-batch 256 --device cuda --warmup  # GPU

Our path uses `cache="auto"` unless told: the static cache with a compiled decode step for a
bf16/fp16 model on CUDA, the dynamic cache on CPU. `--force-compile` compiles the static-cache
step on CPU too (transformers does so only on accelerators), to measure what compiling does here.

The paper prompt is used without prefill so each item generates up to --max-new-tokens tokens
(min_new_tokens forces the full length, making tokens/s comparable across paths).
`graphs_compiled` counts the graphs dynamo built in the warm-up and in the timed run: a compiled
path that reuses its shape builds them in the warm-up and none while timed.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from torch._dynamo.utils import counters

from shala_lib.data.loading import load
from shala_lib.data.prompts import build_messages
from shala_lib.data.specs import CHAOSNLI
from shala_lib.generation.chat import format_prompt
from shala_lib.generation.embedded import EMBEDDED
from shala_lib.generation.inference import generate_hf, prompt_lengths, resolve_cache
from shala_lib.generation.models import load_model


def run(model, tok, prompts, batch, cache, max_new, sort=True):
    gen_cfg = model.generation_config
    gen_cfg.min_new_tokens = max_new
    t = time.perf_counter()
    gens = generate_hf(model, tok, prompts, max_new, batch_size=batch, cache=cache, sort_by_length=sort, progress=False)
    dt = time.perf_counter() - t
    n_tok = sum(g.n_tokens for g in gens)
    return {
        "items": len(prompts),
        "seconds": round(dt, 2),
        "items_per_s": round(len(prompts) / dt, 2),
        "tokens_per_s": round(n_tok / dt, 1),
        "tokens": n_tok,
    }


def unique_graphs() -> int:
    return int(counters["stats"]["unique_graphs"])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default=EMBEDDED)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--items", type=int, default=64)
    ap.add_argument("--loop-items", type=int, default=8, help="items for the slow per-item loop")
    ap.add_argument("--batch", type=int, default=64, help="batch of the dynamic-cache reference")
    ap.add_argument("--ours-batch", type=int, default=64)
    ap.add_argument("--ours-cache", default="auto", choices=["auto", "dynamic", "static"])
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--warmup", action="store_true", help="run our path once before timing (compile warm-up)")
    ap.add_argument("--force-compile", action="store_true", help="compile the static-cache step on CPU too")
    args = ap.parse_args()
    model, tok = load_model(args.model, device=args.device)
    if args.force_compile:
        from transformers import CompileConfig

        config = CompileConfig(fullgraph=True)
        config._compile_all_devices = True
        model.generation_config.compile_config = config
    df = load("chaosnli")
    items = df.sort_values("split", kind="stable").head(args.items)  # test first, then train/validation
    prompts = [format_prompt(tok, build_messages(CHAOSNLI, r)) for _, r in items.iterrows()]
    dev = next(model.parameters()).device
    ours_cache = resolve_cache(model, args.ours_cache)
    res = {
        "device": torch.cuda.get_device_name() if dev.type == "cuda" else "cpu",
        "dtype": str(model.dtype),
        "model": args.model,
        "max_new_tokens": args.max_new_tokens,
        "ours_cache": ours_cache,
        "compiled": ours_cache == "static" and (args.force_compile or dev.type == "cuda"),
    }
    res["per_item_loop"] = run(model, tok, prompts[: args.loop_items], 1, "dynamic", args.max_new_tokens, sort=False)
    res[f"batched_dynamic_b{args.batch}"] = run(model, tok, prompts, args.batch, "dynamic", args.max_new_tokens)
    graphs = {"warmup": 0}
    if args.warmup:  # the longest prompts: the same padded length, so the timed run reuses the compiled shape
        warm = [prompts[i] for i in np.argsort(-prompt_lengths(tok, prompts), kind="stable")[: args.ours_batch]]
        before = unique_graphs()
        t = time.perf_counter()
        run(model, tok, warm, args.ours_batch, args.ours_cache, args.max_new_tokens)
        res["ours_warmup_s"] = round(time.perf_counter() - t, 1)
        graphs["warmup"] = unique_graphs() - before
    before = unique_graphs()
    ours = run(model, tok, prompts, args.ours_batch, args.ours_cache, args.max_new_tokens)
    graphs["timed"] = unique_graphs() - before
    res["graphs_compiled"] = graphs
    res[f"ours_b{args.ours_batch}_{args.ours_cache}"] = ours
    base = res["per_item_loop"]["tokens_per_s"]
    dyn = res[f"batched_dynamic_b{args.batch}"]["tokens_per_s"]
    res["speedup_vs_loop"] = round(ours["tokens_per_s"] / base, 2)
    res["speedup_vs_batched_dynamic"] = round(ours["tokens_per_s"] / dyn, 2)
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
