# Every benchmark of this directory, one after the other on an otherwise idle machine (timings need that), from the
# repo root after `bash scripts/train_tiny_python.sh` (runs/tiny-python/*). Outputs under runs/bench/ (gitignored);
# the README's numbers are copied from there into docs/results/benchmarks/.
#   BEFORE/AFTER: the commits compared by compare_commits.py (default: before and after the sampler clean-up).
# Measured on 2 CPU cores: 55 min with the MDM baseline already trained (its 3000 steps: 46 min more); 17 min of the
# 55 are the ablation training runs.
set -ex
BEFORE=${BEFORE:-1e36fcd}
AFTER=${AFTER:-3600ad3}
mkdir -p runs/bench
# the fair MDM baseline: the stage-0 demasker trained for as many more steps as the autoencoder stage ran (3000)
if [ ! -f runs/bench/mdm-long/training_complete.json ]; then
  crocodil train mdm --config tiny-python/mdm --model_name_or_path runs/tiny-python/mdm \
    --output_dir runs/bench/mdm-long --max_steps 3000 --save_steps 500 --disable_tqdm true
fi
python benchmarks/sampler_speed.py --output runs/bench/sampler_speed.json
python benchmarks/compare_commits.py "$BEFORE" "$AFTER" --rounds 1 -- --batches 1,16 --repeats 3 \
  > runs/bench/compare_commits.json
[ -f runs/ablate-prior-no-offsets/training_complete.json ] || bash benchmarks/ablation_train.sh
python benchmarks/autoencoder_table.py --output-dir runs/bench/autoencoder
python benchmarks/generation_curves.py --output-dir runs/bench/generation
python benchmarks/ablations.py --output-dir runs/bench/ablations
# few-step priors (docs/results.md "Few-step priors"): both distilled students of the trained pipeline, then every solver
[ -f runs/tiny-python/prior-distill/training_complete.json ] || crocodil train prior-distill \
  --config tiny-python/prior-distill --init_from runs/tiny-python/pipeline --max_steps 300 --disable_tqdm true
[ -f runs/tiny-python/conditional-prior-distill/training_complete.json ] || crocodil train conditional-prior-distill \
  --config tiny-python/conditional-prior-distill --init_from runs/tiny-python/pipeline --max_steps 100 \
  --save_steps 50 --warmup_steps 10 --disable_tqdm true
python benchmarks/prior_steps.py --pipeline runs/tiny-python/pipeline --registers-dir runs/tiny-python/registers \
  --distilled-prior runs/tiny-python/prior-distill \
  --distilled-conditional-prior runs/tiny-python/conditional-prior-distill \
  --downstream-steps 2,4,16 --downstream-solvers dpmsolver++,distilled --noise-seeds 1 --output-dir runs/bench/prior-steps
# stage-1 recipes continued from the trained pipeline, CER at L/4 per training CPU-minute (docs/results.md "Recipe study")
python benchmarks/recipe_study.py --init-from runs/tiny-python/pipeline --variants base,lr-1e-3,all-mask-0.5,clean-warmup \
  --max-steps 300 --eval-every 150 --output-dir runs/bench/recipe
# the demasker's sensitivity to register error against the prior's samples (README "Where the drift comes from")
python benchmarks/register_sensitivity.py --pipeline trained=runs/tiny-python/pipeline --num-samples 64 \
  --num-reference 256 --noise-cs 1,0.8,0.6 --prior-samplers default,ddim:50,shuffled,default@0.6 \
  --output-dir runs/bench/register-sensitivity
python benchmarks/prior_fit.py --pipeline runs/tiny-python/pipeline --output-dir runs/bench/prior-fit
