"""The `crocodil` command: generate, autoencode, interpolate, train, assemble, tokenizer, eval."""

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
        add_help=False,  # `crocodil train STAGE --help` lists every field of the stage arguments (see main)
        help="run one training stage",
        description="Run a training stage with a YAML/JSON config; `--key value` pairs override config fields "
        "(any field of ModelArguments, DataArguments or TrainingArguments). Shipped configs: tiny-python/<stage>, "
        "paper/<stage>. Works under `accelerate launch` and `torchrun`.",
    )
    from .training.run import STAGES

    train.add_argument("stage", choices=list(STAGES))
    train.add_argument("--config", help="config file or shipped name, e.g. tiny-python/mdm")

    config = sub.add_parser(
        "config",
        help="print the path of a shipped config (e.g. for `accelerate launch --config_file`)",
        description="Print the absolute path of a shipped config: tiny-python/<stage>, paper/<stage>, "
        "accelerate/fsdp, accelerate/deepspeed_zero3, accelerate/ds_zero3.",
    )
    config.add_argument("name", help="shipped config name, e.g. accelerate/fsdp")

    assemble = sub.add_parser("assemble", help="assemble a CrocodilPipeline directory from stage outputs")
    assemble.add_argument("--autoencoder", required=True, help="output of `crocodil train autoencoder`")
    assemble.add_argument("--prior", required=True, help="output of `crocodil train prior`")
    assemble.add_argument("--conditional-prior", help="output of `crocodil train conditional-prior`")
    assemble.add_argument("--output", required=True, help="pipeline directory to write")
    assemble.add_argument("--overwrite", action="store_true", help="replace an existing pipeline directory")

    gen = sub.add_parser(
        "generate",
        help="generate Python programs (default: the shipped crocodil-python-tiny, ConWithinDisc)",
        description="Sample programs with a CRoCoDiL pipeline; prints them with the NFE breakdown and wall time.",
    )
    _pipeline_arg(gen)
    gen.add_argument("--mode", default="con_within_disc", choices=["con_within_disc", "con_then_disc", "mdm"])
    gen.add_argument("--num-samples", type=int, default=4)
    gen.add_argument("--steps", type=int, default=16, help="demasker calls (default 16 = L/4)")
    gen.add_argument("--gen-length", type=int, default=None, help="tokens to generate (default: the model's L)")
    gen.add_argument("--block-length", type=int, default=None)
    gen.add_argument("--prior-steps", type=int, default=50)
    gen.add_argument("--temperature", type=float, default=0.0)
    gen.add_argument("--threshold", type=float, default=None, help="confidence threshold (adaptive calls)")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--output", help="also write the samples as JSONL")

    ae = sub.add_parser("autoencode", help="encode a file to registers and decode it back; prints the CER")
    _pipeline_arg(ae)
    ae.add_argument("file")
    ae.add_argument("--steps", type=int, default=16)
    ae.add_argument("--gen-length", type=int, default=None)
    ae.add_argument("--num-registers", type=int, default=None, help="k <= K registers to decode from")

    it = sub.add_parser("interpolate", help="decode linear interpolations between two files' registers (App. D)")
    _pipeline_arg(it)
    it.add_argument("file_a")
    it.add_argument("file_b")
    it.add_argument("--alphas", default="0,0.25,0.5,0.75,1")
    it.add_argument("--steps", type=int, default=16)
    it.add_argument("--gen-length", type=int, default=None)

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
    ev.add_argument(
        "--remasking",
        choices=("low_confidence", "random"),
        default="low_confidence",
        help="which candidates each step commits (random + --temperature 1 is ancestral sampling)",
    )
    ev.add_argument("--scorer", default=None, help="causal LM dir/Hub id (default: offline SmolLM2-135M)")
    ev.add_argument("--corpus", default=None, help="held-out programs source (default: CPython stdlib)")
    ev.add_argument("--seed", type=int, default=0)
    ev.add_argument("--no-mauve", action="store_true", help="skip MAUVE")
    ev.add_argument("--output-dir", required=True)

    push = sub.add_parser("push", help="push a pipeline or a stage output (with its model card) to the Hub")
    push.add_argument("directory", help="a pipeline directory or a stage output directory")
    push.add_argument("repo_id", help="org/name on the Hub")
    push.add_argument("--revision", default=None, help="branch to push to (created from main if missing)")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.add_argument("--commit-message", default=None)

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
    if args.command == "train" and {"-h", "--help"} & set(rest):
        from .training.arguments import stage_argument_parser

        print(f"usage: crocodil train {args.stage} --config CONFIG [--key value ...]\n")
        stage_argument_parser(f"crocodil train {args.stage}").print_help()
        return 0
    try:
        if args.command == "config":
            from .training.arguments import resolve_config

            print(resolve_config(args.name).resolve())
        elif args.command == "train":
            from .training.run import parse_stage_arguments, run_stage

            if args.config is None:
                raise ValueError("--config is required (a config file or a shipped name such as tiny-python/mdm).")
            model_args, data_args, training_args = parse_stage_arguments(
                args.config, rest, prog=f"crocodil train {args.stage}"
            )
            output = run_stage(args.stage, model_args, data_args, training_args)
            print(f"stage {args.stage} finished: {output}")
        elif args.command == "assemble":
            from .training.run import assemble_pipeline

            assemble_pipeline(args.autoencoder, args.prior, args.output, args.conditional_prior, args.overwrite)
            print(f"pipeline written to {args.output}")
        elif args.command == "generate":
            return run_generate(args)
        elif args.command == "autoencode":
            return run_autoencode(args)
        elif args.command == "interpolate":
            return run_interpolate(args)
        elif args.command == "push":
            return run_push(args)
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


def _pipeline_arg(parser) -> None:
    parser.add_argument(
        "--pipeline",
        default="crocodil-python-tiny",
        help="pipeline directory, Hub id, or shipped name (default: crocodil-python-tiny)",
    )


def _load(name: str):
    from .pipelines.pipeline_crocodil import CrocodilPipeline

    return CrocodilPipeline.from_pretrained(name)  # resolves shipped names itself


def _model_length(pipe) -> int:
    """The generation length L the pipeline was trained for (max_length − 1), recorded at assembly time."""
    return int(getattr(pipe.demasker.config, "default_gen_length", 64))


def _read_program(path: str, pipe, gen_length: int) -> tuple[str, bool]:
    from pathlib import Path

    text = Path(path).read_text(encoding="utf-8")
    if not text.strip():
        raise ValueError(f"{path} is empty.")
    ids = pipe.tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) < gen_length:
        return text, False
    kept = pipe.tokenizer.decode(ids[: gen_length - 1])
    return kept[: kept.rfind("\n") + 1] or kept, True


def run_generate(args) -> int:
    import json

    import torch

    if args.num_samples < 1:
        raise ValueError(f"--num-samples must be >= 1, got {args.num_samples}.")
    pipe = _load(args.pipeline)
    gen_length = args.gen_length or _model_length(pipe)
    generators = [torch.Generator().manual_seed(args.seed + i) for i in range(args.num_samples)]
    out = pipe(
        mode=args.mode,
        num_samples=args.num_samples,
        gen_length=gen_length,
        block_length=args.block_length,
        steps=args.steps,
        prior_steps=args.prior_steps,
        temperature=args.temperature,
        threshold=args.threshold,
        generator=generators,
    )
    for i, text in enumerate(out.texts):
        print(f"# ---- sample {i} ({args.mode}, seed {args.seed + i}) ----")
        print(text.rstrip("\n"))
    nfe = out.nfe
    print(
        f"# NFE: {nfe['demasker_calls']} demasker calls, {nfe['prior_calls']} prior calls, "
        f"{nfe['encoder_calls']} encoder calls = {nfe['total']:.2f} demasker-forward equivalents"
    )
    print(f"# wall time: {out.wall_time:.2f} s for {args.num_samples} samples of {gen_length} tokens")
    if args.output:
        with open(args.output, "w", encoding="utf-8") as f:
            for i, text in enumerate(out.texts):
                f.write(
                    json.dumps(
                        {
                            "text": text,
                            "mode": args.mode,
                            "seed": args.seed + i,
                            "steps": args.steps,
                            "gen_length": gen_length,
                            "nfe": nfe,
                        }
                    )
                    + "\n"
                )
        print(f"# wrote {args.output}")
    return 0


def run_autoencode(args) -> int:
    from .evaluation.metrics import cer

    pipe = _load(args.pipeline)
    gen_length = args.gen_length or _model_length(pipe)
    text, truncated = _read_program(args.file, pipe, gen_length)
    if truncated:
        print(f"# note: {args.file} is longer than {gen_length - 1} tokens; autoencoding its first complete lines")
    out = pipe(
        mode="autoencode", text=[text], gen_length=gen_length, steps=args.steps, num_registers=args.num_registers
    )
    print("# ---- reconstruction ----")
    print(out.texts[0].rstrip("\n"))
    print(
        f"# CER {cer([text], out.texts)['cer']:.3f}; NFE {out.nfe['demasker_calls']} demasker calls, "
        f"{out.nfe['encoder_calls']} encoder call; {out.wall_time:.2f} s"
    )
    return 0


def run_interpolate(args) -> int:
    pipe = _load(args.pipeline)
    gen_length = args.gen_length or _model_length(pipe)
    alphas = [float(a) for a in args.alphas.split(",")]
    text_a, _ = _read_program(args.file_a, pipe, gen_length)
    text_b, _ = _read_program(args.file_b, pipe, gen_length)
    texts = pipe.interpolate(text_a, text_b, alphas=alphas, gen_length=gen_length, steps=args.steps)
    for alpha, text in zip(alphas, texts):
        print(f"# ---- alpha = {alpha:g} ----")
        print(text.rstrip("\n"))
    return 0


def run_push(args) -> int:
    from pathlib import Path

    from huggingface_hub import HfApi

    from .evaluation.model_card import minimal_card

    folder = Path(args.directory)
    if not folder.is_dir() or not any(folder.iterdir()):
        raise ValueError(f"{folder} is not a non-empty directory.")
    if args.repo_id.count("/") != 1:
        raise ValueError(f"repo_id must look like org/name, got {args.repo_id!r}.")
    api = HfApi()
    url = api.create_repo(args.repo_id, private=args.private, exist_ok=True)
    if args.revision and args.revision != "main":
        api.create_branch(args.repo_id, branch=args.revision, exist_ok=True)
    if not (folder / "README.md").exists():
        card = minimal_card(folder, args.repo_id)
        api.upload_file(
            path_or_fileobj=str(card).encode(),
            path_in_repo="README.md",
            repo_id=args.repo_id,
            revision=args.revision,
            commit_message="Add model card",
        )
    info = api.upload_folder(
        folder_path=str(folder),
        repo_id=args.repo_id,
        revision=args.revision,
        commit_message=args.commit_message or f"Upload {folder.name} with crocodil push",
        ignore_patterns=["checkpoint-*", "checkpoint-*/**", "*.pt", "*.bin"],
    )
    print(f"pushed {folder} to {url} (revision {args.revision or 'main'}, commit {info.oid})")
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
    pipe = CrocodilPipeline.from_pretrained(args.pipeline)
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
        call_kwargs={"remasking": args.remasking} if args.remasking != "low_confidence" else None,
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


if __name__ == "__main__":
    sys.exit(main())
