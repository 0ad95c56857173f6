"""Prefix priors against the K-register priors they were trained from: register PRDC on the first k registers.

Both pipelines' unconditional priors sample `--num-banks` banks per setting (`SOLVER:STEPS`, each with its own noise
seeds); PRDC (App. E, per register, averaged) is taken against the first k registers of as many encoded validation
programs (the `registers` stage's validation split), k being what the prefix priors sample. The K-register priors'
50-step DDIM is repeated with other seeds (`--noise-seeds`) for the seed-to-seed spread. Sample quality (MAUVE,
Gen-PPL, entropy) and the FLOP share come from `crocodil eval` on the two pipelines (docs/results.md "Prefix priors").

Usage:
    python benchmarks/prefix_priors.py --full runs/cont9/pipe-full-half --prefix runs/cont9/pipe-prefix-half \\
        --registers-dir runs/cont9/registers [--settings ddim:50,dpmsolver++:16] [--num-banks 512] \\
        [--output-dir runs/bench/prefix-priors]
Prints one JSON object; writes `prefix_priors.json`.
"""

import argparse

from common import load_pipeline, seeded_generators, write_result
from prior_steps import PRDC_KEYS, real_registers

from crocodil_hf.evaluation.prior_metrics import register_prdc
from crocodil_hf.schedulers.scheduling_register_prior import make_prior_scheduler, sample_registers


def prdc_row(pipe, label: str, setting: str, real, seed: int) -> dict:
    solver, _, steps = setting.partition(":")
    scheduler = make_prior_scheduler(solver, pipe.scheduler.config)
    steps = int(steps or pipe.config.default_prior_steps)
    banks = sample_registers(
        pipe.prior, scheduler, len(real), num_inference_steps=steps, generator=seeded_generators(len(real), seed)
    ).registers.float()
    prdc = register_prdc(real, banks[:, : real.shape[1]])
    return {"priors": label, "solver": solver, "prior_steps": steps, "seed": seed,
            "prior_registers": pipe.prior.config.num_registers,
            **{k: round(prdc[k], 4) for k in PRDC_KEYS}}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", required=True, help="pipeline with K-register priors")
    parser.add_argument("--prefix", required=True, help="the same pipeline with prefix priors")
    parser.add_argument("--registers-dir", required=True)
    parser.add_argument("--settings", default="ddim:50,dpmsolver++:16", help="comma list of SOLVER:STEPS")
    parser.add_argument("--num-banks", type=int, default=512)
    parser.add_argument("--noise-seeds", type=int, default=2, help="repeats of the K-register priors' 50-step DDIM")
    parser.add_argument("--output-dir", default="runs/bench/prefix-priors")
    args = parser.parse_args()

    full, prefix = load_pipeline(args.full), load_pipeline(args.prefix)
    k = prefix.prior.config.num_registers
    real = real_registers(args.registers_dir, args.num_banks)[:, :k]
    rows = []
    for setting in args.settings.split(","):
        rows.append(prdc_row(full, "K registers", setting, real, 10_000))
        rows.append(prdc_row(prefix, f"prefix, k = {k}", setting, real, 10_000))
    repeats = [
        prdc_row(full, "K registers", "ddim:50", real, 10_000 + 1000 * (i + 1)) for i in range(args.noise_seeds)
    ]
    reference = next(
        r for r in rows if r["priors"] == "K registers" and r["solver"] == "ddim" and r["prior_steps"] == 50
    )
    spread = (
        {key: round(max(abs(r[key] - reference[key]) for r in repeats), 4) for key in PRDC_KEYS} if repeats else {}
    )
    write_result(
        {"k": k, "num_banks": len(real), "rows": rows, "repeats": repeats, "reference_spread": spread},
        args.output_dir,
        "prefix_priors.json",
    )


if __name__ == "__main__":
    main()
