#!/usr/bin/env bash
# Everything only a GPU can show, in one bounded run (at most 8 minutes), from the repository root:
#   tools/gpu_check.sh [--budget SECONDS] [--out DIR]
# machine record, CUDA kernels == CPU kernels, TensorRT plugins/loaders/engines vs ONNX Runtime, algm-export end
# to end. Stages that cannot run here are skipped with the reason. Summary (summary.json, summary.txt) in $OUT
# when set, else build/gpu_check/out. Exit 0 unless a stage that ran failed. Details: python3 -m gpu_check --help
# (with PYTHONPATH=tools) or README.md "On a GPU machine". Installs nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
export PYTHONPATH="$PWD/tools${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1
# The driver keeps its stages inside --budget (default 450 s); this is the hard stop behind it.
timeout --kill-after=10 480 "$PYTHON" -m gpu_check "$@"
status=$?
if [ "$status" -eq 124 ] || [ "$status" -eq 137 ]; then
  echo "gpu_check: stopped at the 8-minute limit (the summary holds the stages finished before)" >&2
fi
exit "$status"
