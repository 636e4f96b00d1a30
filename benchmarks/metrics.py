"""Metric computation over 1,000,000 items (vectorised numpy). Run: python benchmarks/metrics.py"""

from __future__ import annotations

import argparse
import time

import numpy as np

from shala_lib.scoring.metrics import evaluate
from shala_lib.scoring.rewards import shala_reward


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--classes", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    p = rng.dirichlet(np.ones(args.classes), args.items)
    q = rng.dirichlet(np.ones(args.classes), args.items)
    p[::100] = np.nan  # 1% unparsable
    t = time.perf_counter()
    res = evaluate(p, q, [f"c{i}" for i in range(args.classes)])
    t_eval = time.perf_counter() - t
    t = time.perf_counter()
    shala_reward(p, q)
    t_rew = time.perf_counter() - t
    print(f"items={args.items:,} classes={args.classes}")
    print(f"evaluate (jsd, jsd_e, bc, kl, tvd, acc, f1, wf1): {t_eval:.2f} s  ({args.items / t_eval:,.0f} items/s)")
    print(f"shala_reward: {t_rew:.2f} s  ({args.items / t_rew:,.0f} items/s)")
    print({k: round(v, 4) for k, v in res.items()})


if __name__ == "__main__":
    main()
