"""Helpers shared by the benchmark scripts (not part of the package; never run by the tests)."""

import json
import sys
import time
from pathlib import Path

import torch

from crocodil_hf import CrocodilPipeline


def load_pipeline(name_or_path: str) -> CrocodilPipeline:
    """Load a pipeline, silence its progress bars and run one small call so no timed point pays the warm-up."""
    pipe = CrocodilPipeline.from_pretrained(name_or_path)
    pipe.set_progress_bar_config(disable=True)
    pipe(mode="mdm", num_samples=2, gen_length=16, steps=2)
    return pipe


def with_components(pipe: CrocodilPipeline, **components) -> CrocodilPipeline:
    """The same pipeline with some components replaced (e.g. another demasker or prior)."""
    keys = ("default_prior_steps", "default_conditional_prior_steps", "default_num_registers")
    steps = {k: getattr(pipe.config, k, None) for k in keys}
    new = CrocodilPipeline(**{**pipe.components, **components}, **steps)
    new.set_progress_bar_config(disable=True)
    return new


def load_scorer_and_references(pipe, num_samples: int, gen_length: int, scorer: str | None = None):
    from crocodil_hf.evaluation.scorer import load_scorer
    from crocodil_hf.evaluation.sweep import reference_programs

    return load_scorer(scorer), reference_programs(pipe, num_samples, gen_length)


def summary_row(point: dict, **extra) -> dict:
    m = point["metrics"]
    row = {
        **extra,
        "mode": point["mode"],
        "block_length": point["block_length"],
        "steps": point["steps"],
        "nfe_total": round(point["nfe"]["total"], 2),
        "demasker_calls": point["nfe"]["demasker_calls"],
        "prior_calls": point["nfe"]["prior_calls"],
        "wall_s": round(point["wall_time"], 2),
        "gen_ppl": round(m["gen_ppl"], 2) if m.get("gen_ppl") is not None else None,
        "entropy": round(m["entropy"], 3) if m.get("entropy") is not None else None,
    }
    for key in ("mauve", "cer"):
        if key in m:
            row[key] = round(m[key], 4)
    return row


def write_result(result: dict, output_dir: str | Path, name: str) -> Path:
    """Print the JSON and write it to `output_dir/name`; the command line is recorded in the result."""
    result = {"command": "python " + " ".join(sys.argv), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ"), **result}
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / name
    text = json.dumps(result, indent=2)
    path.write_text(text + "\n")
    print(text)
    return path


def seeded_generators(count: int, seed: int = 0) -> list[torch.Generator]:
    return [torch.Generator().manual_seed(seed + i) for i in range(count)]


def plot_curves(
    rows: list[dict],
    metric: str,
    label_key: str,
    path: str | Path,
    title: str,
    log_x: bool = True,
    x: str = "nfe_total",
    x_label: str = "NFE (demasker-forward equivalents, prior and encoder included)",
):
    """One line per `row[label_key]`: `metric` against `row[x]` (default: NFE total) (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for label in dict.fromkeys(r[label_key] for r in rows):
        pts = sorted(
            (r[x], r[metric])
            for r in rows
            if r[label_key] == label and r.get(metric) is not None and r.get(x) is not None
        )
        if pts:
            ax.plot([px for px, _ in pts], [py for _, py in pts], marker="o", label=label)
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(x_label)
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=7)
    fig.tight_layout()
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
