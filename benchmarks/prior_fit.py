"""Does the unconditional register prior memorise its training registers? Its denoising loss (App. E, the training
objective, same timesteps and noise for every set) on banks the encoder makes of programs the prior trained on, of
training-split programs it never saw (beyond the registers stage's `--max-programs`), and of validation programs.
Equal losses: no memorisation, so more programs would not help the prior.

Usage:
    python benchmarks/prior_fit.py [--pipeline crocodil-python-tiny] [--max-programs 20000] [--num-banks 1024] \
        [--repeats 4] [--output-dir runs/bench/prior-fit]
Prints one JSON object and writes `prior_fit.json`. Runs on one CPU thread (it may share the machine with training).
"""

import argparse

import torch
from common import write_result

from crocodil_hf import CrocodilPipeline
from crocodil_hf.data.corpus import CorpusConfig, build_program_dataset
from crocodil_hf.schedulers.scheduling_register_prior import make_noise_scheduler
from crocodil_hf.training.prior_loss import register_prior_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default="crocodil-python-tiny")
    parser.add_argument("--max-programs", type=int, default=20000, help="the registers stage's max_programs")
    parser.add_argument("--max-length", type=int, default=65, help="the registers stage's max_length")
    parser.add_argument("--num-banks", type=int, default=1024)
    parser.add_argument("--repeats", type=int, default=4, help="draws of timesteps and noise, the same for every set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="runs/bench/prior-fit")
    args = parser.parse_args()
    torch.set_num_threads(1)

    pipe = CrocodilPipeline.from_pretrained(args.pipeline)
    pipe.set_progress_bar_config(disable=True)
    seen_data, _ = build_program_dataset(
        pipe.tokenizer, CorpusConfig(max_length=args.max_length, max_programs=args.max_programs)
    )
    full, _ = build_program_dataset(pipe.tokenizer, CorpusConfig(max_length=args.max_length))
    seen = [t for t in seen_data["train"]["text"] if t.strip()]
    seen_set = set(seen)
    sets = {
        "seen": seen,
        "unseen_train": [t for t in full["train"]["text"] if t.strip() and t not in seen_set],
        "validation": [t for t in full["validation"]["text"] if t.strip()],
    }
    generator = torch.Generator().manual_seed(args.seed)
    scheduler = make_noise_scheduler(pipe.prior.config.num_train_timesteps)
    rows = {}
    for name, texts in sets.items():
        picked = [texts[i] for i in torch.randperm(len(texts), generator=generator)[: args.num_banks]]
        with torch.no_grad():
            banks = torch.cat([pipe.encode(picked[i : i + 128]).float() for i in range(0, len(picked), 128)])
            losses = [
                register_prior_loss(
                    pipe.prior, scheduler, banks, generator=torch.Generator().manual_seed(args.seed + 100 + r)
                ).item()
                for r in range(args.repeats)
            ]
        rows[name] = {
            "programs": len(texts),
            "banks": len(picked),
            "loss": sum(losses) / len(losses),
            "losses": losses,
        }
        print(name, rows[name], flush=True)
    config = {k: v for k, v in vars(args).items() if k != "output_dir"}
    write_result({"config": config, "sets": rows}, args.output_dir, "prior_fit.json")


if __name__ == "__main__":
    main()
