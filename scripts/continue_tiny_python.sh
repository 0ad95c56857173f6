#!/usr/bin/env bash
# Cumulative training: continue a trained pipeline (default: the shipped crocodil-python-tiny) through
# autoencoder → registers → prior → conditional-prior → assemble, each stage starting from the pipeline's weights
# (`--init_from`, fresh optimizer and warm-up). When the pipeline has a plain-MDM baseline (`mdm_demasker`), it is
# continued for as many steps as the autoencoder (`mdm-baseline`), so `mode="mdm"` keeps meaning "the same training
# budget without registers". Resumable: rerun after a kill.
#
#   bash scripts/continue_tiny_python.sh RUN_DIR                  # ~20 min on 2 cores at the default step counts
#   AE_STEPS=3000 bash scripts/continue_tiny_python.sh RUN_DIR    # a longer continuation
#   STAGE_ARGS="--prompt_prob 0.5 --prompt_suffix_prob 0.6 --prompt_span_pad 16" bash scripts/continue_tiny_python.sh RUN_DIR
#       (STAGE_ARGS go to the autoencoder, conditional-prior and mdm-baseline stages: here, prompt-aware training with
#       EOS-padded infill spans, App. H and issue 41; the plain-MDM baseline gets the same recipe, so the comparison
#       stays fair)
#   NUM_REGISTERS=2: the k registers sampled z₀ shows the demasker; the priors model those k only (prefix priors,
#       docs/results.md "Prefix priors"), started from INIT's priors, K-register or prefix; PRIOR_NUM_REGISTERS= (empty) keeps
#       priors over all K registers
set -euo pipefail
RUN="${1:?usage: continue_tiny_python.sh RUN_DIR}"
INIT="${INIT:-crocodil-python-tiny}"
AE_STEPS="${AE_STEPS:-500}" PRIOR_STEPS="${PRIOR_STEPS:-150}" COND_STEPS="${COND_STEPS:-300}"
# the autoencoder continuation starts with clean all-mask steps (docs/results.md "Recipe study": the best of four recipes)
AE_CLEAN_STEPS="${AE_CLEAN_STEPS:-100}"
read -r -a EXTRA <<< "${STAGE_ARGS:-}"
mkdir -p "$RUN"
export HF_HUB_OFFLINE=1
COMMON=(--save_steps 250 --clean_warmup_steps 0 --warmup_steps 50)
NUM_REGISTERS="${NUM_REGISTERS:-2}"
PRIOR_NUM_REGISTERS="${PRIOR_NUM_REGISTERS-$NUM_REGISTERS}"
PREFIX=()
if [ -n "$PRIOR_NUM_REGISTERS" ]; then PREFIX=(--prior_num_registers "$PRIOR_NUM_REGISTERS"); fi

step() {  # step NAME ARGS...: run `crocodil train NAME` into RUN/NAME unless it already finished
  local stage="$1"; shift
  train_as "$stage" "$stage" "$@"
}
train_as() {  # train_as DIR STAGE ARGS...: run `crocodil train STAGE` into RUN/DIR unless it already finished
  local dir="$1" stage="$2"; shift 2
  if [ -f "$RUN/$dir/training_complete.json" ]; then echo "== $dir: done"; return; fi
  echo "== $dir: $(date -u +%H:%M:%S)"
  crocodil train "$stage" --config "tiny-python/$stage" --output_dir "$RUN/$dir" "$@"
}
INIT_DIR="$(python -c "from crocodil_hf.utils.locate import locate_pipeline; print(locate_pipeline('$INIT'))")"
step autoencoder --init_from "$INIT" --max_steps "$AE_STEPS" --learning_rate 3e-4 "${COMMON[@]}" \
  --clean_warmup_steps "$AE_CLEAN_STEPS" \
  ${EXTRA[@]+"${EXTRA[@]}"}
step registers --tokenizer_name_or_path "$RUN/autoencoder/tokenizer" --encoder_name_or_path "$RUN/autoencoder/encoder"
step prior --init_from "$INIT" --registers_dir "$RUN/registers" --max_steps "$PRIOR_STEPS" --learning_rate 2e-4 \
  "${COMMON[@]}" ${PREFIX[@]+"${PREFIX[@]}"}
step conditional-prior --init_from "$INIT" --registers_dir "$RUN/registers" \
  --encoder_name_or_path "$RUN/autoencoder/encoder" --max_steps "$COND_STEPS" --learning_rate 2e-4 "${COMMON[@]}" \
  ${PREFIX[@]+"${PREFIX[@]}"} ${EXTRA[@]+"${EXTRA[@]}"}
BASELINE=()
if [ -d "$INIT_DIR/mdm_demasker" ]; then  # the fair plain-MDM baseline: as many more steps as the autoencoder
  train_as mdm-baseline mdm --init_from "$INIT" --max_steps "$AE_STEPS" --learning_rate 3e-4 "${COMMON[@]}" \
    ${EXTRA[@]+"${EXTRA[@]}"}
  BASELINE=(--mdm-demasker "$RUN/mdm-baseline")
fi
# the priors' sampler and default step count of the shipped pipeline (docs/results.md "Few-step priors"), and the k registers
# that sampled z₀ shows the demasker (docs/results.md "Registers for generation")
crocodil assemble --autoencoder "$RUN/autoencoder" --prior "$RUN/prior" \
  --conditional-prior "$RUN/conditional-prior" --output "$RUN/pipeline" --overwrite \
  --prior-scheduler "${PRIOR_SCHEDULER:-dpmsolver++}" --prior-steps "${PRIOR_DEFAULT_STEPS:-16}" \
  --num-registers "$NUM_REGISTERS" ${BASELINE[@]+"${BASELINE[@]}"}
