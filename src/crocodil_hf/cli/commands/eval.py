"""`crocodil eval`: the NFE sweep. Every (mode, block length, steps) point generates and is scored offline
(Gen-PPL / entropy, MAUVE, CER); JSON + PNG plots in a claimed output directory."""

import sys

from ..common import HELP, cache_arg, check_seed, int_list, prior_args, prior_kwargs


def register(subparsers) -> None:
    from ...schedulers import REMASKING

    ev = subparsers.add_parser(
        "eval",
        help="NFE sweep: Gen-PPL/entropy, MAUVE, CER per mode and step count; JSON + PNG plots",
        description="Generate with every (mode, block length, steps) point and score the samples offline.",
    )
    ev.add_argument("--pipeline", required=True, help="pipeline directory, Hub id or shipped name")
    ev.add_argument(
        "--modes",
        default="mdm,con_then_disc,con_within_disc",
        help="comma list of mdm, con_then_disc, con_within_disc, autoencode",
    )
    ev.add_argument("--steps", default="8,16,32,64", help="comma list of demasker-call budgets")
    ev.add_argument("--block-length", default=None, help="comma list of block lengths (default: gen length)")
    ev.add_argument("--gen-length", type=int, default=64, help="tokens per sample (default 64)")
    ev.add_argument(
        "--num-samples", type=int, default=16, help="samples per point, and reference programs (default 16)"
    )
    ev.add_argument("--batch-size", type=int, default=8, help="samples per pipeline call (default 8)")
    prior_args(ev)
    ev.add_argument("--temperature", type=float, default=0.0, help=HELP["temperature"])
    ev.add_argument(
        "--remasking",
        choices=REMASKING,
        default="low_confidence",
        help="which candidates each step commits (random + --temperature 1 is ancestral sampling)",
    )
    cache_arg(ev)
    ev.add_argument("--scorer", default=None, help="causal LM dir/Hub id (default: offline SmolLM2-135M)")
    ev.add_argument("--corpus", default=None, help="reference programs source (default: CPython stdlib)")
    ev.add_argument(
        "--corpus-split",
        choices=("validation", "all"),
        default="validation",
        help="validation: the files of --corpus held out by path hash (default; a corpus the pipeline trained on); "
        "all: every program of it (a corpus the pipeline never saw)",
    )
    ev.add_argument("--seed", type=int, default=0, help=HELP["seed"] + "; also picks the reference programs")
    ev.add_argument("--no-mauve", action="store_true", help="skip MAUVE")
    ev.add_argument(
        "--output-dir",
        required=True,
        help="a new or empty directory, or one `crocodil eval` wrote (its points with the same settings are kept: a killed sweep resumes)",
    )
    ev.add_argument("--overwrite", action="store_true", help="write into a non-empty directory crocodil did not write")


def run(args, rest=None) -> int:

    from ...pipelines import MODES
    from ...utils.files import claim_output_dir
    from ...utils.locate import locate_pipeline
    from ...utils.numbers import check_number

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if not modes or unknown:
        raise ValueError(
            f"--modes {args.modes!r} names unknown mode(s) {unknown}; expected some of {', '.join(MODES)}."
        )
    steps = int_list("--steps", args.steps)
    blocks = int_list("--block-length", args.block_length) or [args.gen_length]
    for option in ("gen_length", "num_samples", "batch_size"):
        check_number(f"--{option.replace('_', '-')}", getattr(args, option), minimum=1, integer=True)
    check_seed(args.seed, args.num_samples)
    sampling = prior_kwargs(args)
    check_number("--temperature", args.temperature, minimum=0)
    check_sources(args)
    source = locate_pipeline(args.pipeline)
    from ...evaluation.scorer import load_scorer
    from ...evaluation.sweep import check_sweep, plot_sweep, read_sweep, reference_programs, run_sweep, write_sweep
    from ...pipelines.pipeline_crocodil import CrocodilPipeline
    from ..distributed import end_process_group

    call_kwargs = {
        **({"remasking": args.remasking} if args.remasking != "low_confidence" else {}),
        **({"kv_cache": args.kv_cache} if args.kv_cache else {}),
        **{k: v for k, v in sampling.items() if k != "prior_steps" and v is not None},
    }
    grid = dict(gen_length=args.gen_length, num_samples=args.num_samples, references=None)
    check_sweep(CrocodilPipeline.from_configs(source), modes, steps, blocks, **grid,
                call_kwargs={"temperature": args.temperature, "prior_steps": args.prior_steps, **call_kwargs})  # fmt: skip
    from ...utils.shards import process_state

    state = process_state()  # under accelerate launch / torchrun: this process's place in the job
    previous = read_sweep(args.output_dir)  # an earlier, maybe killed, run of this sweep: its points are kept
    if state.is_main_process:
        claim_output_dir(args.output_dir, "eval", args.overwrite)
    pipe = CrocodilPipeline.from_pretrained(source)
    pipe.set_progress_bar_config(disable=not state.is_main_process)
    with state.main_process_first():  # one process builds the corpus cache, the others read it
        references = reference_programs(
            pipe, args.num_samples, args.gen_length, args.corpus, args.seed, split=args.corpus_split
        )
    scorer = load_scorer(args.scorer) if state.is_main_process else None
    sweep = run_sweep(
        pipe,
        scorer,
        modes=modes,
        steps=steps,
        block_lengths=blocks,
        gen_length=args.gen_length,
        num_samples=args.num_samples,
        batch_size=args.batch_size,
        prior_steps=args.prior_steps,
        references=references,
        seed=args.seed,
        temperature=args.temperature,
        compute_mauve=not args.no_mauve,
        call_kwargs=call_kwargs,
        resume=previous,
        on_point=(lambda so_far: write_sweep(stamped(so_far, args), args.output_dir))
        if state.is_main_process
        else None,
    )
    end_process_group()
    if not state.is_main_process:
        return 0
    kept = sum(p in (previous or {}).get("points", []) for p in sweep["points"])
    if kept:
        print(f"kept {kept} point(s) of the earlier run in {args.output_dir}")
    path = write_sweep(stamped(sweep, args), args.output_dir)
    plots = plot_sweep(sweep, args.output_dir)
    print_points(sweep)
    print(f"wrote {path} and {len(plots)} plot(s); scorer {sweep['scorer']}")
    return 0


def stamped(sweep: dict, args) -> dict:
    """The sweep with the command line and pipeline it was run with."""
    command = "crocodil eval " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["eval"] else "crocodil eval"
    return {**sweep, "command": command, "pipeline": str(args.pipeline)}


def check_sources(args) -> None:
    """`--corpus` and `--scorer` name things that exist, before anything loads."""
    from pathlib import Path

    from ...utils.files import DATA_FILE_BUILDERS
    from ...utils.locate import looks_local

    if args.corpus is not None and not Path(args.corpus).exists():
        raise ValueError(f"--corpus {args.corpus} does not exist; expected a directory of programs or a data file.")
    if args.corpus is not None and Path(args.corpus).is_file() and Path(args.corpus).suffix not in DATA_FILE_BUILDERS:
        raise ValueError(
            f"--corpus {args.corpus} is neither a directory of programs nor a data file "
            f"({', '.join(DATA_FILE_BUILDERS)}); give the folder that holds the code."
        )
    if args.scorer is not None and looks_local(args.scorer) and not Path(args.scorer).is_dir():
        raise ValueError(f"--scorer {args.scorer} is not a directory; expected a causal LM directory or Hub id.")


def print_points(sweep: dict) -> None:
    """One line per point: mode, block, steps, NFE and every metric it has."""
    from ...evaluation.metrics import METRICS

    for point in sweep["points"]:
        values = "  ".join(
            f"{metric.label} {metric.format(point['metrics'][name])}"
            for name, metric in METRICS.items()
            if point["metrics"].get(name) is not None
        )
        print(
            f"{point['mode']:>16} block {point['block_length']:>4} steps {point['steps']:>4} "
            f"NFE {point['nfe']['total']:7.2f}  {values}"
        )
