#!/usr/bin/env bash
# Prompt-aware training (paper App. H line 7) against the default objective, at equal compute: both continue the
# shipped pipeline for the same steps (scripts/continue_tiny_python.sh), one with `--prompt_prob 0.5
# --prompt_suffix_prob 0.5` in the autoencoder and conditional-prior stages; then the held-out completion benchmark
# and the unprompted autoencoding CER of each. ~50 min on 2 cores.
#
#   bash benchmarks/prompt_aware.sh [RUN_DIR]    # prints one JSON (also RUN_DIR/prompt_aware.json); per-variant
#                                                # outputs in RUN_DIR/{default,prompt}/{completion,autoencoder}/
set -euo pipefail
RUN="${1:-runs/prompt-aware}"
HERE="$(cd "$(dirname "$0")" && pwd)"
for variant in default prompt; do
  args=""
  [ "$variant" = prompt ] && args="--prompt_prob 0.5 --prompt_suffix_prob 0.5"
  STAGE_ARGS="$args" bash "$HERE/../scripts/continue_tiny_python.sh" "$RUN/$variant"
done
for variant in default prompt; do
  python "$HERE/completion.py" --pipeline "$RUN/$variant/pipeline" --num-programs 64 \
    --output-dir "$RUN/$variant/completion" > /dev/null
  python "$HERE/autoencoder_table.py" --pipeline "$RUN/$variant/pipeline" --block-lengths 64 --steps 16 \
    --num-samples 64 --output-dir "$RUN/$variant/autoencoder" > /dev/null
done
# One JSON: both variants' completion rows (steps 4 and 16) and unprompted autoencoding CER, side by side.
python - "$RUN" <<'PY'
import json, sys
from pathlib import Path

run = Path(sys.argv[1])
out = {"command": "bash benchmarks/prompt_aware.sh", "variants": {}}
for variant in ("default", "prompt"):
    completion = json.loads((run / variant / "completion" / "completion.json").read_text())
    autoencoder = json.loads((run / variant / "autoencoder" / "autoencoder_table.json").read_text())
    out["variants"][variant] = {
        "completion": [r for r in completion["rows"] if r["steps"] in (4, 16)],
        "autoencode": [{k: r[k] for k in ("steps", "cer", "gen_ppl")} for r in autoencoder["rows"]],
    }
(run / "prompt_aware.json").write_text(json.dumps(out, indent=1))
print(json.dumps(out))
PY
