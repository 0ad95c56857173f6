"""Few-step register priors: quality and cost of each prior solver and of the distilled students, per prior step count.

For each solver (`ddim`, `dpmsolver++`, `unipc`: the `PRIOR_SOLVERS` of the pipeline, block offsets included) and for
the distilled students (`distilled`: `crocodil train prior-distill` / `conditional-prior-distill`), at each prior step
count:

* register PRDC of banks sampled from the unconditional prior against the encoded validation registers (the
  `registers` stage's validation split), per register and averaged (App. E); when a prefix prior takes part
  (`--prior_num_registers k`), over the first k registers, for the reference too;
* downstream: MAUVE, Gen-PPL and unigram entropy of ConThenDisc and ConWithinDisc samples at fixed demasker steps,
  against held-out programs (the same references, seeds and scorer for every point);
  (at the `--downstream-steps` of the `--downstream-solvers` only: the other points get PRDC and the FLOP share);
* split step counts (`--conditional-prior-steps`): each point again with the conditional prior at other step counts
  than the unconditional one (the paper samples it with fewer, 32 against 128): ConWithinDisc only, since nothing else
  uses the conditional prior (a split point's ConThenDisc row is its unsplit point's, copied);
* cost: the priors' share of a sample's FLOPs (`nfe["prior_total"] / nfe["total"]`, the pipeline's own accounting),
  their share of wall time (forward hooks on the prior modules), and end-to-end seconds per sample (over the scored
  run, and as the best of `--timing-repeats` unscored calls of `--timing-batch` samples, timed last).

Run-to-run noise: the 50-step DDIM reference is repeated with other seeds (`--noise-seeds`); the MAUVE and PRDC spread
of those repeats is the noise the choice of defaults is held to. The recommended default is the cheapest setting
(fewest prior FLOPs) whose PRDC (precision, recall, density, coverage) is each no more than 0.02 below 50-step DDIM's
and whose MAUVE and Gen-PPL, in both modes, are no worse than 50-step DDIM's by more than their measured spread
(`recommend`).

Usage:
    python benchmarks/prior_steps.py --registers-dir runs/tiny-python/registers \
        [--pipeline crocodil-python-tiny] [--distilled-prior DIR --distilled-conditional-prior DIR] \
        [--prior-steps 1,2,4,8,16,50] [--solvers ddim,dpmsolver++,unipc,distilled] [--num-banks 512] \
        [--num-samples 64] [--steps 16] [--noise-seeds 2] [--output-dir runs/bench/prior-steps] [--reference-pipeline DIR]
Prints one JSON object; writes `prior_steps.json`, `prior_steps_prdc.png` and `prior_steps_mauve.png`.
"""

import argparse
import time
from contextlib import contextmanager
from pathlib import Path

import torch
from common import (
    load_pipeline,
    load_scorer_and_references,
    seeded_generators,
    summary_row,
    with_components,
    write_result,
)

from crocodil_hf import RegisterPriorTransformer
from crocodil_hf.evaluation.prior_metrics import register_prdc
from crocodil_hf.evaluation.sweep import run_sweep
from crocodil_hf.schedulers.scheduling_register_prior import make_prior_scheduler, sample_registers, solver_name

PRDC_KEYS = ("precision", "recall", "density", "coverage")
MODES = ("con_then_disc", "con_within_disc")


@contextmanager
def timed_modules(modules):
    """Seconds spent inside the forwards of `modules` while the block runs (`clock["seconds"]`)."""
    clock, starts, handles = {"seconds": 0.0}, {}, []
    for module in modules:
        handles.append(module.register_forward_pre_hook(lambda m, *_: starts.__setitem__(id(m), time.perf_counter())))
        handles.append(
            module.register_forward_hook(
                lambda m, *_: clock.__setitem__("seconds", clock["seconds"] + time.perf_counter() - starts[id(m)])
            )
        )
    try:
        yield clock
    finally:
        for handle in handles:
            handle.remove()


def real_registers(registers_dir: str, count: int) -> torch.Tensor:
    from datasets import load_from_disk

    validation = load_from_disk(registers_dir)["validation"].with_format("torch")
    return validation[: min(count, len(validation))]["registers"].float()


def measure(
    pipe, solver: str, steps: int, real, scorer, references, args, seed: int = 0, downstream=True, name=None, cond=None
) -> list:
    """One row per mode: PRDC of the unconditional prior's banks, FLOP share; with `downstream`, the sample metrics
    and wall-time figures of `args.num_samples` samples per mode (else one sample per mode, for the FLOP share).
    Each point is kept in `<output-dir>/points/` with its settings and reused by a rerun with the same settings (a
    killed run resumes; a rerun with more `--solvers`, or with other students, measures only the new points)."""
    import json

    keys = ["pipeline", "num_banks", "num_samples", "steps", "gen_length"]
    if solver == "distilled":  # a teacher's point does not depend on the students: other students reuse it
        keys += ["distilled_prior", "distilled_conditional_prior"]
    settings = {k: getattr(args, k) for k in keys}
    settings["pipeline"] = name or args.pipeline  # the reference may be another pipeline (`--reference-pipeline`)
    settings["prdc_registers"] = real.shape[1]  # the first k of K when a prefix prior takes part
    split = f"-c{cond}" if cond not in (None, steps) else ""
    key = f"{solver}-{steps}{split}-{seed}-{'full' if downstream else 'prdc'}".replace("+", "p")
    cache = Path(args.output_dir, "points", f"{key}.json")
    if cache.is_file():
        stored = json.loads(cache.read_text())
        if stored["settings"] == settings:
            return stored["rows"]
    rows = _measure(pipe, solver, steps, real, scorer, references, args, seed, downstream, cond)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps({"settings": settings, "rows": rows}, indent=1))
    return rows


def prior_call(pipe, solver: str) -> tuple[dict, str]:
    """The pipeline-call arguments of a benchmarked solver and its row label: a `PRIOR_SOLVERS` name (the teachers),
    or `distilled` (also a row label `distilled (…)`): the students on the pipeline's own scheduler."""
    distilled = solver.startswith("distilled")
    scheduler = pipe.scheduler if distilled else make_prior_scheduler(solver, pipe.scheduler.config)
    label = f"distilled ({solver_name(scheduler)})" if distilled else solver
    return {"prior_scheduler": scheduler, "use_distilled_prior": distilled}, label


def _measure(pipe, solver, steps, real, scorer, references, args, seed, downstream, cond=None) -> list:
    call, label = prior_call(pipe, solver)
    cond = steps if cond is None else cond
    call["conditional_prior_steps"] = cond
    modes = MODES if cond == steps else ("con_within_disc",)
    prior = pipe.distilled_prior if call["use_distilled_prior"] else pipe.prior
    fake = sample_registers(
        prior, call["prior_scheduler"], len(real), num_inference_steps=steps,
        generator=seeded_generators(len(real), 10_000 + seed),
    ).registers  # fmt: skip
    prdc = register_prdc(real, fake[:, : real.shape[1]])
    if not downstream:
        rows = []
        for mode in modes:
            out = pipe(
                mode=mode, num_samples=1, gen_length=args.gen_length, steps=args.steps, prior_steps=steps, **call
            )
            rows.append({"solver": label, "mode": mode, "prior_steps": steps, "conditional_prior_steps": cond,
                         "prior_calls": out.nfe["prior_calls"],
                         "nfe_total": round(out.nfe["total"], 2),
                         "prior_flop_share": round(out.nfe["prior_total"] / out.nfe["total"], 4)})  # fmt: skip
    else:
        priors = (pipe.prior, pipe.conditional_prior, pipe.distilled_prior, pipe.distilled_conditional_prior)
        with timed_modules([m for m in priors if m is not None]) as clock:
            sweep = run_sweep(
                pipe, scorer, modes=list(modes), steps=[args.steps], block_lengths=None, gen_length=args.gen_length, num_samples=args.num_samples, batch_size=args.batch_size,
                prior_steps=steps, references=references, seed=seed, compute_mauve=True, call_kwargs=call,
            )  # fmt: skip
        wall = sum(p["wall_time"] for p in sweep["points"])
        rows = []
        for point in sweep["points"]:
            row = summary_row(point, solver=label)
            row.update(
                prior_steps=steps,
                conditional_prior_steps=cond,
                seed=seed,
                prior_flop_share=round(point["nfe"]["prior_total"] / point["nfe"]["total"], 4),
                seconds_per_sample=round(point["wall_time"] / args.num_samples, 4),
                prior_wall_share=round(clock["seconds"] / wall, 4),  # both modes together
            )
            rows.append(row)
    for row in rows:
        row.update({f"register_{k}": round(prdc[k], 4) for k in PRDC_KEYS})
    return rows


def best_seconds_per_sample(pipe, mode: str, solver: str, steps: int, args, cond: int | None = None) -> float:
    """End-to-end seconds per sample of one `--timing-batch` call, best of `--timing-repeats` (after a warm-up): the
    speed comparison, measured apart from the scoring and as the minimum, since this machine's timings vary."""
    call = dict(mode=mode, num_samples=args.timing_batch, gen_length=args.gen_length, steps=args.steps,
                prior_steps=steps, conditional_prior_steps=cond, **prior_call(pipe, solver)[0])  # fmt: skip
    times = []
    for repeat in range(args.timing_repeats + 1):
        out = pipe(**call, generator=seeded_generators(args.timing_batch, 500 + repeat))
        times.append(out.wall_time)
    return round(min(times[1:]) / args.timing_batch, 4)


def recommend(rows: list[dict], reference: list[dict], noise: dict, gen_ppl_noise: dict | None = None) -> dict | None:
    """The cheapest (solver, steps, conditional steps) whose register PRDC and samples are no worse than 50-step DDIM's:
    each PRDC value at most 0.02 below the reference's; MAUVE, in both modes, at most the measured spread (`noise`)
    below; Gen-PPL, where `gen_ppl_noise` is given, at most its measured spread above.

    One-sided: a prior that covers the registers better (higher recall or coverage) is not refused for it. A collapse
    towards the mean still fails (recall and coverage fall), and so does a spread-out prior (precision and density
    fall). Gen-PPL is held too because MAUVE on 64 samples varies by up to 0.4 between seeds: on run 9's prefix priors
    it let 4 DPM-Solver++ steps through, which 128 samples x 3 seeds then showed to be worse than 16 on Gen-PPL in 5 of
    6 (mode, seed) pairs (docs/results.md "Prefix priors")."""
    ref = {r["mode"]: r for r in reference}
    candidates = {}
    for row in rows:
        key = (row["solver"], row["prior_steps"], row.get("conditional_prior_steps", row["prior_steps"]))
        candidates.setdefault(key, []).append(row)
    passing = []
    for (solver, steps, cond), pair in candidates.items():
        close_prdc = all(ref[MODES[0]][f"register_{k}"] - pair[0][f"register_{k}"] <= 0.02 for k in PRDC_KEYS)
        # one-sided: no worse than the reference by more than the noise
        close_mauve = all("mauve" in r and ref[r["mode"]]["mauve"] - r["mauve"] <= noise[r["mode"]] for r in pair)
        close_ppl = gen_ppl_noise is None or all(
            "gen_ppl" in r and r["gen_ppl"] - ref[r["mode"]]["gen_ppl"] <= gen_ppl_noise[r["mode"]] for r in pair
        )
        if close_prdc and close_mauve and close_ppl:
            passing.append((max(r["prior_flop_share"] for r in pair), solver, steps, cond))
    if not passing:
        return None
    share, solver, steps, cond = min(passing)
    return {"solver": solver, "prior_steps": steps, "conditional_prior_steps": cond, "prior_flop_share": share}


def plot(rows: list[dict], metric: str, path: Path, title: str, mode: str | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    for solver in dict.fromkeys(r["solver"] for r in rows):
        for m in [mode] if mode else MODES:
            pts = sorted(
                (r["prior_steps"], r[metric])
                for r in rows
                if r["solver"] == solver and r["mode"] == m and r.get(metric) is not None
            )
            if pts:
                ax.plot(*zip(*pts), marker="o", label=f"{solver}" + ("" if mode else f" / {m}"))
    ax.set_xscale("log")
    ax.set_xlabel("prior steps")
    ax.set_ylabel(metric)
    ax.set_title(title, fontsize=9)
    ax.legend(fontsize=6)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="crocodil-python-tiny")
    parser.add_argument(
        "--reference-pipeline",
        default=None,
        help="the pipeline whose 50-step DDIM is the reference (default: --pipeline; e.g. the model with its larger "
        "priors, when --pipeline has smaller ones)",
    )
    parser.add_argument("--registers-dir", required=True, help="output of `crocodil train registers` (validation)")
    parser.add_argument("--distilled-prior", help="a `prior-distill` output, if the pipeline has none")
    parser.add_argument("--distilled-conditional-prior", help="a `conditional-prior-distill` output")
    parser.add_argument("--solvers", default="ddim,dpmsolver++,unipc,distilled")
    parser.add_argument("--prior-steps", default="1,2,4,8,16,50")
    parser.add_argument("--distilled-steps", default="1,2,4", help="prior steps of the distilled students")
    parser.add_argument(
        "--downstream-steps", default="1,2,4,8,16,50", help="prior steps that also get the sample metrics (MAUVE, …)"
    )
    parser.add_argument("--downstream-solvers", default=None, help="solvers that get them (default: all)")
    parser.add_argument(
        "--conditional-prior-steps",
        default="",
        help="comma list: each point again with the conditional prior at these steps (default: none, the same steps)",
    )
    parser.add_argument("--num-banks", type=int, default=512)
    parser.add_argument("--num-samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=16, help="demasker steps of every sample")
    parser.add_argument("--gen-length", type=int, default=64)
    parser.add_argument("--noise-seeds", type=int, default=2, help="repeats of the 50-step DDIM point")
    parser.add_argument("--timing-batch", type=int, default=16, help="samples per timed call")
    parser.add_argument("--timing-repeats", type=int, default=3)
    parser.add_argument("--output-dir", default="runs/bench/prior-steps")
    args = parser.parse_args()

    pipe = load_pipeline(args.pipeline)
    if args.distilled_prior:
        students = {"distilled_prior": RegisterPriorTransformer.from_pretrained(args.distilled_prior).eval()}
        if args.distilled_conditional_prior:
            path = args.distilled_conditional_prior
            students["distilled_conditional_prior"] = RegisterPriorTransformer.from_pretrained(path).eval()
        pipe = with_components(pipe, **students)
    solvers = [s for s in args.solvers.split(",") if s and (s != "distilled" or pipe.distilled_prior is not None)]
    real = real_registers(args.registers_dir, args.num_banks)
    scorer, references = load_scorer_and_references(pipe, args.num_samples, args.gen_length)

    ref_name = args.reference_pipeline or args.pipeline
    ref_pipe = load_pipeline(ref_name) if args.reference_pipeline else pipe
    # prefix priors (`--prior_num_registers k`) are compared on the registers they sample, the reference too
    real = real[:, : min(pipe.prior_num_registers, ref_pipe.prior_num_registers)]
    reference = measure(ref_pipe, "ddim", 50, real, scorer, references, args, name=ref_name)
    repeats = [measure(ref_pipe, "ddim", 50, real, scorer, references, args, seed=1000 * (i + 1), name=ref_name)
               for i in range(args.noise_seeds)]  # fmt: skip
    noise, ppl_noise = {}, {}
    for mode in MODES:  # the spread of the repeats
        values = [r["mauve"] for rows in [reference, *repeats] for r in rows if r["mode"] == mode]
        noise[mode] = round(max(values) - min(values), 4)
        values = [r["gen_ppl"] for rows in [reference, *repeats] for r in rows if r["mode"] == mode]
        ppl_noise[mode] = round(max(values) - min(values), 2)
    prdc_noise = {
        k: round(max([abs(rows[0][f"register_{k}"] - reference[0][f"register_{k}"]) for rows in repeats] or [0]), 4)
        for k in PRDC_KEYS
    }
    downstream = {int(s) for s in args.downstream_steps.split(",")}
    downstream_solvers = set(args.downstream_solvers.split(",")) if args.downstream_solvers else set(solvers)
    rows = []
    for solver in solvers:
        grid = args.distilled_steps if solver == "distilled" else args.prior_steps
        for steps in [int(s) for s in grid.split(",")]:
            if (solver, steps) == ("ddim", 50) and ref_pipe is pipe:
                rows += reference
            else:
                full = steps in downstream and solver in downstream_solvers
                rows += measure(pipe, solver, steps, real, scorer, references, args, downstream=full)
            print(rows[-1], flush=True)
            unsplit = [r for r in rows[-2:] if r["mode"] == "con_then_disc"]
            for cond in [int(c) for c in args.conditional_prior_steps.split(",") if c and int(c) != steps]:
                split = measure(pipe, solver, steps, real, scorer, references, args, downstream=full, cond=cond)
                rows += [{**row, "conditional_prior_steps": cond} for row in unsplit] + split
                print(rows[-1], flush=True)
    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    timed = [(pipe, row) for row in rows] + ([(ref_pipe, row) for row in reference] if ref_pipe is not pipe else [])
    for owner, row in timed:  # timed last, together, on an otherwise idle machine
        if "mauve" in row:
            row["best_seconds_per_sample"] = best_seconds_per_sample(owner, row["mode"], row["solver"],
                                                                     row["prior_steps"], args,
                                                                     row.get("conditional_prior_steps"))  # fmt: skip
    plot(rows, "register_precision", output / "prior_steps_prdc.png", "register precision (PRDC) vs prior steps",
         mode=MODES[0])  # fmt: skip
    plot(rows, "mauve", output / "prior_steps_mauve.png", f"MAUVE at {args.steps} demasker steps vs prior steps")
    result = {
        "pipeline": args.pipeline,
        "setting": {k: v for k, v in vars(args).items() if k != "output_dir"},
        "reference": "ddim, 50 steps" + (f" of {ref_name}" if ref_pipe is not pipe else ""),
        "reference_rows": reference,
        "noise": {
            "mauve_range": noise,
            "gen_ppl_range": ppl_noise,
            "prdc_max_abs_diff": prdc_noise,
            "repeats": repeats,
        },
        "recommended": recommend(rows, reference, noise, ppl_noise),
        "rows": rows,
    }
    write_result(result, output, "prior_steps.json")


if __name__ == "__main__":
    main()
