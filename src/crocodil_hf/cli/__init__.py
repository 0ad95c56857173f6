"""The `crocodil` command. One module per command in `commands/` (`register(subparsers)` adds its parser, `run(args,
rest)` runs it); `COMMANDS` is built from them. Library functions own their rules; a command translates its options,
and `main` turns any error into one line (`errors.explain_error`). Torch-free at import: `crocodil --help` answers at
once.

Example:
    ```python
    >>> from crocodil_hf.cli import main
    >>> main(["generate", "--num-samples", "1", "--steps", "8"])
    ```
"""

import argparse
import logging
import os
import re
import sys
import traceback

from .commands import COMMANDS
from .errors import explain_error


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every command; imports nothing heavy (`crocodil --help` answers at once)."""
    from .. import __version__

    parser = argparse.ArgumentParser(
        prog="crocodil", description="CRoCoDiL: continuous-register guided masked diffusion for language."
    )
    parser.add_argument("--version", action="version", version=f"crocodil_hf {__version__}")
    parser.add_argument(
        "--debug", action="store_true", help="show the traceback of an error (also CROCODIL_DEBUG=1); allowed anywhere"
    )
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        module.register(subparsers)
    return parser


def _debug_flags(argv: list[str]) -> tuple[list[str], bool]:
    """`--debug` anywhere, except as `crocodil train`'s `--debug VALUE` (TrainingArguments' `debug` field)."""
    training = argv[:1] == ["train"]
    flags = [
        i
        for i, a in enumerate(argv)
        if a == "--debug" and (not training or i + 1 == len(argv) or argv[i + 1].startswith("-"))
    ]
    argv = [a for i, a in enumerate(argv) if i not in flags]
    return argv, bool(flags) or os.environ.get("CROCODIL_DEBUG", "").lower() not in ("", "0", "false", "no")


def _negative_values_joined(parser: argparse.ArgumentParser, argv: list[str]) -> list[str]:
    """`--span -1:3` → `--span=-1:3`: argparse reads a value that starts with `-` (and is not a plain number) as an
    option and answers "expected one argument"; joined, the option's own check names what is wrong."""
    takes_value = set()
    parsers = [parser]
    while parsers:
        current = parsers.pop()
        for action in current._actions:
            if isinstance(action, argparse._SubParsersAction):
                parsers.extend(action.choices.values())
            elif isinstance(action, argparse._StoreAction) and action.nargs is None:
                takes_value.update(o for o in action.option_strings if o.startswith("--"))
    joined, i = [], 0
    while i < len(argv):
        if argv[i] in takes_value and i + 1 < len(argv) and re.match(r"-\d", argv[i + 1]):
            joined.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            joined.append(argv[i])
            i += 1
    return joined


def main(argv: list[str] | None = None) -> int:
    """Run the `crocodil` command; returns the exit status (0 ok, 2 a user error, 1 an unexpected failure, 130 an
    interrupt). Errors print one line, `crocodil <command>: error: <what>; <what is allowed>`; `--debug` (anywhere
    on the command line) or `CROCODIL_DEBUG=1` adds the traceback."""
    argv, debug = _debug_flags(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser()
    argv = _negative_values_joined(parser, argv)
    early = COMMANDS["train"].early_help(parser, argv)
    if early is not None:
        return early
    args, rest = parser.parse_known_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    if rest and args.command != "train":
        parser.error(f"unrecognized arguments: {' '.join(rest)}")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    name = f"train {args.stage}" if args.command == "train" else args.command
    try:
        return COMMANDS[args.command].run(args, rest) or 0
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


__all__ = ["COMMANDS", "build_parser", "explain_error", "main"]
