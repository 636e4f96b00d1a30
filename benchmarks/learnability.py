"""Learnability probe: does SHALA training make the embedded model answer according to its input?

    python benchmarks/learnability.py                        # the shipped recipe, CPU, < 30 minutes
    python benchmarks/learnability.py --set grpo.learning_rate=1e-5 grpo.max_steps=20 --out runs/lr1e-5

Trains `configs/triage_probe_smollm2.yaml` (the generated triage probe, `shala_lib.data.probe`: four cue
groups of messages, each with its own rater distribution) and prints, on the held-out test items:
zero-shot, trained, constant-train-mean, best-constant and uniform JSD, the collapse statistics
(distinct answers, across-item spread, JSD against the best constant answer), and the mean answer
per cue group. It passes (exit 0) when the trained model beats the constant-mean answer's JSD by at
least `--margin` (0.05) and answers the cue groups differently (group means that differ at one
decimal, so not by sampling jitter); a JSON summary
goes to `<out>/learnability.json`.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

from shala_lib.data.loading import load
from shala_lib.data.probe import cue_group_answers
from shala_lib.data.specs import get_spec
from shala_lib.evaluation.reference import reference_predictions
from shala_lib.generation.inference import predict
from shala_lib.generation.models import load_model, resolve_model
from shala_lib.generation.predictions import attach_gold, read_predictions
from shala_lib.scoring.collapse import collapse_stats
from shala_lib.scoring.metrics import evaluate
from shala_lib.training.config import ExperimentConfig
from shala_lib.training.run import train


def group_answers(pred: np.ndarray, groups: np.ndarray, classes: tuple[str, ...]) -> pd.DataFrame:
    """Per cue group: the mean predicted distribution (a column per class) and how many distinct answers."""
    return pd.DataFrame(
        [
            {"cue_group": r["cue_group"], **dict(zip(classes, r["answer"])), "n_distinct": r["n_distinct"]}
            for r in cue_group_answers(pred, groups)
        ]
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default="configs/triage_probe_smollm2.yaml")
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    ap.add_argument("--out", default="runs/learnability")
    ap.add_argument("--margin", type=float, default=0.05, help="required JSD gain over the constant mean")
    ap.add_argument(
        "--format-warmup",
        type=int,
        default=40,
        metavar="STEPS",
        help="first a label-free SFT format warm-up (random Dirichlet targets) of STEPS steps (0: none)",
    )
    ap.add_argument(
        "--warmup-targets",
        choices=("random", "train"),
        default="random",
        help="random: format only (the probe's setting); train: the human distributions, a supervised "
        "diagnostic (can the model condition at all?), whose GRPO result is not a SHALA-only result",
    )
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    t0 = time.perf_counter()
    out = Path(args.out)
    cfg = ExperimentConfig.from_yaml(args.config).with_overrides(
        [*args.set, f"output_dir={out}", *([] if any(x.startswith("device=") for x in args.set) else ["device=cpu"])]
    )
    spec = get_spec(cfg.dataset)
    table = load(cfg.dataset, seed=cfg.seed)
    test = table[table["split"] == cfg.eval_split]
    max_new = int(cfg.grpo.get("max_completion_length", 128))

    def predict_test(model_dir: str, name: str) -> np.ndarray:
        """Greedy test predictions of a model, as the training run evaluates (prefill, grammar)."""
        model, tok = load_model(model_dir, device="cpu")
        preds = predict(
            test,
            spec,
            model,
            tok,
            out / f"predictions_{name}.jsonl",
            model_name=name,
            prefill=cfg.prefill,
            constrained=cfg.constrained_eval,
            grammar=cfg.grammar,
            batch_size=cfg.eval_batch_size,
            max_new_tokens=max_new,
        )
        return attach_gold(preds, test, spec.n_classes)[0]

    zero_shot = predict_test(resolve_model(cfg.model), "zero_shot")
    t_zero = time.perf_counter() - t0
    extra: dict[str, np.ndarray] = {}
    if args.format_warmup:
        from shala_lib.training.warmup import format_warmup

        warmed = format_warmup(
            table,
            cfg.dataset,
            out / "format_warmup",
            cfg.model,
            steps=args.format_warmup,
            targets=args.warmup_targets,
            use_cpu=True,
        )
        key = "format_warmup_only" if args.warmup_targets == "random" else "sft_on_train_targets"
        extra[key] = predict_test(str(warmed), key)
        cfg = cfg.with_overrides([f"model={warmed}"])
    result = train(cfg)
    t_train = time.perf_counter() - t0 - t_zero

    gold = np.asarray(test["dist"].tolist())
    groups = test["cue_group"].to_numpy()
    preds = {
        "zero_shot": zero_shot,
        **extra,
        "trained": attach_gold(read_predictions(cfg.run_dir / "predictions_test.jsonl"), test, spec.n_classes)[0],
        **reference_predictions(table, items=test),
    }
    rows = []
    for name, p in preds.items():
        m = evaluate(p, gold, spec.classes)
        c = collapse_stats(p, gold)
        rows.append(
            {
                "method": name,
                "jsd": m["jsd"],
                "bc": m["bc"],
                "acc": m["acc"],
                "parse_rate": m["parse_rate"],
                "n_distinct": c["n_distinct"],
                "max_class_std": c["max_class_std"],
                "jsd_vs_best_constant": c["jsd_vs_best_constant"],
                "input_independent": c["input_independent"],
            }
        )
    scores = pd.DataFrame(rows).set_index("method")
    best_const = collapse_stats(preds["uniform"], gold)["jsd_best_constant"]
    by_group = {k: group_answers(preds[k], groups, spec.classes) for k in ("zero_shot", *extra, "trained")}
    # cue groups answered differently: mean answers apart by 0.1 or so, not by sampling jitter
    distinct_groups = len(by_group["trained"][list(spec.classes)].round(1).drop_duplicates())
    gain = float(scores.loc["constant_mean", "jsd"] - scores.loc["trained", "jsd"])
    passed = gain >= args.margin and distinct_groups > 1

    print(f"learnability probe: {cfg.dataset}, {len(test)} held-out items, {result['global_step']} GRPO steps")
    print(scores.to_string(float_format=lambda v: f"{v:.3f}"))
    print(f"best constant answer JSD: {best_const:.3f}")
    for k, frame in by_group.items():
        print(f"\nmean answer per cue group ({k}):\n{frame.to_string(index=False)}")
    verdict = "PASS" if passed else "FAIL"
    print(
        f"\n{verdict}: trained JSD {scores.loc['trained', 'jsd']:.3f} vs constant mean "
        f"{scores.loc['constant_mean', 'jsd']:.3f} (gain {gain:+.3f}, need {args.margin}); "
        f"{distinct_groups} distinct answers across cue groups; wall {time.perf_counter() - t0:.0f} s "
        f"(zero-shot {t_zero:.0f} s, training + evaluation {t_train:.0f} s)"
    )
    summary = {
        "config": args.config,
        "overrides": args.set,
        "format_warmup_steps": args.format_warmup,
        "warmup_targets": args.warmup_targets,
        "steps": result["global_step"],
        "scores": scores.reset_index().to_dict("records"),
        "best_constant_jsd": best_const,
        "by_group": {k: v.to_dict("records") for k, v in by_group.items()},
        "distinct_group_answers": distinct_groups,
        "gain_over_constant_mean": gain,
        "passed": passed,
        "wall_s": round(time.perf_counter() - t0, 1),
    }
    (out / "learnability.json").write_text(json.dumps(summary, indent=2, default=float))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
