"""Zero-shot predictions (the paper's baseline) and the small-model usability options, compared.

`run_zero_shot` predicts the test split once per option set (paper prompt; + answer prefill;
+ constrained JSON decoding; + the simplex grammar, whose numbers sum to 1) into resumable
predictions files and returns one comparison table
with parse rate and metrics on the same items, beside the data-only reference rows.

    python -m shala_lib.evaluation.zero_shot --out runs/zero_shot --limit 200
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

import pandas as pd

from shala_lib.data.loading import first_items
from shala_lib.data.specs import get_spec
from shala_lib.evaluation.reference import reference_predictions
from shala_lib.generation.embedded import EMBEDDED
from shala_lib.generation.inference import predict
from shala_lib.generation.models import load_model
from shala_lib.generation.predictions import attach_gold
from shala_lib.scoring.metrics import evaluate

OPTIONS: dict[str, dict[str, bool | str]] = {
    "paper": {"prefill": False, "constrained": False},
    "prefill": {"prefill": True, "constrained": False},
    "prefill+constrained": {"prefill": True, "constrained": True, "grammar": "json"},
    "prefill+simplex": {"prefill": True, "constrained": True, "grammar": "simplex"},  # numbers summing to 1
}


def predictions_path(out_dir: str | Path, dataset: str, split: str, option: str) -> Path:
    """The resumable predictions file of one zero-shot option (what notebooks 04-05 read)."""
    return Path(out_dir) / f"predictions_{dataset}_{split}_zero_shot_{option.replace('+', '_')}.jsonl"


def run_zero_shot(
    table: pd.DataFrame,
    dataset: str,
    out_dir: str | Path,
    model_name: str = EMBEDDED,
    options: list[str] | tuple[str, ...] = ("paper", "prefill"),
    limit: int | None = None,
    batch_size: int = 32,
    max_new_tokens: int | None = None,
    split: str = "test",
    model: Any = None,
    tokenizer: Any = None,
    progress: bool = True,
    modality: str | None = None,
) -> pd.DataFrame:
    """Predict `split` for each option set; one row per option plus the data-only reference rows.
    `modality`: None = the dataset's (speech+text for MSP-Podcast, which needs Qwen2.5-Omni)."""
    spec = get_spec(dataset)
    dataset = spec.name  # a definition file is named by its definition
    out_dir = Path(out_dir)
    items = first_items(table[table["split"] == split], limit)  # every ambiguity level, even for a small limit
    if model is None:
        model, tokenizer = load_model(model_name)
    rows = []
    for opt in options:
        kw = OPTIONS[opt]
        path = predictions_path(out_dir, dataset, split, opt)
        preds = predict(
            items,
            spec,
            model,
            tokenizer,
            path,
            method="zero_shot",
            model_name=model_name,
            batch_size=batch_size,
            max_new_tokens=max_new_tokens,
            progress=progress,
            modality=modality,  # type: ignore[arg-type]
            **kw,
        )
        pred, gold, _ = attach_gold(preds, items, spec.n_classes)
        res = evaluate(pred, gold, spec.classes)
        rows.append(
            {
                "method": f"zero_shot[{opt}]",
                **res,
                "predictions": str(path),
            }
        )
    gold = items["dist"].tolist()
    for name, arr in reference_predictions(table, items=items).items():
        res = evaluate(arr, gold, spec.classes)
        rows.append({"method": name, **res, "predictions": ""})
    return pd.DataFrame(rows)


def main(argv: list[str] | None = None) -> int:
    from shala_lib.data.loading import load

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dataset", default="chaosnli")
    ap.add_argument("--model", default=EMBEDDED)
    ap.add_argument("--out", default="runs/zero_shot")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--batch-size", type=int, default=32)
    ap.add_argument("--max-new-tokens", type=int, default=64)
    ap.add_argument("--options", nargs="*", default=list(OPTIONS))
    ap.add_argument("--modality", default=None, help="text | speech | speech+text (default: the dataset's)")
    args = ap.parse_args(argv)
    logging.basicConfig(level=logging.WARNING)
    table = load(args.dataset)
    res = run_zero_shot(
        table,
        args.dataset,
        args.out,
        args.model,
        args.options,
        args.limit,
        args.batch_size,
        args.max_new_tokens,
        progress=False,
        modality=args.modality,
    )
    cols = ["method", "parse_rate", "n", "n_unparsable", "jsd", "bc", "acc", "f1", "wf1"]
    print(res[cols].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    res.to_csv(Path(args.out) / f"zero_shot_{args.dataset}.csv", index=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
