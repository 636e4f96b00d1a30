"""The training command: one GRPO experiment from its YAML config.

    python -m shala_lib.train CONFIG.yaml [--resume | --overwrite] [--set grpo.max_steps=10 ...]
    shala-train CONFIG.yaml ...
    accelerate launch --config_file configs/accelerate_zero3.yaml --num_processes 2 \
        -m shala_lib.train CONFIG.yaml          # multi-GPU, DeepSpeed ZeRO-3

Never silently wrong, never destructive: the config (with its `--set` overrides) and every input are
checked before anything is moved, created or deleted, and an earlier run under the same name is never
replaced. A new run refuses to start over it unless `--resume` (continue from its last checkpoint) or
`--overwrite` (move it aside, whole, to `<name>.previous-N/`). Exit codes: 0 done, 2 a config, input or
run-folder error (the message names the file or `--set`, and the key), 3 training stopped on a
non-finite loss or weights.

The run itself is `shala_lib.training.run.train`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from typing import Any

from shala_lib.files import YamlFileError
from shala_lib.training.callbacks import NonFiniteTrainingError
from shala_lib.training.config import ConfigError, ExperimentConfig
from shala_lib.training.preflight import InputError
from shala_lib.training.run_dir import RunExistsError

EXIT_INVALID = 2
EXIT_NONFINITE = 3


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="shala-train", description="GRPO training of SHALA, SHALA w/o Ambi-En and MLS on TRL's GRPOTrainer."
    )
    ap.add_argument("config", help="experiment YAML (see configs/)")
    when = ap.add_mutually_exclusive_group()
    when.add_argument(
        "--resume", action="store_true", help="continue from the last checkpoint in the run dir (an error without one)"
    )
    when.add_argument(
        "--overwrite",
        action="store_true",
        help="the run dir holds an earlier run: move it aside to <name>.previous-N/ (nothing deleted), start again",
    )
    ap.add_argument(
        "--set",
        nargs="*",
        default=[],
        metavar="KEY=VALUE",
        help="override config keys, e.g. method=mls grpo.max_steps=10",
    )
    ap.add_argument("--eval-only", action="store_true", help="only evaluate <run_dir>/final")
    return ap


def _eval_only(cfg: ExperimentConfig) -> dict[str, Any]:
    """Evaluate `<run_dir>/final` after the same checks as a training run (nothing is written before)."""
    from shala_lib.training.preflight import check_inputs
    from shala_lib.training.validation import evaluate_checkpoint

    if cfg.eval_split is None:
        raise InputError(f"{cfg.source_of('eval_split')}: eval_split is null: --eval-only has no split to evaluate")
    final = cfg.run_dir / "final"
    if not final.is_dir():
        raise InputError(f"{final}: no trained model to evaluate (--eval-only reads <output_dir>/<name>/final)")
    inputs = check_inputs(cfg, training=False, base_model=cfg.lora)
    return evaluate_checkpoint(cfg, final, inputs.table)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    from shala_lib.training.run import train

    try:
        cfg = ExperimentConfig.from_yaml(args.config).with_overrides(args.set)
        if args.eval_only:
            print(json.dumps(_eval_only(cfg), indent=2))
            return 0
        result = train(cfg, resume=args.resume, overwrite=args.overwrite)
    except (ConfigError, YamlFileError, InputError, RunExistsError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_INVALID
    except NonFiniteTrainingError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_NONFINITE
    print(json.dumps(result, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
