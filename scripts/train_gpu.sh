#!/usr/bin/env bash
# The GPU recipe `gpu-python-small` on one GPU (bf16, SDPA): tokenizer → mdm → autoencoder → registers → prior →
# conditional-prior → assemble → generate, each stage's wall time printed. Planned for <= 8 min on one H200; not yet
# measured on a GPU. Resumable: rerun after a kill.
#
#   bash scripts/train_gpu.sh [RUN_DIR]                 # default RUN_DIR: runs/gpu-python-small
#   SMOKE=1 bash scripts/train_gpu.sh RUN_DIR           # tiny models on CPU, a few steps (the test suite runs this)
# Then evaluate as the shipped model was (docs/results.md), e.g.
#   crocodil eval --pipeline RUN_DIR/pipeline --modes mdm,con_then_disc,con_within_disc,autoencode --steps 8,16,32,128
set -euo pipefail
if [ "${SMOKE:-0}" != 1 ] && ! python -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
  echo "train_gpu.sh: no CUDA device visible; run the CPU recipe (scripts/train_tiny_python.sh) or SMOKE=1" >&2
  exit 2
fi
start=$(date +%s)
RECIPE=gpu-python-small OMP_NUM_THREADS="${OMP_NUM_THREADS:-8}" \
  bash "$(dirname "$0")/train_tiny_python.sh" "${1:-runs/gpu-python-small}"
echo "== gpu-python-small: $(( $(date +%s) - start )) s in all"
