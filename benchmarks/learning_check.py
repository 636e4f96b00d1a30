"""Learning check (issue 23): does our GRPO machinery learn the raters' distribution when the task is learnable?

    python benchmarks/learning_check.py                          # 3 methods x 2 seeds, CPU, about 5 minutes
    python benchmarks/learning_check.py --seeds 0 --methods shala --set grpo.max_steps=100

The command line of `shala_lib.training.learning_check` (the design is described there; notebook 07 and
`python -m shala_lib.reproduce --profile learning_check` run the same check and write its tables and
figure; they write to `runs/learning_check/`, this command to `runs/learning_check_cli/`). It prints,
per method and seed, the held-out JSD beside the best constant answer's and the
uniform answer's, the distinct answers, the mean answer per cue group beside the raters', and the wall
and CPU time; writes `<out>/learning_check.json` and the figure (`--figure`). It passes (exit 0) when,
on every seed, SHALA beats the best constant answer by `--margin` (0.05) with answers that differ by cue
group (`--min-groups` distinct group answers at one decimal), and MLS ends near one-hot on each group's
majority (>= 0.7 there) with a worse JSD than SHALA.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")

from shala_lib.data.specs import get_spec  # noqa: E402
from shala_lib.training.learning_check import (  # noqa: E402
    CONFIG,
    MARGIN,
    METHODS,
    MIN_GROUPS,
    SEEDS,
    check_config,
    group_table,
    passed,
    progress_line,
    results_table,
    run_check,
    verdicts,
)
from shala_lib.viz.plots import plot_learning_check, save_figure  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--config", default=CONFIG)
    ap.add_argument("--seeds", type=int, nargs="+", default=list(SEEDS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS))
    ap.add_argument("--set", nargs="*", default=[], metavar="KEY=VALUE", help="config overrides")
    ap.add_argument("--out", default="runs/learning_check_cli")
    ap.add_argument("--figure", default="runs/learning_check_cli/fig_learning_check.png")
    ap.add_argument("--margin", type=float, default=MARGIN)
    ap.add_argument("--min-groups", type=int, default=MIN_GROUPS)
    ap.add_argument(
        "--hidden-size", type=int, default=None, help="the bandit model's width (default: learning_check.ARCH)"
    )
    ap.add_argument("--layers", type=int, default=None, help="its layers (default: learning_check.ARCH)")
    ap.add_argument("--initializer-range", type=float, default=None, help="its init std (default 0.02)")
    args = ap.parse_args(argv)
    arch = {
        k: v
        for k, v in (
            ("hidden_size", args.hidden_size),
            ("layers", args.layers),
            ("initializer_range", args.initializer_range),
        )
        if v is not None
    }
    logging.basicConfig(level=logging.WARNING)
    t0, c0 = time.perf_counter(), time.process_time()
    cfg = check_config(args.config, args.set)
    spec = get_spec(cfg.dataset)

    def progress(row: dict[str, Any]) -> None:
        print(progress_line(row), flush=True)

    rows = run_check(args.config, args.seeds, args.methods, args.out, args.set, arch, progress)
    verdict = verdicts(rows, args.margin, args.min_groups)
    ok = passed(verdict)
    print(f"\nlearning check: {cfg.dataset}, held-out items of split {cfg.eval_split!r}")
    print(results_table(rows).to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print(f"\nmean answer per cue group ({', '.join(spec.classes)}), raters first:")
    for r in rows:
        cells = "  ".join(f"{g['cue_group']} {g['raters']} -> {g['answer']}" for g in r["by_group"])
        print(f"  {r['method']:>14} seed {r['seed']}: {cells}")
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    load1 = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"\n{'PASS' if ok else 'FAIL'}: {verdict or 'nothing judged: neither shala nor mls ran'}; "
        f"wall {wall:.0f} s, this process's CPU {cpu:.0f} s, load average {load1:.1f} on {os.cpu_count()} cores"
    )
    figure = Path(args.figure)
    save_figure(plot_learning_check(group_table(rows, spec.classes), spec.classes), figure.parent, figure.stem)
    summary = {
        "config": args.config,
        "overrides": args.set,
        "architecture": arch,
        "seeds": args.seeds,
        "rows": rows,
        "verdicts": verdict,
        "passed": ok,
        "wall_s": round(wall, 1),
        "cpu_s": round(cpu, 1),
        "load_average_1min": load1,
        "figure": str(figure),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "learning_check.json").write_text(json.dumps(summary, indent=2, default=float))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
