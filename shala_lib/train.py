"""The training command: one GRPO experiment from its YAML config.

    python -m shala_lib.train CONFIG.yaml [--resume] [--set grpo.max_steps=10 ...]
    shala-train CONFIG.yaml ...
    accelerate launch --config_file configs/accelerate_zero3.yaml --num_processes 2 \
        -m shala_lib.train CONFIG.yaml          # multi-GPU, DeepSpeed ZeRO-3

The run itself is `shala_lib.training.run.train`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys

from shala_lib.training.callbacks import NonFiniteTrainingError
from shala_lib.training.config import ExperimentConfig
from shala_lib.training.run import train
from shala_lib.training.validation import evaluate_checkpoint


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="shala-train", description="GRPO training of SHALA, SHALA w/o Ambi-En and MLS on TRL's GRPOTrainer."
    )
    ap.add_argument("config", help="experiment YAML (see configs/)")
    ap.add_argument("--resume", action="store_true", help="continue from the last checkpoint in the run dir")
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override config keys, e.g. method=mls grpo.max_steps=10",
    )
    ap.add_argument("--eval-only", action="store_true", help="only evaluate <run_dir>/final")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = ExperimentConfig.from_yaml(args.config).with_overrides(args.set)
    if args.eval_only:
        print(json.dumps(evaluate_checkpoint(cfg, cfg.run_dir / "final"), indent=2))
        return 0
    try:
        result = train(cfg, resume=args.resume)
    except NonFiniteTrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return 3
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
