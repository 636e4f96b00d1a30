"""Why small-model GRPO collapses to one answer: how little the answer position's hidden state varies.

    python benchmarks/answer_state_spread.py            # embedded SmolLM2, the probe's held-out items, CPU, ~1 min

For each held-out item of the learnability probe (`shala_lib.data.probe`), the hidden state at the position
where the answer's first number is generated (paper prompt + answer prefill), per layer: the mean
pairwise cosine across items, the variance across items relative to the squared norm of the mean state,
and the share of that variance that lies between the four cue groups. Every GRPO update of the readout
moves all items along the shared mean state almost equally; only the small item-specific part can make
answers differ by input. `--repeat-target` appends the message again right before the answer.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from shala_lib.data.loading import load  # noqa: E402
from shala_lib.data.prompts import prefill_text, prompt_text  # noqa: E402
from shala_lib.data.specs import get_spec  # noqa: E402
from shala_lib.generation.chat import format_prompt
from shala_lib.generation.embedded import EMBEDDED
from shala_lib.generation.models import load_model  # noqa: E402


def spread(states: np.ndarray, groups: np.ndarray) -> dict[str, float]:
    """Mean pairwise cosine, across-item variance / |mean|^2, and the between-group share of it."""
    unit = states / np.linalg.norm(states, axis=1, keepdims=True)
    cos = unit @ unit.T
    mean = states.mean(axis=0)
    total = float(((states - mean) ** 2).sum())
    between = sum(
        float(((states[groups == g].mean(axis=0) - mean) ** 2).sum()) * int((groups == g).sum()) for g in set(groups)
    )
    return {
        "mean_pairwise_cosine": round(float(cos[np.triu_indices(len(states), 1)].mean()), 4),
        "variance_over_mean_norm2": round(total / len(states) / float((mean**2).sum()), 4),
        "between_group_share": round(between / total, 3),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default=EMBEDDED)
    ap.add_argument("--layers", type=int, nargs="*", default=[8, 16, 22, 26, 30])
    ap.add_argument("--repeat-target", action="store_true")
    args = ap.parse_args(argv)
    spec = get_spec("triage_probe")
    table = load("triage_probe")
    test = table[table["split"] == "test"]
    model, tok = load_model(args.model, device="cpu")
    states = []
    with torch.no_grad():
        for _, row in test.iterrows():
            text = prompt_text(spec, row)
            if args.repeat_target:
                text += f"\n\nSupport message (again): {row['message']}"
            prompt = format_prompt(tok, [{"role": "user", "content": text}], prefill_text(spec))
            out = model(**tok(prompt, return_tensors="pt", add_special_tokens=False), output_hidden_states=True)
            states.append(torch.stack([h[0, -1] for h in out.hidden_states]).numpy())
    hidden = np.stack(states)
    groups = test["cue_group"].to_numpy()
    report = {f"layer_{n}": spread(hidden[:, n], groups) for n in args.layers if n < hidden.shape[1]}
    print(json.dumps({"items": len(test), "repeat_target": args.repeat_target, **report}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
