"""The table of commands, built from the modules of this folder (one per command): `crocodil --help` lists them in
this order. Adding a command is one module with `register(subparsers)` and `run(args, rest)`, and one name here."""

import importlib

NAMES = (
    "generate", "complete", "infill", "autoencode", "interpolate", "eval", "train", "assemble", "config", "push",
    "tokenizer", "demo",
)  # fmt: skip

COMMANDS = {name: importlib.import_module(f".{name}", __name__) for name in NAMES}

__all__ = ["COMMANDS"]
