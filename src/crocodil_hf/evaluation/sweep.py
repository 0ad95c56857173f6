"""NFE sweeps (`crocodil eval`): quality against demasker calls for each mode, as in the paper's Fig. 6 and Table 1.

Generation modes are scored with Gen-PPL (+ entropy) and MAUVE against held-out programs; `autoencode` reconstructs
held-out programs and is scored with CER (+ Gen-PPL). One JSON holds the full configuration, every point's metrics,
NFE breakdown and wall time; matplotlib PNGs plot MAUVE / Gen-PPL against NFE per mode and CER against NFE per block
length.
"""

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from tqdm.auto import tqdm

from ..pipelines import MODES
from ..utils.shards import from_main_process, is_main_process, map_sharded
from .metrics import METRICS, MetricContext, compute_metrics

REFERENCE_SPLITS = ("validation", "all")


def reference_programs(
    pipe, num_samples: int, gen_length: int, corpus: str | None = None, seed: int = 0, split: str = "validation"
) -> dict:
    """Reference programs that fit `gen_length` tokens with their EOS: the validation split of `corpus` (files held
    out by path hash, the programs a pipeline trained on that corpus never saw), or with `split="all"` every program
    of it (a corpus the pipeline was not trained on)."""
    from ..data.corpus import CorpusConfig, build_program_dataset

    if split not in REFERENCE_SPLITS:
        raise ValueError(f"`split` must be one of {REFERENCE_SPLITS}, got {split!r}.")
    dataset, _ = build_program_dataset(pipe.tokenizer, CorpusConfig(source=corpus, max_length=gen_length + 1))
    parts = ["validation"] if split == "validation" else ["validation", "train"]
    texts = [t for part in parts for t in dataset[part].shuffle(seed=seed)["text"] if t.strip()][:num_samples]
    source = corpus or "the CPython standard library"
    if len(texts) < num_samples:
        if split == "validation":
            raise ValueError(
                f"only {len(texts)} programs of <= {gen_length} tokens in the validation split of {source} (files "
                f"held out by path hash), {num_samples} requested; when the pipeline never trained on this corpus, "
                "pass --corpus-split all (`split='all'`) to use all of its programs, or ask for fewer samples."
            )
        raise ValueError(
            f"only {len(texts)} programs of <= {gen_length} tokens in {source}, {num_samples} requested; ask for "
            "fewer samples or give a larger corpus."
        )
    kind = "validation programs" if split == "validation" else "programs"
    return {"texts": texts, "description": f"{len(texts)} {kind} of {source} (<= {gen_length} tokens)"}


def check_sweep(
    pipe,
    modes: Sequence[str],
    steps: Sequence[int],
    block_lengths: Sequence[int],
    *,
    gen_length: int,
    num_samples: int,
    references: Sequence[str] | None,
    call_kwargs: dict | None = None,
) -> None:
    """Validate the whole grid before any compute: every point as its pipeline call would check it
    (`CrocodilPipeline.validate`; a `from_configs` pipeline suffices, no weights needed)."""
    unknown = [m for m in modes if m not in MODES]
    if unknown:
        raise ValueError(f"unknown mode(s) {unknown}; expected some of {tuple(MODES)}.")
    if not modes or not steps or not block_lengths:
        raise ValueError("`modes`, `steps` and `block_lengths` must not be empty.")
    if num_samples < 1:
        raise ValueError(f"`num_samples` must be >= 1, got {num_samples}.")
    for mode in modes:
        text = {"text": list(references or ["pass\n"])[:1]} if MODES[mode].needs_text else {}
        for block in block_lengths:
            for n_steps in steps:
                kwargs = point_kwargs(mode, call_kwargs or {})
                pipe.validate(mode, gen_length=gen_length, block_length=block, steps=n_steps, **text, **kwargs)
    if references is not None and len(references) < num_samples:
        raise ValueError(f"{len(references)} references for {num_samples} samples; need at least as many.")


def point_kwargs(mode: str, call_kwargs: dict) -> dict:
    """A sweep's `call_kwargs` for one mode's calls: `num_registers` is dropped where the mode shows no registers
    (`mdm`), so one sweep can set k for its guided modes."""
    if MODES[mode].makes_registers:
        return dict(call_kwargs)
    return {k: v for k, v in call_kwargs.items() if k != "num_registers"}


def prior_description(pipe, prior_steps: int | None, call_kwargs: dict) -> str:
    """How the sweep's prior-based modes sample z₀, e.g. `"dpmsolver++, 4 steps"`, `"unipc, 8 steps (conditional
    prior: 16)"`, `"distilled prior, ddim, 2 steps"` or `"dpmsolver++, 16 steps, k = 4 of 16 registers"`."""
    from ..schedulers.scheduling_register_prior import solver_name

    solver = call_kwargs.get("prior_scheduler") or solver_name(pipe.scheduler)
    solver = solver if isinstance(solver, str) else solver_name(solver)
    distilled = pipe.distilled_prior is not None and call_kwargs.get("use_distilled_prior") is not False
    if distilled:
        steps = prior_steps or pipe.distilled_prior.config.distilled_steps
        return f"distilled prior, {solver}, {steps} steps" + registers_description(pipe, call_kwargs)
    steps = prior_steps or pipe.config.default_prior_steps
    conditional = call_kwargs.get("conditional_prior_steps") or (prior_steps or pipe.conditional_prior_default_steps)
    description = f"{solver}, {steps} steps"
    if pipe.conditional_prior is not None and conditional != steps:
        description += f" (conditional prior: {conditional})"
    return description + registers_description(pipe, call_kwargs)


def registers_description(pipe, call_kwargs: dict) -> str:
    """`", k = 4 of 16 registers"` when the prior-based modes show the demasker fewer than K registers, else `""`."""
    k = call_kwargs.get("num_registers") or getattr(pipe, "sampled_num_registers_default", None)
    total = getattr(pipe, "num_registers_max", None)
    return f", k = {k} of {total} registers" if k and total and k < total else ""


def sample_in_batches(pipe, mode: str, ref_texts, num_samples: int, batch_size: int, *, seed: int, kwargs: dict):
    """`num_samples` samples of `pipe(mode, **kwargs)` in batches (sample i seeded `seed + i`; a sweep point, or
    `crocodil generate`): texts, the largest NFE of a batch and the summed wall time of the batches. A mode that reads text reconstructs the reference programs. Under
    `accelerate launch` / `torchrun` the batches are shared among the processes and gathered in order
    (`utils.shards.map_sharded`): the same batches, the same texts, whatever the number of processes."""

    def batch(start: int):
        count = min(batch_size, num_samples - start)
        generators = [torch.Generator().manual_seed(seed + start + i) for i in range(count)]
        if MODES[mode].needs_text:  # e.g. reconstruct the held-out programs
            out = pipe(mode=mode, text=ref_texts[start : start + count], num_samples=count, generator=generators,
                       **kwargs)  # fmt: skip
        else:
            out = pipe(mode=mode, num_samples=count, generator=generators, **kwargs)
        return out.texts, out.nfe, out.wall_time

    texts, nfe, wall = [], None, 0.0
    for batch_texts, batch_nfe, batch_wall in map_sharded(batch, range(0, num_samples, batch_size)):
        texts.extend(batch_texts)
        wall += batch_wall
        nfe = batch_nfe if nfe is None else {k: max(nfe[k], batch_nfe[k]) for k in nfe}
    return texts, nfe, wall


def run_sweep(
    pipe,
    scorer,
    *,
    modes: Sequence[str] = ("mdm", "con_then_disc", "con_within_disc"),
    steps: Sequence[int] = (8, 16, 32, 64),
    block_lengths: Sequence[int] | None = None,
    gen_length: int = 64,
    num_samples: int = 16,
    batch_size: int = 8,
    prior_steps: int | None = None,
    references: dict | None = None,
    seed: int = 0,
    temperature: float = 0.0,
    compute_mauve: bool = True,
    call_kwargs: dict | None = None,
    resume: dict | None = None,
    on_point: Callable[[dict], None] | None = None,
) -> dict:
    """Measure every (mode, block length, steps) point; returns the sweep as a JSON-ready dict.

    `call_kwargs` go to every pipeline call unchanged (`num_registers` only to the modes with registers) (e.g.
    `{"remasking": "random"}`, `{"num_registers": 4}`, `{"refresh_at": [0.25]}`, `{"prior_scheduler":
    "dpmsolver++"}`, `{"kv_cache": "dual"}`) and are recorded in the sweep's configuration. `prior_steps=None` samples
    z₀ with the pipeline's own default (recorded as `prior` in the configuration).

    Long sweeps: `resume` is a sweep an earlier run wrote (e.g. killed midway): its points whose settings equal this
    run's are kept, not measured again; `on_point(sweep)` is called with the sweep so far after every point (to save
    it). Under `accelerate launch` / `torchrun` every process samples its share of each point's batches; the main
    process alone needs the `scorer` (others may pass `None`) and alone gets metrics (other processes' points have
    `metrics=None`).
    """
    call_kwargs = dict(call_kwargs or {})
    reserved = {"mode", "text", "num_samples", "gen_length", "block_length", "steps", "temperature", "generator"}
    if reserved & set(call_kwargs):
        raise ValueError(f"`call_kwargs` must not set {sorted(reserved & set(call_kwargs))}; use the sweep arguments.")
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"`batch_size` must be an integer >= 1, got {batch_size!r}.")
    block_lengths = list(block_lengths or [gen_length])
    ref_texts = references["texts"] if references else None
    check_sweep(
        pipe, modes, steps, block_lengths, gen_length=gen_length, num_samples=num_samples, references=ref_texts,
        call_kwargs={"temperature": temperature, "prior_steps": prior_steps, **call_kwargs},
    )  # fmt: skip
    if ref_texts is None:
        raise ValueError("`references` are required (see `reference_programs`).")
    ref_texts = ref_texts[:num_samples]
    config = {
        "modes": list(modes), "steps": list(steps), "block_lengths": block_lengths, "gen_length": gen_length,
        "num_samples": num_samples, "batch_size": batch_size, "prior_steps": prior_steps,
        "prior": prior_description(pipe, prior_steps, call_kwargs), "seed": seed, "temperature": temperature,
        "call_kwargs": call_kwargs,
    }  # fmt: skip
    sweep = {
        "config": config,
        "scorer": scorer.name if scorer is not None else None,
        "references": {"description": references.get("description"), "n": len(ref_texts)},
        "points": [],
    }
    kept = resumable_points(resume, sweep) if is_main_process() else {}  # the main process has the scorer
    kept_keys = from_main_process(sorted(kept))  # every process skips the same points
    grid = [(m, b, s) for m in modes for b in block_lengths for s in steps]
    for mode, block, n_steps in tqdm(grid, desc="sweep", disable=not is_main_process()):
        if (mode, block, n_steps) in kept_keys:
            sweep["points"].append(kept.get((mode, block, n_steps)))
            continue
        kwargs = dict(gen_length=gen_length, block_length=block, steps=n_steps, temperature=temperature)
        kwargs.update(point_kwargs(mode, call_kwargs))
        if not MODES[mode].needs_text:
            kwargs.setdefault("prior_steps", prior_steps)
        texts, nfe, wall = sample_in_batches(pipe, mode, ref_texts, num_samples, batch_size, seed=seed, kwargs=kwargs)
        metrics = None
        if is_main_process():
            metrics = compute_metrics(MetricContext(scorer, texts, ref_texts, mode, compute_mauve))
        point = {"mode": mode, "block_length": block, "steps": n_steps, "nfe": nfe, "metrics": metrics}
        sweep["points"].append({**point, "wall_time": wall, "samples": texts[:3]})
        if on_point is not None:
            on_point(sweep)
    sweep["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return sweep


def resumable_points(previous: dict | None, sweep: dict) -> dict:
    """The points of an earlier sweep that this one would measure again, keyed by (mode, block length, steps): kept
    only when everything but the grid (seed, samples, references, scorer, the call's options…) is the same."""
    if not previous:
        return {}
    grid_keys = ("modes", "steps", "block_lengths")
    old = {k: v for k, v in previous.get("config", {}).items() if k not in grid_keys}
    new = {k: v for k, v in sweep["config"].items() if k not in grid_keys}
    same = (
        old == new and previous.get("scorer") == sweep["scorer"] and previous.get("references") == sweep["references"]
    )
    if not same:
        return {}
    return {(p["mode"], p["block_length"], p["steps"]): p for p in previous.get("points", []) if p.get("metrics")}


def plot_sweep(sweep: dict, output_dir: str | Path) -> list[Path]:
    """PNG plots of every registered metric with a `plot_by`: MAUVE and Gen-PPL vs NFE per mode (Fig. 6), CER vs NFE
    per block length (Table 1)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for metric in METRICS.values():
        if metric.plot_by is None:
            continue
        # "mode": generation curves, one line per mode; "block_length": autoencoding, one line per block length
        autoencoding = metric.plot_by == "block_length"
        rows = [
            p
            for p in sweep["points"]
            if (p["mode"] == "autoencode") == autoencoding and p["metrics"].get(metric.name) is not None
        ]
        if not rows:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.5))
        for key in sorted({p[metric.plot_by] for p in rows}):
            pts = sorted((p["nfe"]["total"], p["metrics"][metric.name]) for p in rows if p[metric.plot_by] == key)
            label = key if metric.plot_by == "mode" else f"block {key}"
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=label)
        ax.set_xscale("log")
        ax.set_xlabel("NFE (demasker-forward equivalents)")
        ax.set_ylabel(metric.label)
        title = f"{metric.label} vs NFE (scorer {sweep['scorer']})"
        ax.set_title(title if metric.plot_by == "mode" else f"Autoencoder {metric.label} vs NFE", fontsize=9)
        ax.legend(fontsize=8)
        fig.tight_layout()
        path = output_dir / f"{metric.name}_vs_nfe.png"
        fig.savefig(path, dpi=120)
        plt.close(fig)
        written.append(path)
    return written


def write_sweep(sweep: dict, output_dir: str | Path) -> Path:
    """`output_dir/sweep.json`, written through a temporary file and renamed (a kill leaves the last whole sweep)."""
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    path = output_dir / "sweep.json"
    partial = output_dir / ".sweep.json.partial"
    partial.write_text(json.dumps(sweep, indent=2))
    partial.replace(path)
    return path


def read_sweep(output_dir: str | Path) -> dict | None:
    """The sweep an earlier run wrote in `output_dir` (to resume it), or `None`."""
    path = Path(output_dir) / "sweep.json"
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return None


__all__ = [
    "check_sweep",
    "plot_sweep",
    "read_sweep",
    "reference_programs",
    "run_sweep",
    "sample_in_batches",
    "write_sweep",
]
