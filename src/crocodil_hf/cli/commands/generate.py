"""`crocodil generate`: sample programs (default: the shipped crocodil-python-tiny, ConWithinDisc)."""

from ..common import (
    HELP,
    cache_arg,
    check_sampling,
    configs,
    load,
    model_length,
    nfe_line,
    pipeline_arg,
    prior_args,
    prior_kwargs,
    write_atomic,
)


def register(subparsers) -> None:
    from ...pipelines import generation_modes

    gen = subparsers.add_parser(
        "generate",
        help="generate Python programs (default: the shipped crocodil-python-tiny, ConWithinDisc)",
        description="Sample programs with a CRoCoDiL pipeline; prints them with the NFE breakdown and wall time.",
    )
    pipeline_arg(gen)
    gen.add_argument("--mode", default="con_within_disc", choices=generation_modes(), help=HELP["mode"])
    gen.add_argument("--num-samples", type=int, default=4, help="programs to sample (default 4)")
    gen.add_argument("--steps", type=int, default=16, help="demasker calls (default 16 = L/4)")
    gen.add_argument("--gen-length", type=int, default=None, help="tokens to generate (default: the model's L)")
    gen.add_argument("--block-length", type=int, default=None, help=HELP["block_length"])
    prior_args(gen)
    gen.add_argument("--temperature", type=float, default=0.0, help=HELP["temperature"])
    gen.add_argument("--eos-penalty", type=float, default=0.0, help="lower the EOS logit by this much (0 = off)")
    gen.add_argument("--threshold", type=float, default=None, help="confidence threshold (adaptive calls)")
    cache_arg(gen)
    gen.add_argument("--seed", type=int, default=0, help=HELP["seed"])
    gen.add_argument("--output", help="also write the samples as JSONL (a new file)")
    gen.add_argument("--overwrite", action="store_true", help="replace an existing --output file")


def run(args, rest=None) -> int:
    import json

    from ...utils.files import check_output_file
    from ...utils.numbers import check_number
    from ...utils.shards import is_main_process, num_processes
    from ..distributed import end_process_group

    check_sampling(args)
    check_number("--block-length", args.block_length, minimum=1, integer=True, allow_none=True)
    check_number("--threshold", args.threshold, minimum=0, maximum=1, exclusive_minimum=True, allow_none=True)
    if args.output:
        check_output_file(args.output, args.overwrite)
    import torch

    skeleton = configs(args.pipeline)
    gen_length = args.gen_length or model_length(skeleton)
    call = dict(
        num_samples=args.num_samples,
        gen_length=gen_length,
        block_length=args.block_length,
        steps=args.steps,
        temperature=args.temperature,
        threshold=args.threshold,
        generator=[torch.Generator().manual_seed(args.seed + i) for i in range(args.num_samples)],
        eos_penalty=args.eos_penalty,
        kv_cache=args.kv_cache,
        **prior_kwargs(args),
    )
    pipe = load(args.pipeline, args.mode, skeleton=skeleton, **call)
    pipe.set_progress_bar_config(disable=not is_main_process())
    texts, nfe, wall = sample_sharded(pipe, args.mode, call, args.seed)
    end_process_group()
    if not is_main_process():
        return 0
    for i, text in enumerate(texts):
        print(f"# ---- sample {i} ({args.mode}, seed {args.seed + i}) ----")
        print(text.rstrip("\n"))
    print(f"# {nfe_line(nfe)}")
    processes = f" on {num_processes()} processes" if num_processes() > 1 else ""
    print(f"# wall time: {wall:.2f} s for {args.num_samples} samples of {gen_length} tokens{processes}")
    if args.output:
        rows = [
            {"text": text, "mode": args.mode, "seed": args.seed + i, "steps": args.steps, "gen_length": gen_length}
            | {"nfe": nfe}
            for i, text in enumerate(texts)
        ]
        write_atomic(args.output, "".join(json.dumps(row) + "\n" for row in rows))
        print(f"# wrote {args.output}")
    return 0


def sample_sharded(pipe, mode: str, call: dict, seed: int) -> tuple[list[str], dict, float]:
    """`pipe(mode, **call)` as one batch per process of `accelerate launch` / `torchrun` (one batch in a plain
    process; sample i seeded `seed + i` as `call`'s generators are, so the texts are those of one process): texts,
    NFE (the largest of a batch) and the elapsed wall time."""
    import time

    from ...evaluation.sweep import sample_in_batches
    from ...utils.shards import num_processes

    start, n = time.perf_counter(), call["num_samples"]
    kwargs = {k: v for k, v in call.items() if k not in ("num_samples", "generator")}
    batch = -(-n // num_processes())  # ceil: as many batches as processes
    texts, nfe, _ = sample_in_batches(pipe, mode, None, n, batch, seed=seed, kwargs=kwargs)
    return texts, nfe, time.perf_counter() - start
