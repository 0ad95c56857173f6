"""Speed of the sampler's approximate key/value cache (issue 36): `kv_cache=None | "prefix" | "dual"` side by side in
one process, on the same demasker, batch and seeds.

Shapes (each a guided demasker driven with fixed random registers, `mode="con_then_disc"` with `registers=`, so the
register prefix is part of every call and no prior runs):

- `shipped`: the shipped `crocodil-python-tiny` demasker (d_model 256, 4 layers) at its trained length, 64 tokens,
  blocks of 16;
- `shipped-width`: a random demasker of the shipped shape at 256 and 512 tokens, blocks of 32;
- `100m`: a random demasker of a ~100 M-parameter LLaDA shape (d_model 768, 12 layers, 12 heads, MLP 2048) at 256
  tokens, blocks of 32 (its uncached point takes minutes on 2 cores: run it alone with `--steps-per-block quarter`).

For each point: wall time per sample (best of `--repeats`), generated tokens/s, the demasker FLOPs the calls
executed (`nfe["demasker_flops"]` × batch), achieved GFLOP/s as a fraction of this machine's measured `torch.mm` peak, the
ratio to the uncached wall time, and the fraction of tokens equal to the uncached call's (greedy).

Usage:
    python benchmarks/kv_cache.py [--shapes shipped,shipped-width,100m] [--batches 1,16]
                                  [--steps-per-block full|quarter] [--repeats 1] [--output-dir runs/bench/kv-cache]
Prints one JSON object; writes `kv_cache.json` and `kv_cache.png` under `--output-dir`. Never run by the tests.
"""

import argparse
import time

import torch
from common import load_pipeline, with_components, write_result
from sampler_speed import matmul_gflops, registers_for

from crocodil_hf import GuidedLLaDAForMaskedLM

CACHES = (None, "prefix", "dual")
SHAPES = {
    "shipped-width": dict(d_model=256, n_layers=4, n_heads=4, n_kv_heads=4, mlp_hidden_size=768),
    "100m": dict(d_model=768, n_layers=12, n_heads=12, n_kv_heads=12, mlp_hidden_size=2048),
}


def random_demasker(like: GuidedLLaDAForMaskedLM, shape: dict) -> GuidedLLaDAForMaskedLM:
    """A randomly initialised guided demasker of `shape`, with `like`'s vocabulary, registers and special tokens."""
    config = like.config.to_dict()
    config.update(shape, max_sequence_length=2048)
    torch.manual_seed(0)
    model = GuidedLLaDAForMaskedLM(type(like.config).from_dict(config)).eval()
    return model


def run_point(pipe, batch: int, gen_length: int, block: int, steps: int, kv_cache, repeats: int) -> dict:
    z = registers_for(pipe, batch)
    call = dict(num_samples=batch, gen_length=gen_length, block_length=block, steps=steps, registers=z)
    out, best = None, float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        out = pipe("con_then_disc", kv_cache=kv_cache, **call)
        best = min(best, time.perf_counter() - start)
    flops = out.nfe["demasker_flops"] * batch  # `demasker_flops` counts one row of the batch
    return {
        "kv_cache": kv_cache,
        "batch": batch,
        "wall_s": round(best, 3),
        "wall_s_per_sample": round(best / batch, 4),
        "tokens_per_s": round(batch * gen_length / best, 1),
        "demasker_gflop": round(flops / 1e9, 2),
        "achieved_gflops": round(flops / best / 1e9, 1),
        "sequences": out.sequences,
    }


def measure(pipe, name: str, gen_length: int, block: int, args, peak: float) -> list[dict]:
    rows = []
    for batch in [int(b) for b in args.batches.split(",")]:
        steps = gen_length if args.steps_per_block == "full" else gen_length // 4
        pipe("con_then_disc", num_samples=batch, gen_length=block, steps=2, registers=registers_for(pipe, batch))
        points = [run_point(pipe, batch, gen_length, block, steps, c, args.repeats) for c in CACHES]
        base_wall, base_tokens = points[0]["wall_s"], points[0]["sequences"]
        for p in points:
            p["ratio_to_uncached"] = round(p["wall_s"] / base_wall, 3)
            p["same_tokens"] = round((p.pop("sequences") == base_tokens).float().mean().item(), 3)
            p["peak_fraction"] = round(p["achieved_gflops"] / peak, 3)
            rows.append({"shape": name, "gen_length": gen_length, "block_length": block, "steps": steps, **p})
            print(rows[-1], flush=True)
    return rows


def plot(rows: list[dict], path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    groups = sorted({(r["shape"], r["gen_length"], r["batch"]) for r in rows})
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(groups)), 4))
    width = 0.25
    for i, cache in enumerate(CACHES):
        ratios = [
            next(r["ratio_to_uncached"] for r in rows if (r["shape"], r["gen_length"], r["batch"]) == g
                 and r["kv_cache"] == cache)
            for g in groups
        ]  # fmt: skip
        ax.bar([j + (i - 1) * width for j in range(len(groups))], ratios, width, label=str(cache))
    ax.axhline(0.35, color="grey", linestyle="--", linewidth=1, label="target 0.35 (dual, 256, block 32, batch 16)")
    ax.set_xticks(range(len(groups)))
    ax.set_xticklabels([f"{s}\nL={n} B={b}" for s, n, b in groups], fontsize=8)
    ax.set_ylabel("wall time / uncached")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--pipeline", default="crocodil-python-tiny")
    parser.add_argument("--batches", default="1,16")
    parser.add_argument("--steps-per-block", choices=("full", "quarter"), default="full",
                        help="full: steps = gen_length (one token per call); quarter: gen_length / 4")  # fmt: skip
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--shapes", default="shipped,shipped-width,100m")
    parser.add_argument("--output-dir", default="runs/bench/kv-cache")
    args = parser.parse_args()

    torch.set_grad_enabled(False)
    peak = matmul_gflops(2048, 2048, 2048, 2)
    pipe = load_pipeline(args.pipeline)
    shapes = args.shapes.split(",")
    rows = measure(pipe, "shipped", 64, 16, args, peak) if "shipped" in shapes else []
    for name, shape in SHAPES.items():
        if name not in shapes:
            continue
        random_pipe = with_components(pipe, demasker=random_demasker(pipe.demasker, shape), mdm_demasker=None)
        for gen_length in (256, 512) if name == "shipped-width" else (256,):
            rows += measure(random_pipe, name, gen_length, 32, args, peak)
    result = {"matmul_peak_gflops": round(peak, 1), "threads": torch.get_num_threads(), "points": rows}
    path = write_result(result, args.output_dir, "kv_cache.json")
    plot(rows, path.parent / "kv_cache.png")


if __name__ == "__main__":
    main()
