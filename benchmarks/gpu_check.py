"""Every GPU check in ONE device call (issue 22): parts in priority order, each with its own time limit, each
writing `<out>/<part>.json` as it finishes (a later timeout keeps the earlier parts), then `summary.md`.

    OUT=/path python benchmarks/gpu_check.py                 # the device call (benchmarks/gpu_check.sh)
    python benchmarks/gpu_check.py --cpu-smoke --out /tmp/x  # every part at tiny size on CPU, seconds each
    python benchmarks/gpu_check.py --list                    # the parts, in order

Random-init models of the real architectures (no weights carried):
1. `grpo_7b_one_gpu`: GRPO steps of a Qwen2.5-Omni-7B-sized thinker with audio, full fine-tuning (vision frozen)
   as it fits the lent machine (one H200, 128 GB RAM: below the ~200 GB of ZeRO-3 optimizer offload, so bf16
   weights + bf16 AdamW states on the GPU), s/step, peak GPU and CPU memory; DeepSpeed's estimate for the paper's
   recipes beside it (`shala_lib.training.memory`).
2. `learnability`: the learnability probe's GRPO with all layers trained (`train_top_layers=null`) on GPU for
   as many steps as fit (`benchmarks/learnability.py`).
3. `inference_floor`: issue 4's inference floor (`benchmarks/inference.py`).
4. `zero3_bf16`: `accelerate launch` with DeepSpeed ZeRO-3 and bf16 (configs/accelerate_zero3.yaml, 1 process).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
PARTS = ("grpo_7b_one_gpu", "learnability", "inference_floor", "zero3_bf16")
# seconds per part on the device (sum 480 s: 8 minutes of a 9-minute call; the rest is setup)
LIMITS = {"grpo_7b_one_gpu": 210, "learnability": 120, "inference_floor": 60, "zero3_bf16": 90}


def tiny_model(work: Path, smoke: bool) -> Path:
    """A random-init Qwen2-architecture causal LM (SmolLM2-135M-sized on GPU) with a BPE tokenizer."""
    from shala_lib.generation.tiny import build_tiny_model

    texts = ["Predict the probability of each class", '{"a": 0.25, "b": 0.75}'] * 20
    return build_tiny_model(work / "model", texts, hidden_size=32 if smoke else 576, layers=2 if smoke else 30)


def commands(part: str, smoke: bool, out: Path, work: Path) -> list[list[str]]:
    py = sys.executable
    dev = "cpu" if smoke else "cuda"
    if part == "grpo_7b_one_gpu":
        size, steps = ("tiny", 2) if smoke else ("7b", 4)
        return [[py, "benchmarks/omni_proof.py", "--size", size, "--device", dev, "--steps", str(steps), "--full",
                 "--skip-zero-shot", "--out", str(work / part)]]  # fmt: skip
    model = str(tiny_model(work, smoke))
    if part == "learnability":
        steps = 2 if smoke else 40
        return [[py, "benchmarks/learnability.py", "--out", str(work / part), "--format-warmup", "0", "--set",
                 f"model={model}", f"device={dev}", "train_top_layers=null", f"grpo.max_steps={steps}"]]  # fmt: skip
    if part == "inference_floor":
        n = ["--items", "8", "--loop-items", "2", "--max-new-tokens", "8"] if smoke else ["--items", "512"]
        return [[py, "benchmarks/inference.py", "--model", model, "--device", dev, *n]]
    steps = 2 if smoke else 6
    cfg = "configs/accelerate_zero3_cpu.yaml" if smoke else "configs/accelerate_zero3.yaml"
    return [[py, "-m", "accelerate.commands.launch", "--config_file", cfg, "--num_processes", "1", "-m",
             "shala_lib.train", "configs/chaosnli_smollm2.yaml", "--set", "dataset=triage_probe", f"model={model}",
             f"output_dir={work / part}", "name=zero3", "max_train_items=32", "max_eval_items=16",
             f"grpo.max_steps={steps}", "grpo.max_completion_length=24", "report_to=[]", "--overwrite"]]  # fmt: skip


def last_json(text: str) -> dict | None:
    """The last JSON document a part printed (its report), else None."""
    for start in [i for i, ch in enumerate(text) if ch == "{" and (i == 0 or text[i - 1] == "\n")][::-1]:
        try:
            return json.loads(text[start:])
        except ValueError:
            continue
    return None


def estimate_report() -> dict:
    from shala_lib.training.memory import QWEN25_OMNI_7B_THINKER, RECIPES, estimate

    return {
        f"{n}gpu_{r}": dict(zip(("gpu_gib", "cpu_gib"), (round(x, 1) for x in estimate(QWEN25_OMNI_7B_THINKER, r, n))))
        for n in (1, 2)
        for r in RECIPES
    }


def run_part(part: str, smoke: bool, out: Path, work: Path, limit: float) -> dict:
    t0 = time.perf_counter()
    rec: dict = {"part": part, "limit_s": limit}
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONPATH": f"{ROOT}:{os.environ.get('PYTHONPATH', '')}"}
    if smoke and part == "zero3_bf16":
        env.update(DS_ACCELERATOR="cpu", OMP_NUM_THREADS="1")
    shutil.rmtree(work / part, ignore_errors=True)  # scratch: no run or report left from an earlier call
    try:
        for cmd in commands(part, smoke, out, work):
            rec["command"] = " ".join(cmd)
            left = max(5.0, limit - (time.perf_counter() - t0))
            p = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=left)
            (out / f"{part}.log").write_text(p.stdout + "\n--- stderr ---\n" + p.stderr[-20000:])
            rec.update(rc=p.returncode, report=last_json(p.stdout))
            if p.returncode != 0:
                rec["stderr_tail"] = p.stderr[-2000:]
        if part == "learnability":  # its report is a file; exit 1 is the probe's FAIL verdict, not a crash
            f = work / part / "learnability.json"
            rec["report"] = json.loads(f.read_text()) if f.exists() else None
            rec["completed"] = rec["report"] is not None and rec["rc"] in (0, 1)
            if rec["report"] is not None:
                rec["probe_passed"] = rec["report"].get("passed")
        else:
            rec["completed"] = rec["rc"] == 0
    except subprocess.TimeoutExpired:
        rec.update(rc=124, timed_out=True)
    except Exception as e:  # noqa: BLE001 - a part that cannot start still reports
        rec.update(rc=1, error=f"{type(e).__name__}: {e}")
    rec["seconds"] = round(time.perf_counter() - t0, 1)
    if part == "grpo_7b_one_gpu":
        rec["deepspeed_estimate_paper_thinker_gib"] = estimate_report()
    if part == "zero3_bf16":
        log = (out / f"{part}.log").read_text() if (out / f"{part}.log").exists() else ""
        rec["stage3_in_log"] = "'stage': 3" in log or '"stage": 3' in log
        rec["bf16_in_log"] = "bf16" in log
        eff = work / part / "zero3" / "effective_config.yaml"  # the run's engine (shala_lib.training.run_dir)
        if eff.exists():
            import yaml

            engine = (yaml.safe_load(eff.read_text()) or {}).get("engine") or {}
            ds = engine.get("deepspeed") or {}
            rec["engine"] = {"distributed_type": engine.get("distributed_type"), **ds}
            rec["zero_stage"], rec["deepspeed_bf16"] = ds.get("zero_stage"), ds.get("bf16")
    (out / f"{part}.json").write_text(json.dumps(rec, indent=1) + "\n")
    return rec


def summary(recs: list[dict]) -> str:
    rows = ["| part | rc | completed | seconds | what |", "|---|---|---|---|---|"]
    for r in recs:
        rep = r.get("report") or {}
        what = ""
        if r["part"] == "grpo_7b_one_gpu" and rep.get("grpo"):
            g = rep["grpo"]
            what = f"{g['s_per_step']} s/step, peak GPU {g['peak_gpu_mem_gib']} GiB, peak CPU {g.get('peak_cpu_rss_gib')} GiB"  # noqa: E501
        elif rep:
            what = ", ".join(f"{k}={v}" for k, v in list(rep.items())[:6] if not isinstance(v, (dict, list)))
        rows.append(f"| {r['part']} | {r['rc']} | {r.get('completed', False)} | {r['seconds']} | {what} |")
    return "\n".join(rows) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cpu-smoke", action="store_true", help="every part at tiny size on CPU")
    ap.add_argument("--out", default=os.environ.get("OUT", "gpu_out"))
    ap.add_argument("--parts", nargs="*", default=list(PARTS), choices=PARTS)
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(PARTS))
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    work = Path(os.environ.get("GPU_CHECK_WORK", "/tmp/gpu_check"))  # noqa: S108
    work.mkdir(parents=True, exist_ok=True)
    recs = []
    for part in args.parts:
        rec = run_part(part, args.cpu_smoke, out, work, 120 if args.cpu_smoke else LIMITS[part])
        recs.append(rec)
        print(f"{part}: rc {rec['rc']} (completed: {rec.get('completed', False)}) in {rec['seconds']} s", flush=True)
        (out / "summary.md").write_text(summary(recs))
    print(summary(recs))
    return 0 if all(r.get("completed") for r in recs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
