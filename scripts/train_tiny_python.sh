#!/usr/bin/env bash
# Reproduce the tiny CPU pipeline from scratch with the project's own recipe (all stages), then assemble it.
# Usage: bash scripts/train_tiny_python.sh [RUN_DIR]   (default runs/tiny-python; resumable: rerun after a kill)
set -euo pipefail
RUN="${1:-runs/tiny-python}"
mkdir -p "$RUN"
export HF_HUB_OFFLINE=1
[ -f "$RUN/tokenizer/tokenizer.json" ] || crocodil tokenizer --vocab-size 4096 --output "$RUN/tokenizer"
for stage in mdm autoencoder registers prior conditional-prior; do
  if [ -f "$RUN/$stage/training_complete.json" ]; then echo "== $stage: done"; continue; fi
  echo "== $stage: $(date -u +%H:%M:%S)"
  crocodil train "$stage" --config "tiny-python/$stage" \
    --tokenizer_name_or_path "$RUN/tokenizer" --output_dir "$RUN/$stage" \
    $( [ "$stage" = autoencoder ] && echo --model_name_or_path "$RUN/mdm" ) \
    $( [ "$stage" = registers ] || [ "$stage" = conditional-prior ] && echo --encoder_name_or_path "$RUN/autoencoder/encoder" ) \
    $( [ "$stage" = prior ] || [ "$stage" = conditional-prior ] && echo --registers_dir "$RUN/registers" )
done
crocodil assemble --autoencoder "$RUN/autoencoder" --prior "$RUN/prior" \
  --conditional-prior "$RUN/conditional-prior" --output "$RUN/pipeline" --overwrite
echo "== pipeline: $RUN/pipeline ($(date -u +%H:%M:%S))"
