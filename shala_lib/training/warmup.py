"""Supervised format warm-up (an option for small models, off by default): a short TRL
`SFTTrainer` run that teaches the answer format on train-split targets before GRPO.

The completion is the human distribution written as the JSON the prompt asks for (2 decimals,
summing to 1). It teaches the format *and* the targets, so a warmed-up model is a supervised
baseline of its own: report it as such, never as zero-shot.

`targets="random"` teaches the format only: each prompt's completion is a distribution drawn from
a flat Dirichlet (seeded), unrelated to its labels. A small model that writes `1.0` for the first
key whatever the input then writes varied distributions, so GRPO's rollout groups have reward
variance to learn from; whatever input-dependence the model shows afterwards came from GRPO.

    python -m shala_lib.training.warmup --out runs/warmup/smollm2 --steps 30
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from shala_lib.data.prompts import Variant, build_messages
from shala_lib.data.specs import DatasetSpec, get_spec
from shala_lib.generation.embedded import EMBEDDED
from shala_lib.generation.models import load_tokenizer, resolve_model


def target_json(dist: list[float] | np.ndarray, spec: DatasetSpec) -> str:
    """The distribution as the prompt's JSON, rounded to 2 decimals that still sum to exactly 1."""
    p = np.asarray(dist, dtype=float)
    cents = np.floor(p * 100).astype(int)
    rest = 100 - cents.sum()
    order = np.argsort(-(p * 100 - cents), kind="stable")
    cents[order[:rest]] += 1
    return json.dumps({k: round(c / 100, 2) for k, c in zip(spec.keys, cents)})


def warmup_dataset(
    table: pd.DataFrame,
    spec: DatasetSpec,
    split: str = "train",
    limit: int | None = None,
    variant: Variant = "paper",
    seed: int = 42,
    targets: str = "train",
) -> Any:
    """Prompt/completion pairs: the human distributions (`targets="train"`) or, format only, flat
    Dirichlet draws unrelated to the item (`targets="random"`)."""
    from datasets import Dataset

    if targets not in ("train", "random"):
        raise ValueError(f"targets must be 'train' or 'random', not {targets!r}")
    part = table[table["split"] == split]
    if limit is not None:
        part = part.sample(n=min(limit, len(part)), random_state=seed)
    dists = (
        list(part["dist"])
        if targets == "train"
        else list(np.random.default_rng(seed).dirichlet(np.ones(spec.n_classes), size=len(part)))
    )
    return Dataset.from_dict(
        {
            "prompt": [build_messages(spec, row, variant) for _, row in part.iterrows()],
            "completion": [[{"role": "assistant", "content": target_json(d, spec)}] for d in dists],
        }
    )


def format_warmup(
    table: pd.DataFrame,
    dataset: str,
    out_dir: str | Path,
    model: str = EMBEDDED,
    steps: int = 30,
    learning_rate: float = 5e-5,
    batch_size: int = 8,
    limit: int | None = None,
    seed: int = 42,
    use_cpu: bool | None = None,
    targets: str = "train",
) -> Path:
    """Run the warm-up and save the model to `out_dir/final` (a directory usable as `model:`)."""
    import torch
    from trl import SFTConfig, SFTTrainer

    spec = get_spec(dataset)
    out_dir = Path(out_dir)
    cpu = (not torch.cuda.is_available()) if use_cpu is None else use_cpu
    path = resolve_model(model)
    tok = load_tokenizer(path)
    tok.padding_side = "right"
    args = SFTConfig(
        output_dir=str(out_dir),
        max_steps=steps,
        learning_rate=learning_rate,
        per_device_train_batch_size=batch_size,
        logging_steps=5,
        save_strategy="no",
        report_to=[],
        seed=seed,
        use_cpu=cpu,
        bf16=not cpu,
        model_init_kwargs={"dtype": "float32"},
        gradient_checkpointing=False,
    )
    ds = warmup_dataset(table, spec, limit=limit, seed=seed, targets=targets)
    trainer = SFTTrainer(model=path, args=args, train_dataset=ds, processing_class=tok)
    trainer.train()
    final = out_dir / "final"
    trainer.save_model(str(final))
    tok.padding_side = "left"
    tok.save_pretrained(final)
    pd.DataFrame(trainer.state.log_history).to_csv(out_dir / "warmup_log.csv", index=False)
    return final


def main(argv: list[str] | None = None) -> int:
    from shala_lib.data.loading import load

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="chaosnli")
    ap.add_argument("--model", default=EMBEDDED)
    ap.add_argument("--out", default="runs/warmup")
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--lr", type=float, default=5e-5)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--targets", choices=("train", "random"), default="train", help="random: format only")
    args = ap.parse_args(argv)
    final = format_warmup(
        load(args.dataset),
        args.dataset,
        args.out,
        args.model,
        args.steps,
        args.lr,
        args.batch_size,
        targets=args.targets,
    )
    print(final)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
