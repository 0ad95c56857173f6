"""Recipe study: autoencoder CER at L/4 against training CPU-minutes, for several stage-1 recipes.

Each variant runs `crocodil train autoencoder --config tiny-python/autoencoder` with its own overrides, continued from
a trained pipeline (`--init-from`, default the shipped `crocodil-python-tiny`; fresh optimizer and warm-up, as
`scripts/continue_tiny_python.sh` does), so the study measures what one more session of cumulative training buys.
Every `--eval-every` steps the checkpoint's encoder and demasker replace the pipeline's, and `mode="autoencode"`
reconstructs `--num-samples` validation programs (CPython standard library, split by file hash) with
`steps = gen_length / 4`; the score is the micro-averaged CER. The x axis is the CPU time (user + system) of the
training process when the checkpoint appeared, read from the process while it runs: a busy machine slows a variant
down but does not make it look more expensive. Step 0 is the starting pipeline itself.

Usage:
    python benchmarks/recipe_study.py [--variants base,lr-1e-3,all-mask-0.5,clean-warmup] [--max-steps 300]
                                      [--eval-every 150] [--output-dir runs/bench/recipe]
(`batch-64` is defined too but was not measured: it costs twice as much per step.)
Prints one JSON object; writes `recipe_study.json` and `recipe_study_cer.png` under `--output-dir`. Training runs
live in `<output-dir>/<variant>/`; rerunning skips finished variants (their CPU log is kept in `cpu_log.json`).
"""

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import psutil
import torch
from common import load_pipeline, plot_curves, write_result
from safetensors.torch import load_file

from crocodil_hf.evaluation.metrics import cer
from crocodil_hf.evaluation.sweep import reference_programs

# The continuation recipe of scripts/continue_tiny_python.sh; every variant starts from it.
BASE = ["--learning_rate", "3e-4", "--warmup_steps", "50", "--clean_warmup_steps", "0"]
VARIANTS = {
    "base": [],
    "lr-1e-3": ["--learning_rate", "1e-3"],
    "all-mask-0.5": ["--all_mask_prob", "0.5"],  # twice the share of all-mask rows (config: 0.25)
    "batch-64": ["--per_device_train_batch_size", "64"],  # twice the batch (config: 32), same learning rate
    "clean-warmup": ["--clean_warmup_steps", "100"],  # the dense clean signal first (all-mask, no noise, every k)
}


def checkpoint_steps(run_dir: Path) -> list[int]:
    """Steps of the finished checkpoints (the trainer writes `trainer_state.json` last)."""
    return sorted(
        int(p.name.split("-")[1]) for p in run_dir.glob("checkpoint-*") if (p / "trainer_state.json").exists()
    )


def train_variant(name: str, overrides: list[str], args, run_dir: Path) -> dict[int, float]:
    """Train one variant (unless finished); returns {checkpoint step: CPU-minutes when it appeared}."""
    log_path = run_dir / "cpu_log.json"
    if (run_dir / "training_complete.json").exists() and log_path.exists():
        return {int(k): v for k, v in json.loads(log_path.read_text()).items()}
    command = [
        "crocodil", "train", "autoencoder", "--config", "tiny-python/autoencoder", "--init_from", args.init_from,
        "--output_dir", str(run_dir), "--overwrite_output_dir", "true", "--max_steps", str(args.max_steps),
        "--save_steps", str(args.eval_every), "--save_total_limit", "1000", "--save_only_model", "true",
        "--disable_tqdm", "true", *BASE, *overrides,
    ]  # fmt: skip
    cpu_log: dict[int, float] = {}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(run_dir.parent / f"{name}.log", "w") as log:
        proc = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        handle = psutil.Process(proc.pid)
        while proc.poll() is None:
            try:
                times = handle.cpu_times()
                minutes = (times.user + times.system + times.children_user + times.children_system) / 60
            except psutil.NoSuchProcess:
                break
            for step in checkpoint_steps(run_dir):
                cpu_log.setdefault(step, round(minutes, 2))
            time.sleep(2)
    if proc.returncode != 0:
        sys.exit(f"variant {name} failed (exit {proc.returncode}); see {run_dir.parent / (name + '.log')}")
    # a checkpoint written in the last poll interval (the final one) gets the finished process's whole CPU time
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    total = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / 60
    for step in checkpoint_steps(run_dir):
        cpu_log.setdefault(step, round(total, 2))
    log_path.write_text(json.dumps(cpu_log))
    return cpu_log


@torch.no_grad()
def checkpoint_cer(pipe, state: dict | None, texts: list[str], steps: int, batch_size: int) -> float:
    """CER of `pipe` with the checkpoint's encoder and demasker (None: the pipeline as loaded)."""
    if state is not None:
        for part in ("encoder", "demasker"):
            weights = {k[len(part) + 1 :]: v for k, v in state.items() if k.startswith(part + ".")}
            getattr(pipe, part).load_state_dict(weights, strict=True)
    hypotheses = []
    for start in range(0, len(texts), batch_size):
        batch = texts[start : start + batch_size]
        generators = [torch.Generator().manual_seed(start + i) for i in range(len(batch))]
        hypotheses += pipe(mode="autoencode", text=batch, steps=steps, generator=generators).texts
    return cer(texts, hypotheses)["cer"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--init-from", default="crocodil-python-tiny")
    parser.add_argument(
        "--variants", default="base,lr-1e-3,all-mask-0.5,clean-warmup", help=f"any of {', '.join(VARIANTS)}"
    )
    parser.add_argument("--max-steps", type=int, default=300)
    parser.add_argument("--eval-every", type=int, default=150)
    parser.add_argument("--gen-length", type=int, default=64)
    parser.add_argument("--num-samples", type=int, default=128)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--output-dir", default="runs/bench/recipe")
    args = parser.parse_args()
    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown:
        parser.error(f"unknown variants {unknown}; choose from {', '.join(VARIANTS)}")
    if args.max_steps < args.eval_every or args.eval_every < 1:
        parser.error("--eval-every must be between 1 and --max-steps")
    output_dir = Path(args.output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    steps = args.gen_length // 4

    pipe = load_pipeline(args.init_from)
    texts = reference_programs(pipe, args.num_samples, args.gen_length)["texts"]
    start_cer = checkpoint_cer(pipe, None, texts, steps, args.batch_size)
    print(f"start: CER {start_cer:.4f}", flush=True)
    rows = []
    for name in names:
        run_dir = output_dir / name
        cpu_log = train_variant(name, VARIANTS[name], args, run_dir)
        rows.append({"variant": name, "step": 0, "cpu_minutes": 0.0, "cer": round(start_cer, 4)})
        for step in checkpoint_steps(run_dir):
            state = load_file(str(run_dir / f"checkpoint-{step}" / "model.safetensors"))
            value = checkpoint_cer(pipe, state, texts, steps, args.batch_size)
            rows.append({"variant": name, "step": step, "cpu_minutes": cpu_log.get(step), "cer": round(value, 4)})
            print(json.dumps(rows[-1]), flush=True)
    plot_curves(rows, "cer", "variant", output_dir / "recipe_study_cer.png",
                "Stage-1 recipes continued from the shipped model: CER at L/4", log_x=False, x="cpu_minutes",
                x_label="training CPU-minutes (user + system)")  # fmt: skip
    final = {n: min((r for r in rows if r["variant"] == n), key=lambda r: -r["step"]) for n in names}
    write_result(
        {
            "benchmark": "recipe_study",
            "init_from": args.init_from,
            "setting": {
                "base_overrides": " ".join(BASE),
                "variants": {n: " ".join(VARIANTS[n]) for n in names},
                "max_steps": args.max_steps,
                "eval_every": args.eval_every,
                "num_samples": args.num_samples,
                "steps": steps,
                "gen_length": args.gen_length,
            },
            "rows": rows,
            "cer_per_cpu_minute": {
                n: round((start_cer - r["cer"]) / r["cpu_minutes"], 5) if r["cpu_minutes"] else None
                for n, r in final.items()
            },
        },
        output_dir,
        "recipe_study.json",
    )


if __name__ == "__main__":
    main()
