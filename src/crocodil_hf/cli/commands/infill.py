"""`crocodil infill`: regenerate lines START:END of a file between the fixed lines before and after them (App. H)."""

from ..common import pipeline_arg
from .complete import check_prompted, run_prompted, sampling_args

HELP_TEXT = "regenerate lines START:END of a file between the fixed lines before and after them"


def register(subparsers) -> None:
    cmd = subparsers.add_parser("infill", help=HELP_TEXT, description=HELP_TEXT[0].upper() + HELP_TEXT[1:] + ".")
    pipeline_arg(cmd)
    cmd.add_argument("file", help="program whose lines START:END are regenerated")
    cmd.add_argument("--span", required=True, help="START:END, 1-based inclusive line numbers")
    sampling_args(cmd)


def span_of(args) -> tuple[str, str | None, str]:
    """(prompt, suffix, the original lines START:END) of the file."""
    from ...utils.files import read_text_file, split_lines

    try:
        start, end = (int(x) for x in args.span.split(":"))
    except ValueError:
        start = end = 0
    return split_lines(read_text_file(args.file), start, end, name=f"--span {args.span!r}")


def run(args, rest=None) -> int:
    check_prompted(args)
    return run_prompted(args, *span_of(args))
