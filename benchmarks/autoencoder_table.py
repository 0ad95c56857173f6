"""Autoencoder table (paper Tables 1–2 shape): MDM block length × steps → Gen-PPL, entropy and CER of reconstructions.

Held-out programs are encoded once per point (z₀ = h_φ(x₀)) and decoded by the guided demasker with the given block
length and number of demasker calls (Alg. 6); CER against the originals, Gen-PPL by the offline scorer. The first row
scores the held-out programs themselves (the data's own Gen-PPL).

Usage:
    python benchmarks/autoencoder_table.py [--pipeline crocodil-python-tiny] [--block-lengths 64,32,16]
                                           [--steps 4,8,16,64] [--num-samples 64] [--output-dir runs/bench/autoencoder]
Prints one JSON object; writes `autoencoder_table.json` and `cer_vs_nfe.png` under `--output-dir`.
"""

import argparse
from pathlib import Path

from common import load_pipeline, load_scorer_and_references, plot_curves, summary_row, write_result

from crocodil_hf.evaluation.metrics import gen_ppl
from crocodil_hf.evaluation.sweep import check_sweep, run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="crocodil-python-tiny")
    parser.add_argument("--block-lengths", default="64,32,16")
    parser.add_argument("--steps", default="4,8,16,64")
    parser.add_argument("--gen-length", type=int, default=64)
    parser.add_argument("--num-samples", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--scorer", default=None)
    parser.add_argument("--output-dir", default="runs/bench/autoencoder")
    args = parser.parse_args()
    blocks = [int(b) for b in args.block_lengths.split(",")]
    steps = [int(s) for s in args.steps.split(",")]

    pipe = load_pipeline(args.pipeline)
    check_sweep(
        pipe, ["autoencode"], steps, blocks, gen_length=args.gen_length, num_samples=args.num_samples, references=None
    )
    scorer, references = load_scorer_and_references(pipe, args.num_samples, args.gen_length, args.scorer)
    data = gen_ppl(scorer, references["texts"])
    sweep = run_sweep(
        pipe,
        scorer,
        modes=["autoencode"],
        steps=steps,
        block_lengths=blocks,
        gen_length=args.gen_length,
        num_samples=args.num_samples,
        batch_size=args.batch_size,
        references=references,
    )
    rows = [summary_row(p) for p in sweep["points"]]
    for row in rows:
        row["label"] = f"block {row['block_length']}"
    plot_curves(rows, "cer", "label", Path(args.output_dir) / "cer_vs_nfe.png", "Autoencoder CER vs NFE")
    write_result(
        {
            "benchmark": "autoencoder_table",
            "pipeline": args.pipeline,
            "scorer": sweep["scorer"],
            "references": sweep["references"],
            "data_gen_ppl": round(data["gen_ppl"], 2),
            "data_entropy": round(data["entropy"], 3),
            "rows": rows,
        },
        args.output_dir,
        "autoencoder_table.json",
    )


if __name__ == "__main__":
    main()
