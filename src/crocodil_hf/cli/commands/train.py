"""`crocodil train STAGE --config C [--key value ...]`: one training stage (the stage table is
`training.stages.STAGES`). Works under `accelerate launch` and `torchrun`."""

import argparse
import os
from pathlib import Path


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
    print(f"usage: crocodil train {args.stage} --config CONFIG [--key value ...]\n")
    print(stage_help().replace(HELP_PROG, f"crocodil train {args.stage}"), end="")
    return 0


HELP_PROG = "crocodil train STAGE"


def stage_help() -> str:
    """The help of every stage field. Building it imports torch and transformers (~15 s); the text is cached per
    version of crocodil_hf, transformers and torch (read from their metadata, not imported) and per state of the
    fields' module, so a second `crocodil train STAGE --help` answers at once."""
    import hashlib
    import io
    from contextlib import redirect_stdout
    from importlib.metadata import version

    from ... import __version__
    from ...utils.locate import default_cache_dir

    fields = Path(__file__).resolve().parents[2] / "training" / "arguments.py"  # the stage fields, unimported
    key = hashlib.sha256(
        f"{__version__}:{version('transformers')}:{version('torch')}:{fields.stat().st_mtime_ns}".encode()
    ).hexdigest()[:16]
    cached = default_cache_dir() / "help" / f"train-{key}.txt"
    if cached.is_file():
        return cached.read_text(encoding="utf-8")
    from ...training.arguments import stage_argument_parser

    text = io.StringIO()
    with redirect_stdout(text):
        stage_argument_parser(HELP_PROG).print_help()
    try:
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(f".{os.getpid()}.tmp")
        partial.write_text(text.getvalue(), encoding="utf-8")
        partial.replace(cached)  # atomic: a concurrent reader sees the whole text or none
    except OSError:
        pass  # a read-only cache: answer anyway
    return text.getvalue()


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
