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
    from ...utils.files import read_text_file

    lines = read_text_file(args.file).splitlines(keepends=True)
    if len(lines) < 2:
        raise ValueError(
            f"{args.file} has {len(lines)} line; infill needs at least 2 (the lines before START are the prompt)."
        )
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


def run(args, rest=None) -> int:
    check_prompted(args)
    return run_prompted(args, *span_of(args))
