"""Ablations of paper App. G and App. D (Fig. 7, Fig. 11) at tiny scale.

Sections (`--only` picks some):

* `k`: number of registers k shown to the demasker (nested dropout lets one model use any k ≤ K): ConThenDisc
  MAUVE / Gen-PPL and autoencoder CER at `--steps` demasker calls (App. G(i)); `--k-modes` picks the modes.
* `refresh`: when ConWithinDisc refreshes the registers, `refresh_at` ∈ {0.25, 0.5, 0.75} of the MDM steps; @0 (no
  refresh) is ConThenDisc at the same steps (App. G(ii)).
* `offsets`: block-wise timestep offsets on (the shipped prior) vs off (`--prior-no-offsets`, same recipe with
  max offset 0): ConThenDisc MAUVE / Gen-PPL and register PRDC of sampled banks against encoded held-out programs
  (App. G(iii), App. E).
* `noise`: register-noise augmentation on vs off (`--noise-on` / `--noise-off`, identical short autoencoder runs
  except `register_noise_cs`): masked-token top-1 accuracy and cross-entropy on held-out programs when N(0, σ²I) is
  added to z₀ = h_φ(x₀), for a sweep of σ (App. D, Fig. 7). Registers have norm √d, i.e. unit RMS per coordinate;
  the training noise at CS 0.8 is σ = 0.75.

The training runs behind `offsets` and `noise` are made by `bash benchmarks/ablation_train.sh`.

Usage:
    python benchmarks/ablations.py [--only k,refresh,offsets,noise] [--pipeline crocodil-python-tiny] [--steps 16]
                                   [--num-samples 64] [--output-dir runs/bench/ablations]
Prints one JSON object and writes `ablations.json` under `--output-dir`.
"""

import argparse
from pathlib import Path

import torch
from common import load_pipeline, load_scorer_and_references, summary_row, with_components, write_result

from crocodil_hf import GuidedLLaDAForMaskedLM, RegisterEncoderModel, RegisterPriorTransformer
from crocodil_hf.evaluation.prior_metrics import register_prdc
from crocodil_hf.evaluation.sweep import run_sweep
from crocodil_hf.schedulers.scheduling_register_prior import sample_registers
from crocodil_hf.training.losses import forward_mask
from crocodil_hf.training.trainers import ProgramCollator

SECTIONS = ("k", "refresh", "offsets", "noise")


def ablate_k(pipe, scorer, common, steps, ks, modes=("con_then_disc", "autoencode")):
    rows = []
    for k in ks:
        kwargs = {"num_registers": k}
        for mode in modes:
            sweep = run_sweep(pipe, scorer, modes=[mode], steps=[steps], call_kwargs=kwargs, **common)
            rows.append(summary_row(sweep["points"][0], num_registers=k))
    return rows


def ablate_refresh(pipe, scorer, common, steps, fractions):
    sweep = run_sweep(pipe, scorer, modes=["con_then_disc"], steps=[steps], **common)
    rows = [summary_row(sweep["points"][0], refresh_at=0.0)]
    for f in fractions:
        sweep = run_sweep(
            pipe, scorer, modes=["con_within_disc"], steps=[steps], call_kwargs={"refresh_at": [f]}, **common
        )
        rows.append(summary_row(sweep["points"][0], refresh_at=f))
    return rows


def real_registers(registers_dir: str, count: int) -> torch.Tensor:
    from datasets import load_from_disk

    validation = load_from_disk(registers_dir)["validation"].with_format("torch")
    return validation[:count]["registers"].float()


def ablate_offsets(pipe, scorer, common, steps, no_offsets_dir, registers_dir, num_banks, prior_steps):
    real = real_registers(registers_dir, num_banks)
    rows = []
    variants = [("on", pipe.prior), ("off", RegisterPriorTransformer.from_pretrained(no_offsets_dir).eval())]
    for name, prior in variants:
        variant = pipe if name == "on" else with_components(pipe, prior=prior)
        sweep = run_sweep(variant, scorer, modes=["con_then_disc"], steps=[steps], **common)
        generators = [torch.Generator().manual_seed(10_000 + i) for i in range(num_banks)]
        fake = sample_registers(
            prior, pipe.scheduler, num_banks, num_inference_steps=prior_steps, generator=generators
        ).registers
        quality = register_prdc(real, fake)
        row = summary_row(sweep["points"][0], offsets=name, timestep_offsets=prior.config.timestep_offsets)
        row.update({f"register_{k}": round(v, 4) for k, v in quality.items() if not k.endswith("_std")})
        rows.append(row)
    return rows


@torch.no_grad()
def masked_prediction(encoder, demasker, input_ids, enc_mask, sigmas, seed=0):
    """Top-1 accuracy and mean cross-entropy on masked positions, with z₀ + N(0, σ²I) as guidance (Fig. 7)."""
    z0 = encoder(input_ids=input_ids, attention_mask=enc_mask).registers
    g = torch.Generator().manual_seed(seed)
    x_t, masked, _ = forward_mask(input_ids, demasker.config.mask_token_id, generator=g)
    noise = torch.randn(z0.shape, generator=torch.Generator().manual_seed(seed + 1))
    rows = []
    for sigma in sigmas:
        logits = demasker(x_t, registers=z0 + sigma * noise).logits
        target = input_ids[masked]
        picked = logits[masked]
        rows.append(
            {
                "sigma": sigma,
                "top1_accuracy": round((picked.argmax(-1) == target).float().mean().item(), 4),
                "cross_entropy": round(torch.nn.functional.cross_entropy(picked.float(), target).item(), 4),
            }
        )
    return rows


def weighted_mean(rows, sizes, key, total):
    """Program-weighted mean of `key` over per-batch rows."""
    return round(sum(r[key] * n for r, n in zip(rows, sizes)) / total, 4)


def ablate_noise(pipe, runs, sigmas, num_programs, batch_size, registers_dir):
    from datasets import load_from_disk

    validation = load_from_disk(registers_dir)["validation"].select(range(num_programs))
    collate = ProgramCollator(eos_token_id=pipe.tokenizer.eos_token_id, max_length=65)
    out = {}
    for name, path in runs.items():
        encoder = RegisterEncoderModel.from_pretrained(Path(path) / "encoder").eval()
        demasker = GuidedLLaDAForMaskedLM.from_pretrained(Path(path) / "demasker").eval()
        parts, sizes = [], []  # per batch: one row per sigma, and the batch's number of programs
        for start in range(0, num_programs, batch_size):
            batch = collate([validation[i] for i in range(start, min(start + batch_size, num_programs))])
            parts.append(
                masked_prediction(
                    encoder, demasker, batch["input_ids"], batch["encoder_attention_mask"], sigmas, seed=start
                )
            )
            sizes.append(batch["input_ids"].shape[0])

        out[name] = [
            {
                "sigma": rows[0]["sigma"],
                "top1_accuracy": weighted_mean(rows, sizes, "top1_accuracy", num_programs),
                "cross_entropy": weighted_mean(rows, sizes, "cross_entropy", num_programs),
            }
            for rows in zip(*parts)
        ]
    return out


def plot_noise(noise: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(8, 3.3))
    for name, rows in noise.items():
        for ax, key in zip(axes, ("top1_accuracy", "cross_entropy")):
            ax.plot([r["sigma"] for r in rows], [r[key] for r in rows], marker="o", label=name)
            ax.set_xlabel("σ of noise added to z₀")
            ax.set_ylabel(key)
    axes[0].legend(fontsize=8)
    fig.suptitle("Register-noise robustness (App. D, Fig. 7 shape)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default=",".join(SECTIONS), help=f"comma list of {SECTIONS}")
    parser.add_argument("--pipeline", default="crocodil-python-tiny")
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--gen-length", type=int, default=64)
    parser.add_argument("--num-samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--prior-steps", type=int, default=50)
    parser.add_argument("--ks", default="1,2,4,8,16")
    parser.add_argument("--k-modes", default="con_then_disc,autoencode", help="modes of the `k` section")
    parser.add_argument("--refresh", default="0.25,0.5,0.75")
    parser.add_argument("--prior-no-offsets", default="runs/ablate-prior-no-offsets")
    parser.add_argument("--registers-dir", default="runs/tiny-python/registers")
    parser.add_argument("--num-banks", type=int, default=256, help="sampled / real register banks for PRDC")
    parser.add_argument("--noise-on", default="runs/ablate-noise-0.8")
    parser.add_argument("--noise-off", default="runs/ablate-noise-1.0")
    parser.add_argument(
        "--noise-reference",
        default="runs/tiny-python/autoencoder",
        help="also measure this autoencoder (default: the shipped one, 3000 steps with noise); '' to skip",
    )
    parser.add_argument("--sigmas", default="0,0.25,0.5,0.75,1,1.5,2")
    parser.add_argument("--noise-programs", type=int, default=256)
    parser.add_argument("--scorer", default=None)
    parser.add_argument("--output-dir", default="runs/bench/ablations")
    args = parser.parse_args()
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(only) - set(SECTIONS)
    if unknown:
        parser.error(f"unknown section(s) {sorted(unknown)}; choose from {SECTIONS}")
    needed = {
        "offsets": [args.prior_no_offsets, args.registers_dir],
        "noise": [args.noise_on, args.noise_off, args.registers_dir],
    }
    for section in only:
        for path in needed.get(section, []):
            if not Path(path).exists():
                parser.error(f"section {section!r} needs {path}: run `bash benchmarks/ablation_train.sh` first")

    pipe = load_pipeline(args.pipeline)
    result = {"benchmark": "ablations", "pipeline": args.pipeline, "steps": args.steps}
    if {"k", "refresh", "offsets"} & set(only):
        scorer, references = load_scorer_and_references(pipe, args.num_samples, args.gen_length, args.scorer)
        common = dict(
            gen_length=args.gen_length,
            num_samples=args.num_samples,
            batch_size=args.batch_size,
            prior_steps=args.prior_steps,
            references=references,
        )
        result["scorer"] = scorer.name
        result["references"] = references["description"]
    if "k" in only:
        result["k"] = ablate_k(
            pipe, scorer, common, args.steps, [int(k) for k in args.ks.split(",")], args.k_modes.split(",")
        )
    if "refresh" in only:
        result["refresh"] = ablate_refresh(
            pipe, scorer, common, args.steps, [float(f) for f in args.refresh.split(",")]
        )
    if "offsets" in only:
        result["offsets"] = ablate_offsets(
            pipe,
            scorer,
            common,
            args.steps,
            args.prior_no_offsets,
            args.registers_dir,
            args.num_banks,
            args.prior_steps,
        )
    if "noise" in only:
        sigmas = [float(s) for s in args.sigmas.split(",")]
        runs = {"noise on (CS 0.8)": args.noise_on, "noise off": args.noise_off}
        if args.noise_reference and Path(args.noise_reference, "encoder").exists():
            runs["reference: " + args.noise_reference] = args.noise_reference
        result["noise"] = ablate_noise(pipe, runs, sigmas, args.noise_programs, args.batch_size, args.registers_dir)
        Path(args.output_dir).mkdir(parents=True, exist_ok=True)
        plot_noise(result["noise"], Path(args.output_dir) / "register_noise.png")
    write_result(result, args.output_dir, "ablations.json")


if __name__ == "__main__":
    main()
