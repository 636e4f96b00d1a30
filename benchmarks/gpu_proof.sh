#!/usr/bin/env bash
# The GPU measurements quoted in the README and issue notes, in stages (one device call each).
#   setup  : install carried wheels (.whl/) into /tmp/site
#   model  : join the embedded GGUF from /tmp/parts + .modelparts/, check sha256, convert
#   bench  : inference benchmark, zero-shot predictions on ChaosNLI test, GRPO step benchmark
#   train  : one epoch of SHALA / w/o Ambi-En / MLS with SmolLM2 (in parallel)
#   zero3  : DeepSpeed ZeRO-3 under accelerate (the lent machines have 1 GPU: 1 process; 2 processes are
#            proven on CPU by tests/test_multiprocess.py): 6 steps, checkpoints every 2 (the last 2 kept),
#            then the final test evaluation, which hung before ZeRO-3 was released; checks printed as JSON
#   omni   : speech + text on a random-init Qwen2.5-Omni-7B-sized thinker (benchmarks/omni_proof.py): processor
#            identity (Qwen2_5OmniProcessor vs the composed path, where torchvision is installed), zero-shot
#            throughput with audio, 4 GRPO steps with LoRA under the paper's settings (s/step, peak memory,
#            forwards with audio tokens but no features: must be 0). Needs the setup stage's wheels to include
#            peft, soundfile and soxr (pip download --only-binary :all: -d .whl peft soundfile soxr)
# Outputs go to $OUT (or ./gpu_out). Data: SHALA_DATA_DIR (carry a copy, e.g. .gpu/data).
set -euo pipefail
stage=$1
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
export PYTHONPATH=/tmp/site:$PWD PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export SHALA_CACHE_DIR=/tmp/shala_cache SHALA_EMBEDDED_GGUF=/tmp/SmolLM2-135M-Instruct.Q4_1.gguf
export SHALA_DATA_DIR=${SHALA_DATA_DIR:-$PWD/.gpu/data}
case $stage in
setup)
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  DS_BUILD_OPS=0 python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target /tmp/site .whl/deepspeed-*.tar.gz
  mkdir -p /tmp/parts && cp .modelparts/part_00 /tmp/parts/
  python3 -c "import trl, datasets, deepspeed, torch, transformers; print('trl', trl.__version__, 'ds', deepspeed.__version__, 'tf', transformers.__version__, torch.cuda.get_device_name())"
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv ;;
model)
  cp .modelparts/part_01 /tmp/parts/
  cat /tmp/parts/part_* > "$SHALA_EMBEDDED_GGUF"
  echo "b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53  $SHALA_EMBEDDED_GGUF" | sha256sum -c
  python3 -c "from shala_lib.generation.embedded import embedded_model_dir; print(embedded_model_dir())" ;;
bench)
  python3 benchmarks/inference.py --device cuda --items 2048 --loop-items 8 --batch 64 --ours-batch 1024 \
    --ours-cache dynamic --max-new-tokens 64 2>"$OUT/inference.err" | tee "$OUT/inference.json"
  # our default on CUDA (cache="auto" = static, one shape per call, compiled once; warm-up timed separately)
  python3 benchmarks/inference.py --device cuda --items 2048 --loop-items 8 --batch 64 --ours-batch 256 \
    --ours-cache auto --warmup --max-new-tokens 64 2>"$OUT/inference_static.err" | tee "$OUT/inference_static.json"
  timeout 300 python3 benchmarks/grpo_step.py --steps 8 --steps-per-generation 8 2>"$OUT/grpo_step.err" | tee "$OUT/grpo_step.json" ;;
zeroshot)
  python3 -m shala_lib.evaluation.zero_shot --out "$OUT" --batch-size 1024 2>"$OUT/zero_shot.err" | tee "$OUT/zero_shot.txt" ;;
train)
  for m in shala shala_no_ambi mls; do
    python3 -m shala_lib.train configs/chaosnli_smollm2.yaml --set method=$m name=smollm2_$m output_dir=/tmp/runs \
      > "$OUT/train_$m.log" 2>&1 &
  done
  wait
  for m in shala shala_no_ambi mls; do tail -c 1500 "$OUT/train_$m.log"; cp /tmp/runs/smollm2_$m/metrics.csv "$OUT/metrics_$m.csv" || true; done ;;
zero3)
  rm -rf /tmp/runs_z3
  timeout 400 accelerate launch --config_file configs/accelerate_zero3.yaml --num_processes 1 -m shala_lib.train \
    configs/chaosnli_smollm2.yaml --set name=zero3 output_dir=/tmp/runs_z3 max_train_items=96 max_eval_items=64 \
    prompts_per_step=4 grpo.per_device_train_batch_size=16 grpo.max_steps=6 grpo.max_completion_length=128 \
    grpo.save_steps=2 > "$OUT/zero3.log" 2>&1 || echo "zero3 exit $? (124 = timed out: a hang)"
  grep -E "step_time|train_runtime|error|Error" "$OUT/zero3.log" | tail -15
  sed "s|OUTDIR|$OUT|" > /tmp/zero3_checks.py <<'PY'

import json, pathlib, re, pandas as pd, yaml
run = pathlib.Path("/tmp/runs_z3/zero3")
eff = yaml.safe_load((run / "effective_config.yaml").read_text())
comps = pd.read_parquet(run / "completions.parquet")
print(json.dumps({
    "deepspeed_stage3_in_log": bool(re.search(r"['\"]stage['\"]: 3", pathlib.Path("OUTDIR/zero3.log").read_text())),
    "world_size": eff["world_size"],
    "prompts_per_optimizer_step": eff["notes"]["prompts_per_optimizer_step"],
    "loss_type": eff["notes"]["loss_type"],
    "completions_rows": len(comps), "completions_expected": 6 * 16,
    "each_prompt_4_rollouts": bool(comps.groupby(["step", "id"]).size().eq(4).all()),
    "checkpoints": sorted(p.name for p in run.glob("checkpoint-*")),
    "metrics_test": json.loads((run / "metrics_test.json").read_text()) if (run / "metrics_test.json").is_file() else None,
}, indent=1))
PY
  python3 /tmp/zero3_checks.py | tee "$OUT/zero3_checks.json"
  nvidia-smi --query-gpu=memory.used --format=csv ;;
omni)
  timeout 560 python3 benchmarks/omni_proof.py --size 7b --device cuda --steps 4 --items 64 --batch 16 \
    --max-new-tokens 64 --out "$OUT" 2>"$OUT/omni_proof.err" | tail -60
  nvidia-smi --query-gpu=memory.used --format=csv ;;
esac
