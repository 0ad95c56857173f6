"""`crocodil tokenizer`: train a byte-level BPE tokenizer (BOS, EOS, PAD, MASK)."""


def register(subparsers) -> None:
    tok = subparsers.add_parser("tokenizer", help="train a byte-level BPE tokenizer (BOS, EOS, PAD, MASK)")
    tok.add_argument("--corpus", help="directory of source files (default: the CPython standard library)")
    tok.add_argument("--vocab-size", type=int, default=8192, help="BPE vocabulary size, >= 260 (default 8192)")
    tok.add_argument("--output", required=True, help="a new or empty directory")
    tok.add_argument(
        "--overwrite", action="store_true", help="write into a non-empty directory crocodil did not write"
    )


def run(args, rest=None) -> int:
    from pathlib import Path

    from ...utils.files import claim_output_dir
    from ...utils.numbers import check_number

    check_number("--vocab-size", args.vocab_size, minimum=260, integer=True)
    if args.corpus is not None and not Path(args.corpus).is_dir():
        raise ValueError(f"--corpus {args.corpus} is not a directory; expected a directory of source files.")
    claim_output_dir(args.output, "tokenizer", args.overwrite)
    from ...training.run import train_tokenizer_command

    train_tokenizer_command(args.corpus, args.vocab_size, args.output)
    print(f"tokenizer written to {args.output}")
    return 0
