"""Generation curves (paper Fig. 6 / 12 shape): MAUVE, Gen-PPL and entropy against NFE for plain MDM, ConThenDisc and
ConWithinDisc, and the speed-up of CRoCoDiL at matched quality as a ratio of NFE and of wall time.

Variants (all with the same held-out references, seeds, scorer and sequence length):

* `con_then_disc`, `con_within_disc`: the pipeline as shipped (greedy low-confidence steps, the pipeline's own prior
  sampler and step count unless `--prior-steps` is given; NFE and wall time include the prior and encoder calls).
  `--crocodil-samplers` adds rows of both modes at other REMASKING:TEMPERATURE settings, labelled
  `con_within_disc low_confidence:0.5` etc. (greedy decoding lowers the unigram entropy the fair check bounds).
* `mdm/guided-demasker`: the pipeline's own demasker with no registers.
* `mdm/baseline` (fairness): the pipeline's `mdm_demasker` component, when it has one: the plain-MDM baseline shipped
  with it, trained as many steps as the guided demasker (what `mode="mdm"` runs).
* `mdm/stage0`: the stage-0 MDM demasker the guided one started from (`--stage0`).
* `mdm/long` (fairness): an MDM demasker trained for as many steps as the guided one (`--mdm-long`: stage 0 + as many
  MDM steps as the autoencoder stage ran).
Plain MDM runs with each of `--mdm-samplers` (default: `random` remasking at temperature 1, i.e. ancestral sampling,
and LLaDA's `low_confidence` remasking at temperature 1; the guided demasker's row uses the first only). Greedy
unconditional MDM is deterministic, every seed gives the same program, so it is not a baseline.

Speed-up at matched quality: the baseline is the best plain-MDM point at the largest step count (steps = L); for
each CRoCoDiL mode, the cheapest point whose MAUVE reaches the baseline's (and separately whose Gen-PPL is at most the
baseline's) gives speed-up = baseline NFE / its NFE (and baseline wall / its wall). `null` = never matched here.

Fair-baseline check (`fair_baseline_check` in the JSON, when there is an MDM baseline): does ConWithinDisc at some
step count <= L/4 match or beat the best fair MDM at steps = L on MAUVE and on Gen-PPL, with unigram entropy within
10 % of the reference programs'? (The fair MDM is `mdm/baseline`, else `mdm/long`.)

Usage:
    python benchmarks/generation_curves.py [--pipeline crocodil-python-tiny] [--stage0 runs/tiny-python/mdm]
        [--mdm-long runs/bench/mdm-long] [--steps 4,8,16,64] [--num-samples 64] [--output-dir runs/bench/generation]
        [--mdm-samplers random:1.0,low_confidence:1.0] [--crocodil-samplers low_confidence:0.0,low_confidence:0.5]
Prints one JSON object; writes `generation_curves.json`, `mauve_vs_nfe.png` and `gen_ppl_vs_nfe.png`.
"""

import argparse
from pathlib import Path

from common import (
    load_pipeline,
    load_scorer_and_references,
    plot_curves,
    summary_row,
    with_components,
    write_result,
)

from crocodil_hf.evaluation.metrics import gen_ppl
from crocodil_hf.evaluation.sweep import check_sweep, run_sweep
from crocodil_hf.pipelines.assembly import mdm_baseline_demasker
from crocodil_hf.schedulers import REMASKING

GREEDY = ("low_confidence", 0.0)  # how the pipeline decodes by default


def parse_samplers(parser, flag: str, value: str) -> list[tuple[str, float]]:
    """`REMASKING:TEMPERATURE,...` as (remasking, temperature) pairs; a bad entry is a usage error."""
    samplers = []
    for item in value.split(","):
        remasking, _, temp = item.partition(":")
        try:
            temperature = float(temp)
        except ValueError:
            temperature = -1.0
        if remasking not in REMASKING or temperature < 0:
            parser.error(f"bad {flag} entry {item!r}; expected REMASKING:TEMPERATURE, e.g. random:1.0")
        samplers.append((remasking, temperature))
    return samplers


def sampler_label(mode: str, remasking: str, temperature: float) -> str:
    """A CRoCoDiL row's variant: the mode alone for the pipeline's greedy decoding, else with the sampler."""
    return mode if (remasking, temperature) == GREEDY else f"{mode} {remasking}:{temperature:g}"


def matched_speedup(rows: list[dict], baseline: dict, metric: str, better) -> dict | None:
    """Cheapest row reaching the baseline's `metric`; NFE and wall-time ratios against the baseline."""
    reached = [r for r in rows if r.get(metric) is not None and better(r[metric], baseline[metric])]
    if not reached:
        return None
    best = min(reached, key=lambda r: r["nfe_total"])
    return {
        "steps": best["steps"],
        metric: best[metric],
        "nfe_total": best["nfe_total"],
        "speedup_nfe": round(baseline["nfe_total"] / best["nfe_total"], 2),
        "speedup_wall": round(baseline["wall_s"] / best["wall_s"], 2),
    }


def fair_baseline_check(rows: list[dict], fair: str, top: int, gen_length: int, data_entropy: float) -> dict:
    """ConWithinDisc at steps <= L/4 against the best fair-MDM point at steps = L (the issue's quality target): each
    such ConWithinDisc point with whether its MAUVE is >= the baseline's, its Gen-PPL <= the baseline's and its
    entropy within 10 % of the data's; `met` when one point passes all three."""
    baselines = [r for r in rows if r["variant"].startswith(fair + " ") and r["steps"] == top]
    baseline = max(baselines, key=lambda r: r["mauve"])
    points = []
    for row in (r for r in rows if r["mode"] == "con_within_disc" and r["steps"] <= gen_length // 4):
        passes = {
            "mauve": row["mauve"] >= baseline["mauve"],
            "gen_ppl": row["gen_ppl"] <= baseline["gen_ppl"],
            "entropy": abs(row["entropy"] - data_entropy) <= 0.1 * data_entropy,
        }
        keys = ("variant", "steps", "nfe_total", "mauve", "gen_ppl", "entropy")
        points.append({k: row[k] for k in keys} | {"passes": passes})
    return {
        "baseline": {k: baseline[k] for k in ("variant", "steps", "nfe_total", "mauve", "gen_ppl", "entropy")},
        "data_entropy": round(data_entropy, 3),
        "con_within_disc": points,
        "met": any(all(p["passes"].values()) for p in points),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="crocodil-python-tiny")
    parser.add_argument("--stage0", default="runs/tiny-python/mdm", help="stage-0 LLaDA MDM directory ('' to skip)")
    parser.add_argument("--mdm-long", default="runs/bench/mdm-long", help="long-trained MDM directory ('' to skip)")
    parser.add_argument(
        "--mdm-samplers", default="random:1.0,low_confidence:1.0", help="comma list of REMASKING:TEMPERATURE for MDM"
    )
    parser.add_argument(
        "--crocodil-samplers",
        default="low_confidence:0.0",
        help="comma list of REMASKING:TEMPERATURE for ConThenDisc / ConWithinDisc (default: greedy, as shipped)",
    )
    parser.add_argument("--steps", default="4,8,16,64")
    parser.add_argument("--gen-length", type=int, default=64)
    parser.add_argument("--num-samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--prior-steps", type=int, default=None, help="default: the pipeline's default_prior_steps")
    parser.add_argument("--scorer", default=None)
    parser.add_argument("--output-dir", default="runs/bench/generation")
    args = parser.parse_args()
    steps = [int(s) for s in args.steps.split(",")]
    samplers = parse_samplers(parser, "--mdm-samplers", args.mdm_samplers)
    crocodil_samplers = parse_samplers(parser, "--crocodil-samplers", args.crocodil_samplers)
    for path in (args.stage0, args.mdm_long):
        if path and not (Path(path) / "config.json").exists():
            parser.error(f"{path} is not a saved LLaDA model (no config.json); pass '' to skip it")

    pipe = load_pipeline(args.pipeline)
    check_sweep(
        pipe,
        ["con_then_disc", "con_within_disc", "mdm"],
        steps,
        [args.gen_length],
        gen_length=args.gen_length,
        num_samples=args.num_samples,
        references=None,
    )
    scorer, references = load_scorer_and_references(pipe, args.num_samples, args.gen_length, args.scorer)
    common = dict(
        gen_length=args.gen_length,
        num_samples=args.num_samples,
        batch_size=args.batch_size,
        prior_steps=args.prior_steps,
        references=references,
    )

    variants = [
        (sampler_label(mode, remasking, temperature), pipe, mode, {"remasking": remasking}, temperature)
        for remasking, temperature in crocodil_samplers
        for mode in ("con_then_disc", "con_within_disc")
    ]
    remasking, temperature = samplers[0]
    guided = {"remasking": remasking, **({"use_mdm_demasker": False} if pipe.mdm_demasker is not None else {})}
    variants.append(("mdm/guided-demasker " + remasking, pipe, "mdm", guided, temperature))
    plain_pipes = [("mdm/baseline", pipe)] if pipe.mdm_demasker is not None else []
    for name, path in (("mdm/stage0", args.stage0), ("mdm/long", args.mdm_long)):
        if path:
            plain_pipes.append((name, with_components(pipe, mdm_demasker=mdm_baseline_demasker(path, pipe.demasker))))
    for name, plain in plain_pipes:
        for remasking, temperature in samplers:
            variants.append((f"{name} {remasking}", plain, "mdm", {"remasking": remasking}, temperature))

    rows = []
    for label, variant_pipe, mode, kwargs, temp in variants:
        sweep = run_sweep(
            variant_pipe, scorer, modes=[mode], steps=steps, temperature=temp, call_kwargs=kwargs, **common
        )
        rows += [
            {**summary_row(p, variant=label, temperature=temp, **kwargs), "samples": p["samples"][:2]}
            for p in sweep["points"]
        ]

    top = max(steps)
    baselines = [r for r in rows if r["mode"] == "mdm" and r["steps"] == top]
    baseline = max(baselines, key=lambda r: r["mauve"])
    speedups = {}
    for variant in dict.fromkeys(r["variant"] for r in rows if r["mode"] != "mdm"):
        mine = [r for r in rows if r["variant"] == variant]
        speedups[variant] = {
            "at_matched_mauve": matched_speedup(mine, baseline, "mauve", lambda a, b: a >= b),
            "at_matched_gen_ppl": matched_speedup(mine, baseline, "gen_ppl", lambda a, b: a <= b),
        }
    data = gen_ppl(scorer, references["texts"])
    fair = next((name for name, _ in plain_pipes if name in ("mdm/baseline", "mdm/long")), None)
    check = fair_baseline_check(rows, fair, top, args.gen_length, data["entropy"]) if fair else None
    out = Path(args.output_dir)
    out.mkdir(parents=True, exist_ok=True)
    plot_curves(rows, "mauve", "variant", out / "mauve_vs_nfe.png", f"MAUVE vs NFE, L={args.gen_length}")
    plot_curves(rows, "gen_ppl", "variant", out / "gen_ppl_vs_nfe.png", f"Gen-PPL vs NFE, L={args.gen_length}")
    write_result(
        {
            "benchmark": "generation_curves",
            "pipeline": args.pipeline,
            "scorer": scorer.name,
            "references": references["description"],
            "mdm_samplers": [{"remasking": r, "temperature": t} for r, t in samplers],
            "baseline": {k: baseline[k] for k in ("variant", "steps", "nfe_total", "wall_s", "mauve", "gen_ppl")},
            "speedup": speedups,
            "references_gen_ppl": round(data["gen_ppl"], 2),
            "references_entropy": round(data["entropy"], 3),
            "fair_baseline_check": check,
            "rows": rows,
        },
        out,
        "generation_curves.json",
    )


if __name__ == "__main__":
    main()
