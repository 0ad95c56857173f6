"""Sampler speed against the physical limit of this machine, and against diffusers' own masked-diffusion sampler.

Measures, in one run on one pipeline (default: the shipped `crocodil-python-tiny`):

* `matmul`: fp32 GFLOP/s of `torch.mm` on a large square product (the machine's practical peak) and on the
  demasker's own widest linear shape (what its layers can reach at best).
* `overhead`: seconds per demasker call inside `CrocodilPipeline.decode` vs a bare `demasker(canvas, registers=z)`
  forward on the same batch (target <= 1.10x).
* `batches`: generated tokens/s, seconds per call and achieved GFLOP/s of the whole sampler
  (`forward_flops` x calls / wall time) for each batch size, as a fraction of the matmul peak.
* `peer`: diffusers' `LLaDA2Pipeline` + `BlockRefinementScheduler` driving the same (unguided) demasker on the same
  batch, one block of BOS + `gen_length` tokens, greedy, no threshold/editing/early stop, vs `mode="mdm"` of ours:
  seconds per demasker call and per sample, as ratios (ours / peer; < 1 = ours faster).

Usage:
    python benchmarks/sampler_speed.py [--pipeline crocodil-python-tiny] [--gen-length 64] [--steps 64]
                                       [--batches 1,4,16,64] [--repeats 3] [--threads N] [--output FILE]
Prints one JSON object (and writes it to `--output` when given). Never run by the tests.
"""

import argparse
import json
import platform
import time

import torch

from crocodil_hf import CrocodilPipeline
from crocodil_hf.modeling.modeling_register_encoder import normalize_registers
from crocodil_hf.pipelines.accounting import forward_flops


def best_of(fn, repeats: int) -> float:
    """Minimum wall time of `fn()` over `repeats` runs (after one warm-up run)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def matmul_gflops(m: int, k: int, n: int, repeats: int) -> float:
    a, b = torch.randn(m, k), torch.randn(k, n)
    calls = max(1, int(2e9 // (2 * m * k * n)))  # ~2 GFLOP per timing

    def run():
        for _ in range(calls):
            torch.mm(a, b)

    return 2.0 * m * k * n * calls / best_of(run, repeats) / 1e9


def registers_for(pipe, batch: int, seed: int = 0) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    z = torch.randn(batch, pipe.num_registers_max, pipe.demasker.config.register_dim, generator=generator)
    return normalize_registers(z)


def canvas_for(pipe, batch: int, gen_length: int) -> torch.Tensor:
    canvas = torch.full((batch, gen_length + 1), pipe.mask_token_id, dtype=torch.long)
    canvas[:, 0] = pipe.tokenizer.bos_token_id
    return canvas


def demasker_flops(pipe, gen_length: int, guided: bool) -> float:
    prefix = pipe.num_registers_max + 2 if guided else 0
    return forward_flops(pipe.demasker, gen_length + 1 + prefix)


def measure_overhead(pipe, batch: int, gen_length: int, steps: int, repeats: int) -> dict:
    z = registers_for(pipe, batch)
    canvas = canvas_for(pipe, batch, gen_length)

    def bare():
        with torch.no_grad():
            for _ in range(steps):
                pipe.demasker(canvas, registers=z)

    bare_s = best_of(bare, repeats) / steps
    inside_s = best_of(lambda: pipe.decode(z, gen_length=gen_length, steps=steps), repeats) / steps
    return {"batch": batch, "bare_s_per_call": bare_s, "pipeline_s_per_call": inside_s, "ratio": inside_s / bare_s}


def measure_batches(pipe, batches: list[int], gen_length: int, steps: int, repeats: int, peak: float) -> list[dict]:
    rows = []
    for batch in batches:
        z = registers_for(pipe, batch)
        wall = best_of(lambda z=z: pipe.decode(z, gen_length=gen_length, steps=steps), repeats)
        flops = steps * batch * demasker_flops(pipe, gen_length, guided=True)
        rows.append(
            {
                "batch": batch,
                "wall_s": wall,
                "s_per_call": wall / steps,
                "tokens_per_s": batch * gen_length / wall,
                "achieved_gflops": flops / wall / 1e9,
                "fraction_of_matmul_peak": flops / wall / 1e9 / peak,
            }
        )
    return rows


def measure_peer(pipe, batch: int, gen_length: int, steps: int, repeats: int) -> dict:
    """diffusers' LLaDA2Pipeline on the same demasker (no registers) vs our `mode="mdm"` on the same batch."""
    from diffusers import BlockRefinementScheduler, LLaDA2Pipeline

    block = gen_length + 1  # BOS prompt + generated tokens in one block, like our single-block canvas
    peer = LLaDA2Pipeline(
        model=pipe.demasker,
        scheduler=BlockRefinementScheduler(block_length=block, threshold=1.0, editing_threshold=None),
        tokenizer=pipe.tokenizer,
    )
    peer.set_progress_bar_config(disable=True)
    calls = {"n": 0}
    hook = pipe.demasker.register_forward_hook(lambda *_: calls.__setitem__("n", calls["n"] + 1))
    prompt = torch.full((batch, 1), pipe.tokenizer.bos_token_id, dtype=torch.long)

    def run_peer():
        return peer(
            input_ids=prompt,
            use_chat_template=False,
            gen_length=gen_length,
            block_length=block,
            num_inference_steps=steps,
            temperature=0.0,
            sampling_method="greedy",
            threshold=1.0,
            editing_threshold=None,
            eos_early_stop=False,
            mask_token_id=pipe.mask_token_id,
            output_type="seq",
        )

    try:
        calls["n"] = 0
        run_peer()
        peer_calls = calls["n"]
        peer_wall = best_of(run_peer, repeats)
    finally:
        hook.remove()
    ours_wall = best_of(lambda: pipe(mode="mdm", num_samples=batch, gen_length=gen_length, steps=steps), repeats)
    return {
        "peer": "diffusers.LLaDA2Pipeline + BlockRefinementScheduler (greedy, threshold 1.0, no editing)",
        "batch": batch,
        "peer_calls": peer_calls,
        "peer_wall_s": peer_wall,
        "peer_s_per_call": peer_wall / peer_calls,
        "ours_calls": steps,
        "ours_wall_s": ours_wall,
        "ours_s_per_call": ours_wall / steps,
        "ratio_s_per_call": (ours_wall / steps) / (peer_wall / peer_calls),
        "ratio_wall": ours_wall / peer_wall,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--pipeline", default="crocodil-python-tiny", help="pipeline directory, Hub id or shipped name"
    )
    parser.add_argument("--gen-length", type=int, default=64)
    parser.add_argument("--steps", type=int, default=64)
    parser.add_argument("--batches", default="1,4,16,64", help="comma-separated batch sizes")
    parser.add_argument("--overhead-batch", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    parser.add_argument("--skip-peer", action="store_true")
    parser.add_argument("--output", default=None, help="also write the JSON here")
    args = parser.parse_args()
    batches = [int(b) for b in args.batches.split(",") if b]
    if not batches or min(batches) < 1:
        parser.error("--batches must list positive integers")
    if args.steps < 1 or args.steps > args.gen_length:
        parser.error("--steps must lie in [1, --gen-length]")
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)

    pipe = CrocodilPipeline.from_pretrained(args.pipeline)
    pipe.set_progress_bar_config(disable=True)
    config = pipe.demasker.config
    tokens = args.overhead_batch * (args.gen_length + 1 + pipe.num_registers_max + 2)
    peak = matmul_gflops(2048, 2048, 2048, args.repeats)
    model_shape = matmul_gflops(tokens, config.d_model, config.mlp_hidden_size, args.repeats)
    result = {
        "benchmark": "sampler_speed",
        "pipeline": args.pipeline,
        "gen_length": args.gen_length,
        "steps": args.steps,
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "demasker_gflop_per_call_per_sample": demasker_flops(pipe, args.gen_length, guided=True) / 1e9,
        "matmul": {
            "peak_gflops_2048x2048x2048": peak,
            f"model_shape_gflops_{tokens}x{config.d_model}x{config.mlp_hidden_size}": model_shape,
        },
        "overhead": measure_overhead(pipe, args.overhead_batch, args.gen_length, args.steps, args.repeats),
        "batches": measure_batches(pipe, batches, args.gen_length, args.steps, args.repeats, peak),
    }
    if not args.skip_peer:
        result["peer"] = measure_peer(pipe, args.overhead_batch, args.gen_length, args.steps, args.repeats)
    text = json.dumps(result, indent=2)
    print(text)
    if args.output:
        with open(args.output, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
