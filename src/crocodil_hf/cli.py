"""The `crocodil` command. Subcommands arrive with their issues (generate, autoencode, train, eval, bench, push)."""

import argparse
import sys


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="crocodil", description="CRoCoDiL: continuous-register guided masked diffusion for language."
    )
    parser.add_argument("--version", action="version", version=f"crocodil_hf {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
