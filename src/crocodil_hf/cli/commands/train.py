"""`crocodil train STAGE --config C [--key value ...]`: one training stage (the stage table is
`training.stages.STAGES`). Works under `accelerate launch` and `torchrun`."""

import argparse


def register(subparsers) -> None:
    from ...training.stages import STAGE_NAMES  # names only: no torch

    train = subparsers.add_parser(
        "train",
        add_help=False,  # `crocodil train STAGE --help` lists every field of the stage arguments (`early_help`)
        help="run one training stage",
        description="Run a training stage with a YAML/JSON config; `--key value` pairs override config fields "
        "(any field of ModelArguments, DataArguments or TrainingArguments). Shipped configs: tiny-python/<stage>, "
        "paper/<stage>. Works under `accelerate launch` and `torchrun`.",
    )
    train.add_argument("stage", choices=list(STAGE_NAMES), help="the stage to run (`crocodil train STAGE --help`)")
    train.add_argument("--config", help="config file or shipped name, e.g. tiny-python/mdm")


def early_help(parser, argv: list[str]) -> int | None:
    """`crocodil train --help` (before a stage is named) and `crocodil train STAGE --help` (every field of the stage
    arguments); None when neither was asked."""
    if argv[:1] != ["train"] or not {"-h", "--help"} & set(argv):
        return None
    if len(argv) > 1 and argv[1] in ("-h", "--help"):
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        subparsers.choices["train"].print_help()
        print("\n`crocodil train STAGE --help` lists every field of a stage.")
        return 0
    args, _ = parser.parse_known_args(argv)
    from ...training.arguments import stage_argument_parser

    print(f"usage: crocodil train {args.stage} --config CONFIG [--key value ...]\n")
    stage_argument_parser(f"crocodil train {args.stage}").print_help()
    return 0


def run(args, rest) -> int:
    if args.config is None:
        raise ValueError("--config is required; give a config file or a shipped name such as tiny-python/mdm.")
    from ...training.run import parse_stage_arguments, run_stage
    from ..distributed import end_process_group

    model_args, data_args, training_args = parse_stage_arguments(
        args.config, rest, prog=f"crocodil train {args.stage}"
    )
    output = run_stage(args.stage, model_args, data_args, training_args)
    end_process_group()
    print(f"stage {args.stage} finished: {output}")
    return 0
