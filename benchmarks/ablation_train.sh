# Training runs behind benchmarks/ablations.py (run from the repo root after scripts/train_tiny_python.sh).
#   register noise on/off (App. D, Fig. 7): 250 autoencoder steps each from the stage-0 demasker, identical except
#     register_noise_cs (0.8 = the paper's augmentation; 1.0 = no noise);
#   block-wise timestep offsets off (App. G(iii)): the tiny-python prior recipe (1200 steps) with max offset 0,
#     to compare with the shipped prior (same recipe, offsets 0..0.2).
# Measured: ≈ 4 + 4 + 9 min on 2 CPU cores.
set -ex
# NOISE_STEPS=600 (clean warm-up a quarter of it) writes runs/ablate-noise600-*; the default 250 writes runs/ablate-noise-*.
NOISE_STEPS=${NOISE_STEPS:-250}
SUFFIX=$([ "$NOISE_STEPS" = 250 ] && echo "" || echo "$NOISE_STEPS")
for noise in 0.8 1.0; do
  out=runs/ablate-noise$SUFFIX-$noise
  [ -f $out/training_complete.json ] && continue
  crocodil train autoencoder --config tiny-python/autoencoder --model_name_or_path runs/tiny-python/mdm \
    --output_dir $out --max_steps $NOISE_STEPS --clean_warmup_steps $((NOISE_STEPS * 80 / 250)) \
    --save_steps $NOISE_STEPS --warmup_steps 20 --register_noise_cs $noise --disable_tqdm true
done
[ "$NOISE_STEPS" = 250 ] || exit 0
crocodil train prior --config tiny-python/prior --max_timestep_offset 0 --output_dir runs/ablate-prior-no-offsets \
  --disable_tqdm true
