"""Seconds per demasker call inside CrocodilPipeline vs a bare demasker forward on the same batch (target <= 1.10x).

Usage: python benchmarks/pipeline_overhead.py [--batch 8] [--gen-length 128] [--steps 32] [--d-model 256]
Prints one JSON object.
"""

import argparse
import json
import time

import torch

from crocodil_hf.pipelines.tiny import build_tiny_pipeline


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--gen-length", type=int, default=128)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--d-model", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(max(1, torch.get_num_threads()))

    pipe = build_tiny_pipeline(d_model=args.d_model)
    pipe.set_progress_bar_config(disable=True)
    z = pipe.encode(["x = 1"] * args.batch)
    canvas = torch.full((args.batch, args.gen_length + 1), pipe.mask_token_id)
    canvas[:, 0] = pipe.tokenizer.bos_token_id

    with torch.no_grad():
        pipe.demasker(canvas, registers=z)  # warm-up
        bare = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            for _ in range(args.steps):
                pipe.demasker(canvas, registers=z)
            bare.append((time.perf_counter() - start) / args.steps)

    inside = []
    for _ in range(args.repeats):
        out = pipe.decode(z, gen_length=args.gen_length, steps=args.steps)
        inside.append(out.wall_time / out.nfe["demasker_calls"])
    result = {
        "benchmark": "pipeline_overhead",
        "batch": args.batch,
        "gen_length": args.gen_length,
        "steps": args.steps,
        "d_model": args.d_model,
        "threads": torch.get_num_threads(),
        "bare_s_per_call": min(bare),
        "pipeline_s_per_call": min(inside),
        "ratio": min(inside) / min(bare),
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
