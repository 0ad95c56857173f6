"""The `crocodil` command: train, assemble, tokenizer (generate, autoencode, eval, push arrive with their issues)."""

import argparse
import logging
import sys


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="crocodil", description="CRoCoDiL: continuous-register guided masked diffusion for language."
    )
    parser.add_argument("--version", action="version", version=f"crocodil_hf {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser(
        "train",
        help="run one training stage",
        description="Run a training stage with a YAML/JSON config; `--key value` pairs override config fields "
        "(any field of ModelArguments, DataArguments or TrainingArguments). Shipped configs: tiny-python/<stage>, "
        "paper/<stage>. Works under `accelerate launch` and `torchrun`.",
    )
    from .training.run import STAGES

    train.add_argument("stage", choices=STAGES)
    train.add_argument("--config", required=True, help="config file or shipped name, e.g. tiny-python/mdm")

    assemble = sub.add_parser("assemble", help="assemble a CrocodilPipeline directory from stage outputs")
    assemble.add_argument("--autoencoder", required=True, help="output of `crocodil train autoencoder`")
    assemble.add_argument("--prior", required=True, help="output of `crocodil train prior`")
    assemble.add_argument("--conditional-prior", help="output of `crocodil train conditional-prior`")
    assemble.add_argument("--output", required=True, help="pipeline directory to write")
    assemble.add_argument("--overwrite", action="store_true", help="replace an existing pipeline directory")

    ev = sub.add_parser(
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
    ev.add_argument("--gen-length", type=int, default=64)
    ev.add_argument("--num-samples", type=int, default=16)
    ev.add_argument("--batch-size", type=int, default=8)
    ev.add_argument("--prior-steps", type=int, default=50)
    ev.add_argument("--temperature", type=float, default=0.0)
    ev.add_argument("--scorer", default=None, help="causal LM dir/Hub id (default: offline SmolLM2-135M)")
    ev.add_argument("--corpus", default=None, help="held-out programs source (default: CPython stdlib)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--no-mauve", action="store_true", help="skip MAUVE")
    ev.add_argument("--output-dir", required=True)

    tok = sub.add_parser("tokenizer", help="train a byte-level BPE tokenizer (BOS, EOS, PAD, MASK)")
    tok.add_argument("--corpus", help="directory of source files (default: the CPython standard library)")
    tok.add_argument("--vocab-size", type=int, default=8192)
    tok.add_argument("--output", required=True)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, rest = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if rest and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        if args.command == "train":
            from .training.run import parse_stage_arguments, run_stage

            model_args, data_args, training_args = parse_stage_arguments(args.config, rest)
            output = run_stage(args.stage, model_args, data_args, training_args)
            print(f"stage {args.stage} finished: {output}")
        elif args.command == "assemble":
            from .training.run import assemble_pipeline

            assemble_pipeline(args.autoencoder, args.prior, args.output, args.conditional_prior, args.overwrite)
            print(f"pipeline written to {args.output}")
        elif args.command == "eval":
            return run_eval(args)
        elif args.command == "tokenizer":
            from .training.run import train_tokenizer_command

            train_tokenizer_command(args.corpus, args.vocab_size, args.output)
            print(f"tokenizer written to {args.output}")
    except ValueError as err:
        print(f"crocodil {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


def _int_list(value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        return [int(v) for v in value.split(",") if v.strip()]
    except ValueError as err:
        raise ValueError(f"expected a comma list of integers, got {value!r}.") from err


def run_eval(args) -> int:
    from .evaluation.scorer import load_scorer
    from .evaluation.sweep import check_sweep, plot_sweep, reference_programs, run_sweep, write_sweep
    from .pipelines.pipeline_crocodil import CrocodilPipeline

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    steps = _int_list(args.steps)
    blocks = _int_list(args.block_length) or [args.gen_length]
    pipe = CrocodilPipeline.from_pretrained(resolve_pipeline(args.pipeline))
    check_sweep(pipe, modes, steps, blocks, args.gen_length, args.num_samples, None)
    references = reference_programs(pipe, args.num_samples, args.gen_length, args.corpus, args.seed)
    scorer = load_scorer(args.scorer)
    sweep = run_sweep(
        pipe,
        scorer,
        modes,
        steps,
        blocks,
        args.gen_length,
        args.num_samples,
        args.batch_size,
        args.prior_steps,
        references,
        args.seed,
        args.temperature,
        compute_mauve=not args.no_mauve,
    )
    sweep["command"] = "crocodil eval " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["eval"] else "crocodil eval"
    sweep["pipeline"] = str(args.pipeline)
    path = write_sweep(sweep, args.output_dir)
    plots = plot_sweep(sweep, args.output_dir)
    for point in sweep["points"]:
        m = point["metrics"]
        print(
            f"{point['mode']:>16} block {point['block_length']:>4} steps {point['steps']:>4} "
            f"NFE {point['nfe']['total']:7.2f}  Gen-PPL {m['gen_ppl']:8.2f}  entropy {m['entropy']:.2f}"
            + (f"  MAUVE {m['mauve']:.3f}" if "mauve" in m else "")
            + (f"  CER {m['cer']:.3f}" if "cer" in m else "")
        )
    print(f"wrote {path} and {len(plots)} plot(s); scorer {sweep['scorer']}")
    return 0


def resolve_pipeline(name_or_path: str) -> str:
    """A directory, a Hub id, or the name of a pipeline shipped inside the package."""
    from pathlib import Path

    shipped = Path(__file__).parent / "pretrained" / name_or_path
    if not Path(name_or_path).exists() and (shipped / "model_index.json").exists():
        return str(shipped)
    return name_or_path


if __name__ == "__main__":
    sys.exit(main())
