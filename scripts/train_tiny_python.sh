#!/usr/bin/env bash
# The whole training chain (tokenizer → mdm → autoencoder → registers → prior → conditional-prior → assemble →
# generate) with the tiny-python recipe on CPU. Resumable: rerun after a kill.
#
#   bash scripts/train_tiny_python.sh [RUN_DIR]          # the shipped recipe (~90 min on 2 cores)
#   NPROC=2 bash scripts/train_tiny_python.sh RUN_DIR    # every stage as 2 processes (torchrun, gloo)
#   SMOKE=1 NPROC=2 bash scripts/train_tiny_python.sh RUN_DIR   # tiny models, a few steps (~2 min; CI runs this)
#   RECIPE=gpu-python-small bash scripts/train_tiny_python.sh RUN_DIR   # another shipped recipe (scripts/train_gpu.sh)
#   NUM_REGISTERS=2 bash scripts/train_tiny_python.sh RUN_DIR   # as the shipped model: sampled registers guide the
#       demasker through their first k = 2, and the priors model those k only (prefix priors, docs/results.md "Prefix priors");
#       PRIOR_NUM_REGISTERS= (empty) keeps K-register priors. Default: K registers everywhere, as measured from scratch.
set -euo pipefail
RECIPE="${RECIPE:-tiny-python}"
RUN="${1:-runs/$RECIPE}"
NPROC="${NPROC:-1}"
VOCAB="${VOCAB:-4096}"
NUM_REGISTERS="${NUM_REGISTERS:-}"
PRIOR_NUM_REGISTERS="${PRIOR_NUM_REGISTERS-$NUM_REGISTERS}"
PREFIX=() ASSEMBLE_K=()
if [ -n "$PRIOR_NUM_REGISTERS" ]; then PREFIX=(--prior_num_registers "$PRIOR_NUM_REGISTERS"); fi
if [ -n "$NUM_REGISTERS" ]; then ASSEMBLE_K=(--num-registers "$NUM_REGISTERS"); fi
mkdir -p "$RUN"
export HF_HUB_OFFLINE=1 OMP_NUM_THREADS="${OMP_NUM_THREADS:-1}"

SMOKE_ARGS=()
if [ "${SMOKE:-0}" = 1 ]; then
  LLADA='{d_model: 32, n_heads: 2, n_kv_heads: 2, n_layers: 1, mlp_hidden_size: 64, max_sequence_length: 128}'
  SMOKE_ARGS=(--max_steps 4 --save_steps 4 --warmup_steps 0 --max_length 33 --max_programs 200
              --per_device_train_batch_size 4 --model_config "$LLADA" --encoder_backbone_config "{model_type: llada, ${LLADA:1}"
              --num_registers 4 --prefix_rope_pairs 2 --prior_config '{hidden_size: 32, num_layers: 1, num_attention_heads: 2}'
              --clean_warmup_steps 2 --data_cache_dir "$RUN/cache" --bf16 false --dataloader_num_workers 0)
fi
LAUNCH=(crocodil)
if [ "$NPROC" -gt 1 ]; then
  LAUNCH=(torchrun --nproc_per_node "$NPROC" --master_port "${MASTER_PORT:-29551}" -m crocodil_hf.cli)
  SMOKE_ARGS+=(--ddp_backend gloo)
fi

[ -f "$RUN/tokenizer/tokenizer.json" ] || crocodil tokenizer --vocab-size "$([ "${SMOKE:-0}" = 1 ] && echo 512 || echo "$VOCAB")" --output "$RUN/tokenizer"
for stage in mdm autoencoder registers prior conditional-prior; do
  if [ -f "$RUN/$stage/training_complete.json" ]; then echo "== $stage: done"; continue; fi
  echo "== $stage: $(date -u +%H:%M:%S)"
  "${LAUNCH[@]}" train "$stage" --config "$RECIPE/$stage" \
    --tokenizer_name_or_path "$RUN/tokenizer" --output_dir "$RUN/$stage" \
    $( [ "$stage" = autoencoder ] && echo --model_name_or_path "$RUN/mdm" ) \
    $( [ "$stage" = registers ] || [ "$stage" = conditional-prior ] && echo --encoder_name_or_path "$RUN/autoencoder/encoder" ) \
    $( [ "$stage" = prior ] || [ "$stage" = conditional-prior ] && echo --registers_dir "$RUN/registers" ${PREFIX[@]+"${PREFIX[@]}"} ) \
    ${SMOKE_ARGS[@]+"${SMOKE_ARGS[@]}"}
done
# the priors' sampler and default step count of the shipped pipeline (docs/results.md "Few-step priors")
crocodil assemble --autoencoder "$RUN/autoencoder" --prior "$RUN/prior" \
  --conditional-prior "$RUN/conditional-prior" --output "$RUN/pipeline" --overwrite \
  --prior-scheduler "${PRIOR_SCHEDULER:-dpmsolver++}" --prior-steps "${PRIOR_DEFAULT_STEPS:-16}" \
  ${ASSEMBLE_K[@]+"${ASSEMBLE_K[@]}"}
echo "== pipeline: $RUN/pipeline ($(date -u +%H:%M:%S))"
crocodil generate --pipeline "$RUN/pipeline" --num-samples 2 --steps 8 --prior-steps 8
