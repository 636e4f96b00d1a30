#!/usr/bin/env bash
# Every GPU check in ONE device call (issue 22): <= 9 minutes, <= 64 MiB carried, no model weights (random-init
# models of the real architectures). Parts, most valuable first, each with its own limit and its own
# $OUT/<part>.json written as it finishes (benchmarks/gpu_check.py): grpo_7b_one_gpu, learnability,
# inference_floor, zero3_bf16; then $OUT/summary.md (README-ready).
#
# Here, once (the GPU machine has torch 2.11, accelerate, peft, transformers 5.17 but not trl, datasets,
# deepspeed, pydantic, soundfile, soxr; 22 MiB of wheels, versions from constraints.txt):
#   bash benchmarks/gpu_check.sh --fetch-wheels        # into .whl/ (git-ignored via .git/info/exclude)
# The device call (run tool, carry [".whl"], timeout_s 560):
#   bash benchmarks/gpu_check.sh
# Here, every part at tiny size on CPU (seconds each):
#   bash benchmarks/gpu_check.sh --cpu-smoke
set -uo pipefail
cd "$(dirname "$0")/.."
# What the device image lacks or has at another version (KINDS.md's package list), at the versions
# constraints.txt pins; DeepSpeed as its source (built there with DS_BUILD_OPS=0).
WHEELS="trl datasets transformers pydantic pydantic_core annotated-types typing-inspection typing_extensions
  soundfile soxr cffi pycparser dill multiprocess hjson"
pin() { grep -iE "^$(echo "$1" | sed 's/[-_]/[-_]/g')==" constraints.txt; }
case "${1:-}" in
--fetch-wheels)
  pins=()
  for w in $WHEELS deepspeed; do
    p=$(pin "$w") || { echo "not pinned in constraints.txt: $w" >&2; exit 2; }
    pins+=("$p")
  done
  for x in /.whl/ '/.whl.tmp.*'; do grep -qxF "$x" .git/info/exclude 2>/dev/null || echo "$x" >> .git/info/exclude; done
  tmp=$(mktemp -d .whl.tmp.XXXXXX)  # a failed fetch leaves an earlier .whl/ as it was
  trap 'rm -rf "$tmp"' EXIT
  for p in "${pins[@]}"; do
    if [ "${p%%==*}" = deepspeed ]; then  # its source: built there with DS_BUILD_OPS=0
      python3 -m pip download -q --no-deps --no-binary :all: -d "$tmp" "$p" || { echo "could not fetch $p" >&2; exit 1; }
      continue
    fi
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
      --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
      --platform manylinux2014_x86_64 --platform any -d "$tmp" "$p" || { echo "could not fetch $p" >&2; exit 1; }
  done
  rm -rf .whl && mv "$tmp" .whl
  ls .whl | wc -l; du -sh .whl; exit 0 ;;
--cpu-smoke)
  OUT=${OUT:-/tmp/gpu_check_smoke}; PY=${PY:-.venv/bin/python}
  exec "$PY" benchmarks/gpu_check.py --cpu-smoke --out "$OUT" ;;
esac
OUT=${OUT:-gpu_out}; mkdir -p "$OUT"
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false SHALA_CACHE_DIR=/tmp/shala_cache
if [ -d .whl ]; then  # only what the machine lacks
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  DS_BUILD_OPS=0 python3 -m pip install -q --no-index --no-deps --no-build-isolation --no-cache-dir --target /tmp/site \
    .whl/deepspeed-*.tar.gz
  export PYTHONPATH=/tmp/site:$PWD
fi
{ nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; free -g; } > "$OUT/machine.txt" 2>&1
timeout 500 python3 benchmarks/gpu_check.py --out "$OUT"
