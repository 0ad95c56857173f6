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
        elif args.command == "tokenizer":
            from .training.run import train_tokenizer_command

            train_tokenizer_command(args.corpus, args.vocab_size, args.output)
            print(f"tokenizer written to {args.output}")
    except ValueError as err:
        print(f"crocodil {args.command}: error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
