"""`crocodil complete`: continue a program; its first lines (or `--prompt`) stay fixed (paper App. H).

`crocodil infill` (`infill.py`) shares `sampling_args` and `run_prompted` with it."""

import re

from ..common import (
    HELP,
    cache_arg,
    check_sampling,
    configs,
    load,
    nfe_line,
    pipeline_arg,
    prior_args,
    prior_kwargs,
    write_atomic,
)

HELP_TEXT = (
    "continue a program: its first lines (or --prompt) stay fixed, the next --gen-length tokens are generated (App. H)"
)


def sampling_args(cmd) -> None:
    """The options `complete` and `infill` share."""
    from ...pipelines import generation_modes

    cmd.add_argument("--mode", default="con_within_disc", choices=generation_modes(), help=HELP["mode"])
    cmd.add_argument("--num-samples", type=int, default=1, help="samples to draw (default 1)")
    cmd.add_argument("--steps", type=int, default=8, help="demasker calls over the span")
    cmd.add_argument(
        "--gen-length",
        type=int,
        default=32,
        help="most tokens to generate (default 32): the span ends at its first EOS, so it need not match the "
        "replaced lines",
    )
    prior_args(cmd)
    cmd.add_argument("--temperature", type=float, default=0.0, help=HELP["temperature"])
    cmd.add_argument("--eos-penalty", type=float, default=0.0, help="lower the EOS logit by this much (0 = off)")
    cmd.add_argument("--seed", type=int, default=0, help=HELP["seed"])
    cache_arg(cmd)
    cmd.add_argument(
        "--full-context",
        action="store_true",
        help="show the model the whole file, even past the length it was trained on (default: the lines nearest the "
        "span that fit it)",
    )
    cmd.add_argument("--output", help="also write the filled file (prompt + generated + suffix) here (a new file)")
    cmd.add_argument("--overwrite", action="store_true", help="replace an existing --output file")


def check_prompted(args) -> None:
    """The options `complete` and `infill` share, checked before anything is read or loaded."""
    from ...utils.files import check_output_file

    check_sampling(args)
    if args.output:
        if args.num_samples != 1:
            raise ValueError(f"--output writes one filled file; use --num-samples 1 (got {args.num_samples}).")
        check_output_file(args.output, args.overwrite)


def register(subparsers) -> None:
    cmd = subparsers.add_parser("complete", help=HELP_TEXT, description=HELP_TEXT[0].upper() + HELP_TEXT[1:] + ".")
    pipeline_arg(cmd)
    cmd.add_argument("file", nargs="?", help="program to continue (omit with --prompt)")
    group = cmd.add_mutually_exclusive_group()
    group.add_argument("--lines", type=int, default=None, help="keep the first N lines as the prompt")
    group.add_argument("--prompt", default=None, help="prompt text instead of a file")
    sampling_args(cmd)
    cmd.add_argument(
        "--stop",
        choices=("eos", "blank-line"),
        default="eos",
        help="where a completion ends: at EOS (default) or also at its first blank line (the end of a block)",
    )


def prompt_of(args) -> tuple[str, None, str | None]:
    """(prompt, no suffix, the rest of the file) from FILE and --lines, or --prompt."""
    from ...utils.files import read_text_file
    from ...utils.numbers import check_number

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


def cut_at_blank_line(text: str) -> str:
    """`text` up to (and with the newline of) its first blank line: `--stop blank-line`.

    Example:
        ```python
        >>> cut_at_blank_line("    return x\n\ndef g():\n")
        '    return x\n'
        ```
    """
    match = re.search(r"\n[ \t]*\n", text)
    return text if match is None else text[: match.start() + 1]


def run_prompted(args, prompt: str, suffix: str | None, original: str | None) -> int:
    """Prompted generation with the prompt and suffix kept fixed; prints prompt, samples, suffix and the NFE line."""
    import torch

    call = dict(
        prompt=[prompt] * args.num_samples,
        suffix=None if suffix is None else [suffix] * args.num_samples,
        gen_length=args.gen_length,
        steps=args.steps,
        temperature=args.temperature,
        generator=[torch.Generator().manual_seed(args.seed + i) for i in range(args.num_samples)],
        eos_penalty=args.eos_penalty,
        fit_context=not args.full_context,
        kv_cache=args.kv_cache,
        **prior_kwargs(args),
    )
    skeleton = configs(args.pipeline)
    seen, seen_suffixes = skeleton.model_context(skeleton.validate(args.mode, **call))  # the call checked here
    pipe = load(args.pipeline)
    if seen[0] != prompt or (suffix is not None and seen_suffixes[0] != suffix):
        kept = seen[0].count("\n") + (seen_suffixes[0].count("\n") if suffix is not None else 0)
        print(
            f"# note: the model sees the {kept} lines nearest the span (it was trained on "
            f"{pipe.trained_gen_length} tokens); --full-context shows it the whole file"
        )
    out = pipe(args.mode, **call)
    texts, full_texts = out.texts, out.full_texts
    if getattr(args, "stop", "eos") == "blank-line":
        texts = [cut_at_blank_line(text) for text in texts]
        full_texts = [prompt + text for text in texts]
    print("# ---- prompt (kept) ----")
    print(prompt.rstrip("\n"))
    for i, text in enumerate(texts):
        print(f"# ---- generated {i} ({args.mode}, seed {args.seed + i}) ----")
        print(text.rstrip("\n"))
    if suffix is not None:
        print("# ---- suffix (kept) ----")
        print(suffix.rstrip("\n"))
    if args.command == "infill" and original is not None:
        print("# ---- original lines ----")
        print(original.rstrip("\n"))
    print(f"# {nfe_line(out.nfe)}; {out.wall_time:.2f} s")
    if args.output:
        write_atomic(args.output, full_texts[0])
        print(f"# wrote {args.output}")
    return 0


def run(args, rest=None) -> int:
    check_prompted(args)
    return run_prompted(args, *prompt_of(args))
