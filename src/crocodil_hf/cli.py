"""The `crocodil` command: generate, autoencode, interpolate, train, assemble, tokenizer, eval."""

import argparse
import logging
import os
import sys
import traceback

HELP = {  # the help of options several commands share
    "mode": "con_within_disc / con_then_disc: registers from the priors (Alg. 3 / 2); mdm: plain masked diffusion "
    "(default con_within_disc)",
    "block_length": "semi-autoregressive blocks of this many tokens (default: one block)",
    "temperature": "Gumbel temperature of the demasker's samples; 0 = greedy (default 0)",
    "seed": "random seed (default 0)",
    "reconstruction_length": "tokens to decode (default: the model's L; a longer file is cut after its last whole "
    "line that fits)",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command; imports nothing heavy (`crocodil --help` answers at once)."""
    from . import __version__
    from .pipelines import generation_modes
    from .schedulers import PRIOR_SOLVER_NAMES, REMASKING

    parser = argparse.ArgumentParser(
        prog="crocodil", description="CRoCoDiL: continuous-register guided masked diffusion for language."
    )
    parser.add_argument("--version", action="version", version=f"crocodil_hf {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (also CROCODIL_DEBUG=1); allowed anywhere"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = sub.add_parser(
        "train",
        add_help=False,  # `crocodil train STAGE --help` lists every field of the stage arguments (see main)
        help="run one training stage",
        description="Run a training stage with a YAML/JSON config; `--key value` pairs override config fields "
        "(any field of ModelArguments, DataArguments or TrainingArguments). Shipped configs: tiny-python/<stage>, "
        "paper/<stage>. Works under `accelerate launch` and `torchrun`.",
    )
    from .training.stages import STAGES  # names only: no torch

    train.add_argument("stage", choices=list(STAGES), help="the stage to run (`crocodil train STAGE --help`)")
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
    assemble.add_argument("--distilled-prior", help="output of `crocodil train prior-distill` (optional)")
    assemble.add_argument(
        "--distilled-conditional-prior", help="output of `crocodil train conditional-prior-distill` (optional)"
    )
    assemble.add_argument(
        "--prior-scheduler", default="ddim", choices=PRIOR_SOLVER_NAMES, help="the priors' sampler saved with it"
    )
    assemble.add_argument(
        "--prior-steps", type=int, default=50, help="steps of the (teacher) priors when a call gives none"
    )
    assemble.add_argument(
        "--conditional-prior-steps",
        type=int,
        default=None,
        help="steps of the (teacher) conditional prior when a call gives none (default: --prior-steps)",
    )
    assemble.add_argument(
        "--distilled-steps",
        type=int,
        default=None,
        help="steps of the distilled priors when a call gives none (default: the steps each was distilled for)",
    )
    assemble.add_argument(
        "--num-registers",
        type=int,
        default=None,
        help="k <= K registers the demasker sees when they are sampled from a prior and a call gives none "
        "(default: K)",
    )
    assemble.add_argument(
        "--mdm-demasker",
        help='output of `crocodil train mdm`: the plain-MDM baseline that `mode="mdm"` runs (optional)',
    )
    assemble.add_argument("--output", required=True, help="pipeline directory to write")
    assemble.add_argument("--overwrite", action="store_true", help="replace an existing pipeline directory")

    gen = sub.add_parser(
        "generate",
        help="generate Python programs (default: the shipped crocodil-python-tiny, ConWithinDisc)",
        description="Sample programs with a CRoCoDiL pipeline; prints them with the NFE breakdown and wall time.",
    )
    _pipeline_arg(gen)
    gen.add_argument("--mode", default="con_within_disc", choices=generation_modes(), help=HELP["mode"])
    gen.add_argument("--num-samples", type=int, default=4, help="programs to sample (default 4)")
    gen.add_argument("--steps", type=int, default=16, help="demasker calls (default 16 = L/4)")
    gen.add_argument("--gen-length", type=int, default=None, help="tokens to generate (default: the model's L)")
    gen.add_argument("--block-length", type=int, default=None, help=HELP["block_length"])
    _prior_args(gen)
    gen.add_argument("--temperature", type=float, default=0.0, help=HELP["temperature"])
    gen.add_argument("--eos-penalty", type=float, default=0.0, help="lower the EOS logit by this much (0 = off)")
    gen.add_argument("--threshold", type=float, default=None, help="confidence threshold (adaptive calls)")
    gen.add_argument("--seed", type=int, default=0, help=HELP["seed"])
    gen.add_argument("--output", help="also write the samples as JSONL (a new file)")
    gen.add_argument("--overwrite", action="store_true", help="replace an existing --output file")

    for name, helptext in (
        ("complete", "continue a program: its first lines (or --prompt) stay fixed, the next --gen-length tokens are "
                     "generated (App. H)"),
        ("infill", "regenerate lines START:END of a file between the fixed lines before and after them"),
    ):  # fmt: skip
        cmd = sub.add_parser(name, help=helptext, description=helptext[0].upper() + helptext[1:] + ".")
        _pipeline_arg(cmd)
        if name == "complete":
            cmd.add_argument("file", nargs="?", help="program to continue (omit with --prompt)")
            group = cmd.add_mutually_exclusive_group()
            group.add_argument("--lines", type=int, default=None, help="keep the first N lines as the prompt")
            group.add_argument("--prompt", default=None, help="prompt text instead of a file")
        else:
            cmd.add_argument("file", help="program whose lines START:END are regenerated")
            cmd.add_argument("--span", required=True, help="START:END, 1-based inclusive line numbers")
        cmd.add_argument("--mode", default="con_within_disc", choices=generation_modes(), help=HELP["mode"])
        cmd.add_argument("--num-samples", type=int, default=1, help="samples to draw (default 1)")
        cmd.add_argument("--steps", type=int, default=8, help="demasker calls over the span")
        cmd.add_argument("--gen-length", type=int, default=32, help="tokens to generate (the span's length)")
        _prior_args(cmd)
        cmd.add_argument("--temperature", type=float, default=0.0, help=HELP["temperature"])
        cmd.add_argument("--eos-penalty", type=float, default=0.0, help="lower the EOS logit by this much (0 = off)")
        cmd.add_argument("--seed", type=int, default=0, help=HELP["seed"])

    ae = sub.add_parser("autoencode", help="encode a file to registers and decode it back; prints the CER")
    _pipeline_arg(ae)
    ae.add_argument("file", help="program to autoencode")
    ae.add_argument("--steps", type=int, default=16, help="demasker calls (default 16)")
    ae.add_argument("--gen-length", type=int, default=None, help=HELP["reconstruction_length"])
    ae.add_argument("--num-registers", type=int, default=None, help="k <= K registers to decode from")

    it = sub.add_parser("interpolate", help="decode linear interpolations between two files' registers (App. D)")
    _pipeline_arg(it)
    it.add_argument("file_a", help="program at alpha = 0")
    it.add_argument("file_b", help="program at alpha = 1")
    it.add_argument("--alphas", default="0,0.25,0.5,0.75,1", help="comma list of weights of file_b in [0, 1]")
    it.add_argument("--steps", type=int, default=16, help="demasker calls per decode (default 16)")
    it.add_argument("--gen-length", type=int, default=None, help=HELP["reconstruction_length"])

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
    ev.add_argument("--gen-length", type=int, default=64, help="tokens per sample (default 64)")
    ev.add_argument(
        "--num-samples", type=int, default=16, help="samples per point, and reference programs (default 16)"
    )
    ev.add_argument("--batch-size", type=int, default=8, help="samples per pipeline call (default 8)")
    _prior_args(ev)
    ev.add_argument("--temperature", type=float, default=0.0, help=HELP["temperature"])
    ev.add_argument(
        "--remasking",
        choices=REMASKING,
        default="low_confidence",
        help="which candidates each step commits (random + --temperature 1 is ancestral sampling)",
    )
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
    ev.add_argument("--output-dir", required=True, help="a new or empty directory (or one `crocodil eval` wrote)")
    ev.add_argument("--overwrite", action="store_true", help="write into a non-empty directory crocodil did not write")

    push = sub.add_parser("push", help="push a pipeline or a stage output (with its model card) to the Hub")
    push.add_argument("directory", help="a pipeline directory or a stage output directory")
    push.add_argument("repo_id", help="org/name on the Hub")
    push.add_argument("--revision", default=None, help="branch to push to (created from main if missing)")
    push.add_argument("--private", action="store_true", help="create the repository as private")
    push.add_argument(
        "--commit-message", default=None, help="the Hub commit's message (default: one naming the folder)"
    )

    tok = sub.add_parser("tokenizer", help="train a byte-level BPE tokenizer (BOS, EOS, PAD, MASK)")
    tok.add_argument("--corpus", help="directory of source files (default: the CPython standard library)")
    tok.add_argument("--vocab-size", type=int, default=8192, help="BPE vocabulary size, >= 260 (default 8192)")
    tok.add_argument("--output", required=True, help="a new or empty directory")
    tok.add_argument(
        "--overwrite", action="store_true", help="write into a non-empty directory crocodil did not write"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the `crocodil` command; returns the exit status (0 ok, 2 a user error, 1 an unexpected failure, 130 an
    interrupt). Errors print one line, `crocodil <command>: error: <what>; <what is allowed>`; `--debug` (anywhere
    on the command line) or `CROCODIL_DEBUG=1` adds the traceback."""
    argv = list(sys.argv[1:] if argv is None else argv)
    # `--debug` without a value (with one, it is TrainingArguments' `debug` field of `crocodil train`)
    flags = [i for i, a in enumerate(argv) if a == "--debug" and (i + 1 == len(argv) or argv[i + 1].startswith("-"))]
    argv = [a for i, a in enumerate(argv) if i not in flags]
    debug = bool(flags) or os.environ.get("CROCODIL_DEBUG", "").lower() not in ("", "0", "false", "no")
    parser = build_parser()
    if argv[:1] == ["train"] and len(argv) > 1 and argv[1] in ("-h", "--help"):  # before a stage is named
        subparsers = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        subparsers.choices["train"].print_help()
        print("\n`crocodil train STAGE --help` lists every field of a stage.")
        return 0
    args, rest = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if rest and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    if args.command == "train" and {"-h", "--help"} & set(rest):
        from .training.arguments import stage_argument_parser

        print(f"usage: crocodil train {args.stage} --config CONFIG [--key value ...]\n")
        stage_argument_parser(f"crocodil train {args.stage}").print_help()
        return 0
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    name = f"train {args.stage}" if args.command == "train" else args.command
    try:
        return COMMANDS[args.command](args, rest) or 0
    except KeyboardInterrupt:
        print(f"crocodil {name}: interrupted", file=sys.stderr)
        return 130
    except Exception as err:  # noqa: BLE001  (the one place every failure becomes one line)
        if debug:
            traceback.print_exc()
        message, status = explain_error(err)
        hint = "" if debug else " (rerun with --debug for the traceback)"
        print(f"crocodil {name}: error: {message}" + (hint if status == 1 else ""), file=sys.stderr)
        return status


def explain_error(err: BaseException) -> tuple[str, int]:
    """One line for an exception and the exit status: 2 for what the user can fix (bad values, paths, files, the
    network, a full disk), 1 for an unexpected failure (a bug: the line names the exception type)."""
    import errno

    if isinstance(err, UnicodeDecodeError):
        return f"a file is not UTF-8 text ({err.reason} at byte {err.start}); convert it to UTF-8.", 2
    if isinstance(err, ValueError):
        return str(err).strip() or type(err).__name__, 2
    disk_full = isinstance(err, OSError) and err.errno == errno.ENOSPC
    # torch.save reports a full disk as a RuntimeError of its zip writer ("unexpected pos", "failed writing file")
    disk_full |= isinstance(err, RuntimeError) and any(
        marker in str(err) for marker in ("unexpected pos", "PytorchStreamWriter failed writing", "No space left")
    )
    if disk_full:
        where = f" while writing {err.filename}" if getattr(err, "filename", None) else ""
        return f"no space left on device{where}; free some space and rerun the same command.", 2
    hub = _hub_error(err)
    if hub:
        return hub, 2
    if any(type(e).__module__.startswith("datasets") for e in _chain(err)):  # a corpus that does not load
        root = list(_chain(err))[-1]  # the parser's own complaint, e.g. the JSON error and its line
        first = str(root).strip().splitlines()[0] if str(root).strip() else type(root).__name__
        return f"the corpus could not be read ({type(root).__name__}: {first}); check the corpus files.", 2
    if type(err).__name__ == "SafetensorError":
        return f"a weights file is not a valid safetensors file ({err}); re-download or re-save it.", 2
    if isinstance(err, OSError):
        if err.filename is not None and err.strerror:
            return f"{err.strerror}: {err.filename}; check the path.", 2
        return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__, 2
    return f"unexpected {type(err).__name__}: {err}", 1


def _hub_error(err: BaseException) -> str | None:
    """A readable line for failures to reach or find something on the Hugging Face Hub."""
    names = {type(e).__name__ for e in _chain(err)}
    if names & {
        "OfflineModeIsEnabled",
        "LocalEntryNotFoundError",
        "ConnectError",
        "ConnectTimeout",
        "TimeoutException",
    }:
        return (
            "cannot reach the Hugging Face Hub (offline or no network); use a local directory, or set HF_HUB_OFFLINE=0 "
            "and check the connection."
        )
    if names & {"RepositoryNotFoundError", "RevisionNotFoundError", "EntryNotFoundError", "GatedRepoError"}:
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        return f"not found on the Hugging Face Hub ({first}); check the repository id, revision and your token."
    if "HfHubHTTPError" in names:
        return f"the Hugging Face Hub refused the request: {str(err).strip().splitlines()[0]}"
    return None


def _chain(err: BaseException):
    while err is not None:
        yield err
        err = err.__cause__ or err.__context__


def run_config(args, rest) -> int:
    from .training.arguments import resolve_config

    print(resolve_config(args.name).resolve())
    return 0


def run_train(args, rest) -> int:
    if args.config is None:
        raise ValueError("--config is required; give a config file or a shipped name such as tiny-python/mdm.")
    from .training.run import parse_stage_arguments, run_stage

    model_args, data_args, training_args = parse_stage_arguments(
        args.config, rest, prog=f"crocodil train {args.stage}"
    )
    output = run_stage(args.stage, model_args, data_args, training_args)
    _end_process_group()
    print(f"stage {args.stage} finished: {output}")
    return 0


def _end_process_group(store=None) -> None:
    """Under torchrun / accelerate launch: leave the job in order, then destroy the process group before the process
    exits (a gloo rank that exited with its group alive was seen to abort in teardown: "terminate called without an
    active exception", status -6, after the stage had finished).

    The ranks meet on the rendezvous store, not in a gloo collective: a rank that destroys its group closes its gloo
    sockets, and a rank still inside a collective on them then fails with "Connection closed by peer" (seen once in
    CI: rank 1 failed that way after the autoencoder stage had saved, with rank 0 done). Every rank first waits until
    all have arrived here, so none is inside a collective any more; rank 0, which may host the store, leaves last,
    after every other rank has made its last store call."""
    import gc

    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        return
    if store is None:
        store = dist.distributed_c10d._get_default_store()
    rank, world = dist.get_rank(), dist.get_world_size()
    if store.add("crocodil/end/arrived", 1) == world:
        store.set("crocodil/end/all-arrived", "1")
    store.wait(["crocodil/end/all-arrived"])
    if rank != 0 and store.add("crocodil/end/left", 1) == world - 1:  # the last use of the store by ranks > 0
        store.set("crocodil/end/all-left", "1")
    if rank == 0 and world > 1:
        store.wait(["crocodil/end/all-left"])
    gc.collect()  # drop unreachable wrapped models (trainer cycles) so the group's last references go with it
    dist.destroy_process_group()


def run_assemble(args, rest) -> int:
    from .utils.files import claim_output_dir
    from .utils.numbers import check_number

    _check_stage_dir("--autoencoder", args.autoencoder, "autoencoder", ["demasker/config.json", "encoder/config.json"])
    _check_stage_dir("--prior", args.prior, "prior", ["config.json"])
    for option, stage in (
        ("conditional_prior", "conditional-prior"),
        ("distilled_prior", "prior-distill"),
        ("distilled_conditional_prior", "conditional-prior-distill"),
    ):
        if getattr(args, option):
            _check_stage_dir(f"--{option.replace('_', '-')}", getattr(args, option), stage, ["config.json"])
    if args.mdm_demasker:
        _check_stage_dir("--mdm-demasker", args.mdm_demasker, "mdm", ["config.json"])
    check_number("--prior-steps", args.prior_steps, minimum=1, integer=True)
    check_number("--conditional-prior-steps", args.conditional_prior_steps, minimum=1, integer=True, allow_none=True)
    if args.conditional_prior_steps is not None and not args.conditional_prior:
        raise ValueError("--conditional-prior-steps sets the conditional prior's steps, but no --conditional-prior.")
    check_number("--distilled-steps", args.distilled_steps, minimum=1, integer=True, allow_none=True)
    check_number("--num-registers", args.num_registers, minimum=1, integer=True, allow_none=True)
    _check_assembled_registers(args)
    if args.distilled_steps is not None and not (args.distilled_prior or args.distilled_conditional_prior):
        raise ValueError("--distilled-steps needs --distilled-prior or --distilled-conditional-prior.")
    claim_output_dir(args.output, "assemble", args.overwrite)
    from .pipelines.assembly import assemble_pipeline

    assemble_pipeline(
        args.autoencoder,
        args.prior,
        args.output,
        args.conditional_prior,
        args.overwrite,
        distilled_prior_dir=args.distilled_prior,
        distilled_conditional_prior_dir=args.distilled_conditional_prior,
        prior_scheduler=args.prior_scheduler,
        default_prior_steps=args.prior_steps,
        default_conditional_prior_steps=args.conditional_prior_steps,
        distilled_steps=args.distilled_steps,
        mdm_demasker_dir=args.mdm_demasker,
        default_num_registers=args.num_registers,
    )
    print(f"pipeline written to {args.output}")
    return 0


def _check_assembled_registers(args) -> None:
    """`--num-registers` against the demasker's K and the k of prefix priors, read from the components' configs so
    `crocodil assemble` refuses before it claims the output directory (`check_prior_registers`: the pipeline's own
    rules, applied again when it is built)."""
    import json
    from pathlib import Path

    from .pipelines.components import check_prior_registers

    def registers(path) -> int | None:
        return json.loads(Path(path, "config.json").read_text()).get("num_registers")

    K = registers(Path(args.autoencoder, "demasker"))
    if K is None:
        return
    priors = {
        f"--{option}": registers(getattr(args, option.replace("-", "_")))
        for option in ("prior", "conditional-prior", "distilled-prior", "distilled-conditional-prior")
        if getattr(args, option.replace("-", "_"))
    }
    check_prior_registers(
        K, {name: k for name, k in priors.items() if k is not None}, args.num_registers, "--num-registers"
    )


def _check_stage_dir(option: str, value: str, stage: str, needs: list[str]) -> None:
    from pathlib import Path

    expected = f"expected the output directory of `crocodil train {stage}`"
    if not Path(value).is_dir():
        raise ValueError(f"{option} {value} is not a directory; {expected}.")
    missing = [name for name in needs if not Path(value, name).is_file()]
    if missing:
        raise ValueError(f"{option} {value} has no {', '.join(missing)}; {expected}.")


def run_tokenizer(args, rest) -> int:
    from pathlib import Path

    from .utils.files import claim_output_dir
    from .utils.numbers import check_number

    check_number("--vocab-size", args.vocab_size, minimum=260, integer=True)
    if args.corpus is not None and not Path(args.corpus).is_dir():
        raise ValueError(f"--corpus {args.corpus} is not a directory; expected a directory of source files.")
    claim_output_dir(args.output, "tokenizer", args.overwrite)
    from .training.run import train_tokenizer_command

    train_tokenizer_command(args.corpus, args.vocab_size, args.output)
    print(f"tokenizer written to {args.output}")
    return 0


def _prior_args(parser) -> None:
    """How z₀ is sampled (the commands that sample from the priors); unset = the pipeline's saved choice."""
    from .schedulers import PRIOR_SOLVER_NAMES

    parser.add_argument("--prior-steps", type=int, default=None, help="steps of the priors (default: the pipeline's)")
    parser.add_argument(
        "--conditional-prior-steps",
        type=int,
        default=None,
        help="steps of the conditional prior (ConWithinDisc, prompts; default: --prior-steps, else the pipeline's)",
    )
    parser.add_argument(
        "--prior-scheduler",
        default=None,
        choices=PRIOR_SOLVER_NAMES,
        help="the priors' sampler (default: the pipeline's)",
    )
    parser.add_argument(
        "--distilled-prior",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="sample z₀ with the pipeline's distilled few-step priors (default: when it has them)",
    )
    parser.add_argument(
        "--num-registers",
        type=int,
        default=None,
        help="k <= K registers shown to the demasker (default: the pipeline's default_num_registers for registers "
        "sampled from a prior, K for encoded ones)",
    )


def _prior_kwargs(args) -> dict:
    """The pipeline-call arguments of `_prior_args`, checked."""
    from .utils.numbers import check_number

    check_number("--prior-steps", args.prior_steps, minimum=1, integer=True, allow_none=True)
    check_number("--conditional-prior-steps", args.conditional_prior_steps, minimum=1, integer=True, allow_none=True)
    check_number("--num-registers", args.num_registers, minimum=1, integer=True, allow_none=True)
    return {
        "num_registers": args.num_registers,
        "prior_steps": args.prior_steps,
        "conditional_prior_steps": args.conditional_prior_steps,
        "prior_scheduler": args.prior_scheduler,
        "use_distilled_prior": args.distilled_prior,
    }


def _pipeline_arg(parser) -> None:
    parser.add_argument(
        "--pipeline",
        default="crocodil-python-tiny",
        help="pipeline directory, Hub id, or shipped name (default: crocodil-python-tiny)",
    )


def _load(name: str):
    """Load a pipeline after checking the source: an empty or foreign directory is refused before anything loads."""
    from .utils.locate import locate_pipeline

    source = locate_pipeline(name)
    from .pipelines.pipeline_crocodil import CrocodilPipeline

    return CrocodilPipeline.from_pretrained(source)


def _model_length(pipe) -> int:
    """The generation length L the pipeline was trained for (max_length − 1), recorded at assembly time."""
    return pipe.trained_gen_length or 64  # a pipeline assembled without a training record


def _fit_program(path: str, text: str, pipe, gen_length: int) -> tuple[str, bool]:
    """The program, or its first complete lines when it is longer than `gen_length - 1` tokens."""
    ids = pipe.tokenizer(text, add_special_tokens=False)["input_ids"]
    if len(ids) < gen_length:
        return text, False
    kept = pipe.tokenizer.decode(ids[: gen_length - 1])
    kept = kept[: kept.rfind("\n") + 1] or kept
    if not kept.strip():
        raise ValueError(
            f"--gen-length {gen_length} leaves no room for {path} ({len(ids)} tokens + EOS); use a larger --gen-length."
        )
    return kept, True


def _check_common(args) -> None:
    """Option values shared by generate / autoencode / interpolate, checked before the pipeline loads."""
    from .utils.numbers import check_number

    check_number("--steps", args.steps, minimum=1, integer=True)
    check_number("--gen-length", args.gen_length, minimum=1, integer=True, allow_none=True)


def _check_sampling(args) -> None:
    """Option values of the commands that sample programs (generate, complete, infill)."""
    from .utils.numbers import check_number

    _check_common(args)
    check_number("--num-samples", args.num_samples, minimum=1, integer=True)
    check_number("--seed", args.seed, minimum=0, maximum=2**63 - 1 - args.num_samples, integer=True)
    _prior_kwargs(args)
    check_number("--temperature", args.temperature, minimum=0)
    check_number("--eos-penalty", args.eos_penalty, minimum=0)


def run_generate(args, rest=None) -> int:
    import json

    from .utils.files import check_output_file
    from .utils.numbers import check_number

    _check_sampling(args)
    check_number("--block-length", args.block_length, minimum=1, integer=True, allow_none=True)
    check_number("--threshold", args.threshold, minimum=0, maximum=1, exclusive_minimum=True, allow_none=True)
    if args.output:
        check_output_file(args.output, args.overwrite)
    import torch

    pipe = _load(args.pipeline)
    gen_length = args.gen_length or _model_length(pipe)
    generators = [torch.Generator().manual_seed(args.seed + i) for i in range(args.num_samples)]
    out = pipe(
        mode=args.mode,
        num_samples=args.num_samples,
        gen_length=gen_length,
        block_length=args.block_length,
        steps=args.steps,
        temperature=args.temperature,
        threshold=args.threshold,
        generator=generators,
        eos_penalty=args.eos_penalty,
        **_prior_kwargs(args),
    )
    for i, text in enumerate(out.texts):
        print(f"# ---- sample {i} ({args.mode}, seed {args.seed + i}) ----")
        print(text.rstrip("\n"))
    nfe = out.nfe
    print(f"# {nfe_line(nfe)}")
    print(f"# wall time: {out.wall_time:.2f} s for {args.num_samples} samples of {gen_length} tokens")
    if args.output:
        rows = [
            {"text": text, "mode": args.mode, "seed": args.seed + i, "steps": args.steps, "gen_length": gen_length}
            | {"nfe": nfe}
            for i, text in enumerate(out.texts)
        ]
        _write_atomic(args.output, "".join(json.dumps(row) + "\n" for row in rows))
        print(f"# wrote {args.output}")
    return 0


def _write_atomic(path: str, text: str) -> None:
    """Write through a temporary file and rename: a failure (a full disk) leaves no partial file behind."""
    import tempfile
    from pathlib import Path

    target = Path(path)
    handle = tempfile.NamedTemporaryFile(
        "w",
        encoding="utf-8",
        dir=target.parent if str(target.parent) else ".",
        prefix=f".{target.name}.",
        delete=False,
    )
    try:
        with handle:
            handle.write(text)
        os.replace(handle.name, target)
    except BaseException:
        Path(handle.name).unlink(missing_ok=True)
        raise


def nfe_line(nfe: dict) -> str:
    """The pipeline's NFE accounting in one line, with the priors' share of the sample's FLOPs when they ran."""
    share = f" (priors {100 * nfe['prior_total'] / nfe['total']:.1f} %)" if nfe.get("prior_total") else ""
    calls = ", ".join(
        f"{nfe[f'{part}_calls']} {part} call{'' if nfe[f'{part}_calls'] == 1 else 's'}"
        for part in ("demasker", "prior", "encoder")
    )
    return f"NFE: {calls} = {nfe['total']:.2f} demasker-forward equivalents{share}"


def run_autoencode(args, rest=None) -> int:
    from .utils.files import read_text_file
    from .utils.numbers import check_number

    _check_common(args)
    check_number("--num-registers", args.num_registers, minimum=1, integer=True, allow_none=True)
    text = read_text_file(args.file)
    from .evaluation.metrics import cer

    pipe = _load(args.pipeline)
    if args.num_registers is not None and args.num_registers > pipe.num_registers_max:
        raise ValueError(
            f"--num-registers {args.num_registers} is more than the pipeline's K = {pipe.num_registers_max}."
        )
    gen_length = args.gen_length or _model_length(pipe)
    text, truncated = _fit_program(args.file, text, pipe, gen_length)
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


def _prompt_and_suffix(args) -> tuple[str, str | None, str | None]:
    """(prompt, suffix, the original text of the regenerated lines) of `complete` / `infill`, from the file."""
    from .utils.files import read_text_file
    from .utils.numbers import check_number

    if args.command == "complete":
        if args.prompt is not None:
            if args.file is not None:
                raise ValueError("give a FILE or --prompt, not both.")
            if not args.prompt.strip():
                raise ValueError("--prompt is empty; give the start of a program.")
            return args.prompt, None, None
        if args.file is None:
            raise ValueError("give a FILE to continue, or --prompt TEXT.")
        lines = read_text_file(args.file).splitlines(keepends=True)
        check_number("--lines", args.lines, minimum=1, maximum=len(lines), integer=True, allow_none=True)
        keep = args.lines or len(lines)
        return "".join(lines[:keep]), None, "".join(lines[keep:]) or None
    lines = read_text_file(args.file).splitlines(keepends=True)
    try:
        start, end = (int(x) for x in args.span.split(":"))
    except ValueError:
        start = end = 0
    if not 2 <= start <= end <= len(lines):
        raise ValueError(
            f"--span {args.span!r} must be START:END line numbers with 2 <= START <= END <= {len(lines)} "
            "(the lines before START are the prompt)."
        )
    return "".join(lines[: start - 1]), "".join(lines[end:]) or None, "".join(lines[start - 1 : end])


def run_complete(args, rest=None) -> int:
    """`crocodil complete` and `crocodil infill`: prompted generation with the prompt and suffix kept fixed."""
    import torch

    _check_sampling(args)
    prompt, suffix, original = _prompt_and_suffix(args)
    pipe = _load(args.pipeline)
    out = pipe(
        mode=args.mode,
        prompt=[prompt] * args.num_samples,
        suffix=None if suffix is None else [suffix] * args.num_samples,
        gen_length=args.gen_length,
        steps=args.steps,
        temperature=args.temperature,
        generator=[torch.Generator().manual_seed(args.seed + i) for i in range(args.num_samples)],
        eos_penalty=args.eos_penalty,
        **_prior_kwargs(args),
    )
    print("# ---- prompt (kept) ----")
    print(prompt.rstrip("\n"))
    for i, text in enumerate(out.texts):
        print(f"# ---- generated {i} ({args.mode}, seed {args.seed + i}) ----")
        print(text.rstrip("\n"))
    if suffix is not None:
        print("# ---- suffix (kept) ----")
        print(suffix.rstrip("\n"))
    if args.command == "infill" and original is not None:
        print("# ---- original lines ----")
        print(original.rstrip("\n"))
    nfe = out.nfe
    print(f"# {nfe_line(nfe)}; {out.wall_time:.2f} s")
    return 0


def _alphas(value: str) -> list[float]:
    import math

    try:
        alphas = [float(a) for a in value.split(",") if a.strip()]
    except ValueError:
        alphas = []
    if not alphas or not all(math.isfinite(a) for a in alphas):
        raise ValueError(f"--alphas must be a comma list of finite numbers such as 0,0.5,1; got {value!r}.")
    return alphas


def run_interpolate(args, rest=None) -> int:
    from .utils.files import read_text_file

    _check_common(args)
    alphas = _alphas(args.alphas)
    texts_in = [read_text_file(args.file_a), read_text_file(args.file_b)]
    pipe = _load(args.pipeline)
    gen_length = args.gen_length or _model_length(pipe)
    text_a, _ = _fit_program(args.file_a, texts_in[0], pipe, gen_length)
    text_b, _ = _fit_program(args.file_b, texts_in[1], pipe, gen_length)
    texts = pipe.interpolate(text_a, text_b, alphas=alphas, gen_length=gen_length, steps=args.steps)
    for alpha, text in zip(alphas, texts):
        print(f"# ---- alpha = {alpha:g} ----")
        print(text.rstrip("\n"))
    return 0


def run_push(args, rest=None) -> int:
    from pathlib import Path

    from .utils.files import OUTPUT_MARKER

    folder = Path(args.directory)
    if not folder.is_dir() or not any(p.name != OUTPUT_MARKER for p in folder.iterdir()):
        raise ValueError(f"{folder} is not a non-empty directory; expected a pipeline or a stage output directory.")
    if args.repo_id.count("/") != 1 or not all(args.repo_id.split("/")):
        raise ValueError(f"repo_id must look like org/name, got {args.repo_id!r}.")
    from huggingface_hub import HfApi

    from .evaluation.model_card import minimal_card

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
    info = api.create_commit(
        repo_id=args.repo_id,
        operations=_push_operations(folder),
        revision=args.revision,
        commit_message=args.commit_message or f"Upload {folder.name} with crocodil push",
    )
    print(f"pushed {folder} to {url} (revision {args.revision or 'main'}, commit {info.oid})")
    return 0


def _push_operations(folder) -> list:
    """The files of a folder to upload (no checkpoints, pickles or hidden files), with its remote code taken from the
    installed package source rather than from the folder (see `remote_code.py`)."""
    from huggingface_hub import CommitOperationAdd

    from .remote_code import remote_code_files

    code = remote_code_files(folder)
    operations = []
    for path in sorted(folder.rglob("*")):
        relative = path.relative_to(folder)
        parts = relative.parts
        skipped = any(p.startswith((".", "checkpoint-")) for p in parts) or path.suffix in (".pt", ".bin", ".pyc")
        if path.is_file() and not skipped and relative.as_posix() not in code:
            operations.append(CommitOperationAdd(relative.as_posix(), str(path)))
    operations += [CommitOperationAdd(name, str(source)) for name, source in sorted(code.items())]
    return operations


def _int_list(option: str, value: str | None) -> list[int] | None:
    if value is None:
        return None
    try:
        values = [int(v) for v in value.split(",") if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise ValueError(f"{option} must be a comma list of positive integers such as 8,16; got {value!r}.")
    return values


def run_eval(args, rest=None) -> int:
    from pathlib import Path

    from .pipelines import MODES
    from .utils.files import claim_output_dir
    from .utils.locate import locate_pipeline, looks_local
    from .utils.numbers import check_number

    modes = [m.strip() for m in args.modes.split(",") if m.strip()]
    unknown = [m for m in modes if m not in MODES]
    if not modes or unknown:
        raise ValueError(
            f"--modes {args.modes!r} names unknown mode(s) {unknown}; expected some of {', '.join(MODES)}."
        )
    steps = _int_list("--steps", args.steps)
    blocks = _int_list("--block-length", args.block_length) or [args.gen_length]
    for option in ("gen_length", "num_samples", "batch_size"):
        check_number(f"--{option.replace('_', '-')}", getattr(args, option), minimum=1, integer=True)
    prior_kwargs = _prior_kwargs(args)
    check_number("--temperature", args.temperature, minimum=0)
    if args.corpus is not None and not Path(args.corpus).exists():
        raise ValueError(f"--corpus {args.corpus} does not exist; expected a directory of programs or a data file.")
    if args.scorer is not None and looks_local(args.scorer) and not Path(args.scorer).is_dir():
        raise ValueError(f"--scorer {args.scorer} is not a directory; expected a causal LM directory or Hub id.")
    source = locate_pipeline(args.pipeline)
    claim_output_dir(args.output_dir, "eval", args.overwrite)
    from .evaluation.metrics import METRICS
    from .evaluation.scorer import load_scorer
    from .evaluation.sweep import check_sweep, plot_sweep, reference_programs, run_sweep, write_sweep
    from .pipelines.pipeline_crocodil import CrocodilPipeline

    pipe = CrocodilPipeline.from_pretrained(source)
    check_sweep(pipe, modes, steps, blocks, args.gen_length, args.num_samples, None)
    references = reference_programs(
        pipe, args.num_samples, args.gen_length, args.corpus, args.seed, split=args.corpus_split
    )
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
        call_kwargs={
            **({"remasking": args.remasking} if args.remasking != "low_confidence" else {}),
            **{k: v for k, v in prior_kwargs.items() if k != "prior_steps" and v is not None},
        },
    )
    sweep["command"] = "crocodil eval " + " ".join(sys.argv[2:]) if sys.argv[1:2] == ["eval"] else "crocodil eval"
    sweep["pipeline"] = str(args.pipeline)
    path = write_sweep(sweep, args.output_dir)
    plots = plot_sweep(sweep, args.output_dir)
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
    print(f"wrote {path} and {len(plots)} plot(s); scorer {sweep['scorer']}")
    return 0


COMMANDS = {
    "config": run_config,
    "train": run_train,
    "assemble": run_assemble,
    "generate": run_generate,
    "autoencode": run_autoencode,
    "interpolate": run_interpolate,
    "complete": run_complete,
    "infill": run_complete,
    "push": run_push,
    "eval": run_eval,
    "tokenizer": run_tokenizer,
}


if __name__ == "__main__":
    sys.exit(main())
