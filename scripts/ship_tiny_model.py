"""Install a trained tiny pipeline as the shipped `crocodil-python-tiny`, with a model card built from its sweep.

Usage:
    python scripts/ship_tiny_model.py --pipeline runs/tiny-python/pipeline --sweep runs/eval/sweep.json

Copies the pipeline into `src/crocodil_hf/pretrained/crocodil-python-tiny/` (weights as safetensors, configs,
tokenizer; no remote code: `crocodil push` writes it from the package source), writes its README.md model card and a
copy in `model_cards/crocodil-python-tiny.md`.
"""

import argparse
import json
import shutil
from pathlib import Path

from crocodil_hf.evaluation.model_card import build_model_card

ROOT = Path(__file__).resolve().parents[1]
TARGET = ROOT / "src" / "crocodil_hf" / "pretrained" / "crocodil-python-tiny"


def count_parameters(folder: Path) -> dict[str, int]:
    from safetensors.torch import load_file

    return {w.parent.name: sum(t.numel() for t in load_file(str(w)).values())
            for w in sorted(folder.glob("*/*.safetensors"))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="runs/tiny-python/pipeline")
    parser.add_argument("--sweep", nargs="+", default=["runs/eval/sweep.json"],
                        help="one or more sweep JSONs of the same pipeline and settings (points are merged)")
    parser.add_argument("--runs", default="runs/tiny-python", help="stage outputs (for the training record)")
    parser.add_argument("--training-minutes", default=None, help="wall time of the training run, for the card")
    args = parser.parse_args()

    pipeline, runs = Path(args.pipeline), Path(args.runs)
    sweeps = [json.loads(Path(p).read_text()) for p in args.sweep]
    sweep = sweeps[0]
    for other in sweeps[1:]:
        if other["scorer"] != sweep["scorer"] or other["config"]["gen_length"] != sweep["config"]["gen_length"]:
            raise ValueError("sweeps to merge must share scorer and gen_length")
        sweep["points"] += other["points"]
        sweep["config"]["modes"] += [m for m in other["config"]["modes"] if m not in sweep["config"]["modes"]]
        sweep["command"] = sweep.get("command", "") + " ; " + other.get("command", "")
    order = {"mdm": 0, "con_then_disc": 1, "con_within_disc": 2, "autoencode": 3}
    sweep["points"].sort(key=lambda p: (order.get(p["mode"], 9), p["block_length"], p["steps"]))
    (Path(args.sweep[0]).parent / "sweep_merged.json").write_text(json.dumps(sweep, indent=2))
    stages = {}
    for stage in ("mdm", "autoencoder", "registers", "prior", "conditional-prior"):
        record = runs / stage / "training_complete.json"
        if record.exists():
            stages[stage] = json.loads(record.read_text())
    if TARGET.exists():
        shutil.rmtree(TARGET)
    shutil.copytree(pipeline, TARGET, ignore=shutil.ignore_patterns("*.bin", "*.pt", "*.py", "checkpoint-*", ".*"))
    params = count_parameters(TARGET)

    lines = []
    for stage, record in stages.items():
        metrics = record.get("metrics", {})
        runtime = metrics.get("train_runtime")
        lines.append(f"- `{stage}`: " + (f"{runtime / 60:.1f} min, " if runtime else "")
                     + (f"final train loss {metrics['train_loss']:.3f}" if "train_loss" in metrics else
                        json.dumps(metrics)))
    corpus = stages.get("mdm", {}).get("corpus", "the CPython standard library")
    training = (
        "Trained on CPU (2 cores) with the project's own recipe, `bash scripts/train_tiny_python.sh` "
        f"(configs `tiny-python/<stage>`), on the CPython standard library's `.py` files, tests excluded, split into "
        f"train/validation by file-path hash. Corpus: {corpus}.\n\n" + "\n".join(lines)
    )
    if args.training_minutes:
        training += f"\n\nTotal wall time of the run: {args.training_minutes} min."
    model = (
        "Parameters per component: " + ", ".join(f"{k} {v / 1e6:.2f} M" for k, v in params.items()) + ". "
        "Demasker: LLaDA architecture (bidirectional, RMSNorm, RoPE, SwiGLU), from scratch, with a register "
        "prefix; encoder: a 2-layer LLaDA-architecture backbone sharing the demasker's byte-level BPE tokenizer, "
        "K = 16 registers; priors: 1-D DiTs with block-wise timestep offsets. Programs of up to 63 tokens "
        "(gen_length 64 = program + EOS padding)."
    )
    limitations = (
        "A demonstration-scale model trained for about an hour on a laptop-class CPU: it shows the mechanics and the "
        "direction of the paper's effects, not its quality. Samples are often syntactically broken Python."
    )
    card = build_model_card(sweep, model_name="crocodil-python-tiny", repo_id="crocodil-python-tiny",
                            model_description=model, training_description=training, limitations=limitations)
    card.save(TARGET / "README.md")
    (ROOT / "model_cards").mkdir(exist_ok=True)
    card.save(ROOT / "model_cards" / "crocodil-python-tiny.md")
    size = sum(f.stat().st_size for f in TARGET.rglob("*") if f.is_file())
    print(json.dumps({"shipped": str(TARGET), "size_mb": round(size / 2**20, 1), "parameters": params}, indent=2))


if __name__ == "__main__":
    main()
