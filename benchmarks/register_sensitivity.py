"""Why generation can drift while reconstruction improves: how the demasker reacts to register error, and how far the
prior's samples lie from the encoder's registers, for one or more pipelines (e.g. successive shipped runs).

For each pipeline, on the same held-out programs (validation split of the CPython standard library, ≤ `gen_length`
tokens) and the same seeds:

* **sensitivity**: encode the programs (z₀ = h_φ(x)), add the robustness noise of Alg. 1 at each `--noise-cs`
  (white noise scaled to a target CS(z₀, z₀ + e); 1 = none, the autoencoder) and decode with the discrete loop given
  those registers (greedy, `--steps` demasker calls): CER against the programs, Gen-PPL and unigram entropy;
* **prior**: decode banks sampled from the unconditional prior (`--prior-samplers`: the pipeline's default solver and
  steps, other solvers, step counts and starting-noise temperatures; `default` is ConThenDisc), and encoded banks
  whose registers are shuffled across programs (`shuffled`: every register on the encoder's manifold, their
  combination not): Gen-PPL and entropy;
* **geometry**: register PRDC of the prior's banks against encoded banks of other held-out programs; the
  nearest-neighbour cosine similarity (flattened banks) of the prior's banks and of held-out encoded banks to that
  reference set; the CS to the reference set of noised encoded banks at each `--noise-cs`, so the prior's distance
  from the encoder's registers reads on the same axis as the noise the demasker was trained with.

Usage:
    python benchmarks/register_sensitivity.py --pipeline run7=crocodil-python-tiny --pipeline run5=DIR \
        [--num-samples 128] [--num-reference 512] [--steps 16] [--gen-length 64] [--noise-cs 1,0.9,0.8,0.7] \
        [--prior-samplers default,ddim:50] [--output-dir runs/bench/register-sensitivity]
Prints one JSON object and writes `register_sensitivity.json`.
"""

import argparse

import torch
from common import load_pipeline, seeded_generators, write_result

from crocodil_hf.evaluation.metrics import cer, gen_ppl
from crocodil_hf.evaluation.prior_metrics import register_prdc
from crocodil_hf.evaluation.scorer import load_scorer
from crocodil_hf.evaluation.sweep import reference_programs
from crocodil_hf.schedulers.scheduling_register_prior import make_prior_scheduler, sample_registers, solver_name
from crocodil_hf.training.losses import register_noise


def encode(pipe, texts, batch_size):
    return torch.cat([pipe.encode(texts[i : i + batch_size]).float() for i in range(0, len(texts), batch_size)])


def decode(pipe, registers, args, seed):
    """Greedy discrete loop guided by the given registers; one generator per sample."""
    texts = []
    for start in range(0, len(registers), args.batch_size):
        chunk = registers[start : start + args.batch_size]
        out = pipe.decode(
            chunk.to(pipe.demasker.dtype), gen_length=args.gen_length, steps=args.steps,
            generator=seeded_generators(len(chunk), seed + start),
        )  # fmt: skip
        texts.extend(out.texts)
    return texts


def prior_banks(pipe, spec: str, reference: torch.Tensor, args) -> tuple[torch.Tensor, str]:
    """Register banks for one `--prior-samplers` entry.

    `shuffled`: encoded reference banks with each register index permuted independently across programs (every
    register on the encoder's manifold, their combination not). `SOLVER[:STEPS][@TEMPERATURE]`: banks from the
    unconditional prior, `default` being the pipeline's own solver and step count; the starting noise is scaled by
    TEMPERATURE (default 1).
    """
    n = args.num_samples
    if spec == "shuffled":
        if len(reference) < n:
            raise ValueError(f"`shuffled` needs --num-reference >= --num-samples ({n}).")
        g = torch.Generator().manual_seed(args.seed)
        columns = [reference[torch.randperm(len(reference), generator=g)[:n], j] for j in range(reference.shape[1])]
        return torch.stack(columns, dim=1), "encoded banks, registers shuffled across programs"
    body, _, temperature = spec.partition("@")
    solver, _, steps = body.partition(":")
    temperature = float(temperature or 1.0)
    steps = int(steps) if steps else pipe.config.default_prior_steps
    scheduler = pipe.scheduler if solver == "default" else make_prior_scheduler(solver, pipe.scheduler.config)
    config = pipe.prior.config
    latents = torch.stack(
        [torch.randn(config.num_registers, config.register_dim, generator=g) for g in seeded_generators(n, args.seed)]
    )
    banks = sample_registers(pipe.prior, scheduler, n, num_inference_steps=steps, latents=temperature * latents)
    return banks.registers.float(), f"{solver_name(scheduler)}, {steps} steps, temperature {temperature}"


def nearest_cosine(banks: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean over banks of the largest cosine similarity to a reference bank (banks flattened to K·d)."""
    a = torch.nn.functional.normalize(banks.flatten(1).double(), dim=1)
    b = torch.nn.functional.normalize(reference.flatten(1).double(), dim=1)
    return (a @ b.T).max(dim=1).values.mean().item()


def measure(label, path, scorer, args):
    pipe = load_pipeline(path)
    pool = reference_programs(pipe, args.num_samples + args.num_reference, args.gen_length)["texts"]
    texts, reference_texts = pool[: args.num_samples], pool[args.num_samples :]
    z = encode(pipe, texts, args.batch_size)
    reference = encode(pipe, reference_texts, args.batch_size)
    row = {"label": label, "pipeline": path, "register_norm": z.norm(dim=-1).mean().item()}
    row["held_out_nearest_cs"] = nearest_cosine(z, reference)

    sensitivity = []
    for cs in args.noise_cs:
        noisy = register_noise(z, cs, generator=torch.Generator().manual_seed(args.seed))
        decoded = decode(pipe, noisy, args, args.seed)
        point = {"noise_cs": cs, "nearest_cs": nearest_cosine(noisy, reference)}
        point["cer"] = cer(texts, decoded)["cer"]
        scored = gen_ppl(scorer, decoded)
        point.update(gen_ppl=scored["gen_ppl"], entropy=scored["entropy"], num_empty=scored["num_empty"])
        sensitivity.append(point)
        print(label, point, flush=True)
    row["sensitivity"] = sensitivity

    row["prior"] = []
    for spec in args.prior_samplers:
        banks, description = prior_banks(pipe, spec, reference, args)
        decoded = decode(pipe, banks, args, args.seed)
        scored = gen_ppl(scorer, decoded)
        point = {
            "sampler": description,
            "nearest_cs": nearest_cosine(banks, reference),
            "register_norm": banks.norm(dim=-1).mean().item(),
            "prdc": register_prdc(reference, banks),
            "gen_ppl": scored["gen_ppl"],
            "entropy": scored["entropy"],
            "num_empty": scored["num_empty"],
        }
        row["prior"].append(point)
        print(label, point, flush=True)
    row["held_out_prdc"] = register_prdc(reference, z)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", action="append", required=True, help="LABEL=PATH (repeatable)")
    parser.add_argument("--num-samples", type=int, default=128)
    parser.add_argument("--num-reference", type=int, default=512)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--gen-length", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--noise-cs", type=lambda s: [float(x) for x in s.split(",")], default=[1.0, 0.9, 0.8, 0.7])
    parser.add_argument(
        "--prior-samplers",
        type=lambda s: s.split(","),
        default=["default"],
        help="comma-separated: `shuffled`, or SOLVER[:STEPS][@TEMPERATURE] with SOLVER `default` (the pipeline's) or a "
        "prior solver, e.g. default,ddim:50,default@0.7",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="runs/bench/register-sensitivity")
    args = parser.parse_args()
    pipelines = []
    for item in args.pipeline:
        label, sep, path = item.partition("=")
        if not sep or not label or not path:
            parser.error(f"--pipeline must be LABEL=PATH, got {item!r}")
        pipelines.append((label, path))
    scorer = load_scorer()
    rows = [measure(label, path, scorer, args) for label, path in pipelines]
    config = {k: v for k, v in vars(args).items() if k not in ("pipeline", "output_dir")}
    write_result({"config": config, "pipelines": rows}, args.output_dir, "register_sensitivity.json")


if __name__ == "__main__":
    main()
