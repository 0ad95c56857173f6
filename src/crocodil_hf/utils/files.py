"""Files and directories of a command: texts to read, a file to write, an output directory to claim. Nothing is
computed and then lost, and nothing a user wrote is replaced silently."""

import json
import os
from pathlib import Path

OUTPUT_MARKER = ".crocodil-output.json"  # written into every directory a crocodil command creates or claims

# data files a corpus may be given as, and the `datasets` builder that reads each
DATA_FILE_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".arrow": "arrow", ".csv": "csv"}


def read_text_file(path: str | os.PathLike, what: str = "a program") -> str:
    """Read a UTF-8 text file for `autoencode` / `interpolate`: missing, directory, binary (NUL bytes), non-UTF-8 and
    empty files are refused with their name."""
    path = Path(path)
    allowed = f"expected a UTF-8 text file with {what}"
    if not path.exists():
        raise ValueError(f"{path} does not exist; {allowed}.")
    if path.is_dir():
        raise ValueError(f"{path} is a directory; {allowed}.")
    if not path.is_file():  # a device, a pipe or a socket: reading could block or never end
        raise ValueError(f"{path} is not a regular file; {allowed}.")
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise ValueError(f"cannot read {path} ({err.strerror or err}); {allowed}.") from None
    try:
        return decode_text(raw)
    except NotText as err:
        raise ValueError(f"{path} {err}; {allowed}.") from None


class NotText(ValueError):
    """Bytes that are not a text to read; `kind` is `"binary"`, `"non_utf8"` or `"empty"`."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind


def decode_text(raw: bytes) -> str:
    """UTF-8 text of a file's bytes (a byte-order mark dropped), or `NotText` saying why not: NUL bytes (binary),
    not UTF-8, or only whitespace. One rule for the corpus builder (which counts) and the CLI (which refuses)."""
    if b"\x00" in raw:
        raise NotText("binary", "is a binary file (it contains NUL bytes)")
    try:
        text = raw.decode("utf-8-sig")  # a byte-order mark is not part of the text
    except UnicodeDecodeError as err:
        raise NotText("non_utf8", f"is not UTF-8 text (byte 0x{raw[err.start]:02x} at offset {err.start})") from None
    if not text.strip():
        raise NotText("empty", "is empty")
    return text


def split_lines(
    text: str, start: int, end: int | None = None, *, name: str = "the span"
) -> tuple[str, str | None, str]:
    """`(prompt, suffix, original)` of regenerating lines START..END (1-based, inclusive) of a program: the lines
    before START stay as the prompt, the lines after END as the suffix (`None` when END is omitted or the last
    line: a completion). One rule for `crocodil infill` and the demo; `name` is what the message calls the span.

    Example:
        ```python
        >>> split_lines("a = 1\nb = 2\nc = 3\n", 2, 2)
        ('a = 1\n', 'c = 3\n', 'b = 2\n')
        >>> split_lines("a = 1\nb = 2\n", 2)
        ('a = 1\n', None, 'b = 2\n')
        ```
    """
    if not isinstance(text, str) or not text.strip():
        raise ValueError("the program is empty; give at least 2 lines (the lines before START are the prompt).")
    lines = text.splitlines(keepends=True)
    if len(lines) < 2:
        raise ValueError(
            f"the program has {len(lines)} line; regenerating needs at least 2 (the lines before START are the prompt)."
        )
    end = len(lines) if end is None else end
    if not (isinstance(start, int) and isinstance(end, int) and 2 <= start <= end <= len(lines)):
        raise ValueError(
            f"{name} must be START:END line numbers with 2 <= START <= END <= {len(lines)} (the lines before START "
            "are the prompt)."
        )
    return "".join(lines[: start - 1]), "".join(lines[end:]) or None, "".join(lines[start - 1 : end])


def check_output_file(path: str | os.PathLike, overwrite: bool = False) -> Path:
    """A file to write at the end of a command: its directory must exist and it must not exist yet (unless
    `overwrite`), so that nothing is computed and then lost, and no file is replaced silently."""
    path = Path(path)
    if path.is_dir():
        raise ValueError(f"{path} is a directory; expected a file path for the output.")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.is_dir():
        raise ValueError(f"the directory of {path} does not exist; create {parent} first or choose another path.")
    if not os.access(parent, os.W_OK):
        raise ValueError(f"{parent} is not writable; choose another output path.")
    if path.exists() and not overwrite:
        raise ValueError(f"{path} already exists; choose another path or pass --overwrite to replace it.")
    return path


def _written_by(directory: Path) -> str | None:
    try:
        return json.loads((directory / OUTPUT_MARKER).read_text())["command"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def claim_output_dir(
    path: str | os.PathLike, command: str, overwrite: bool = False, option: str = "--overwrite"
) -> Path:
    """Make `path` the output directory of `crocodil <command>`: create it, or accept it when it is empty or was
    written by the same command before; a non-empty directory crocodil did not write is refused unless `overwrite`.
    A marker file records the claim. Nothing is deleted.

    Example:
        ```python
        >>> out = claim_output_dir("runs/eval-1", "eval")
        ```
    """
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ValueError(f"{path} is a file; expected a directory for the output of `crocodil {command}`.")
    if path.is_dir() and any(not p.name.startswith(".crocodil") for p in path.iterdir()):  # our marker and locks
        owner = _written_by(path)
        if owner != command and not overwrite:
            found = f"was written by `crocodil {owner}`" if owner else "holds files crocodil did not write"
            raise ValueError(
                f"{path} is not empty and {found}; choose a new or empty directory, or pass {option} to write "
                "into it anyway."
            )
    try:
        path.mkdir(parents=True, exist_ok=True)
        (path / OUTPUT_MARKER).write_text(json.dumps({"command": command}) + "\n")
    except OSError as err:
        raise ValueError(f"cannot write to {path} ({err.strerror or err}); choose another directory.") from None
    return path


__all__ = ["NotText", "OUTPUT_MARKER", "check_output_file", "claim_output_dir", "decode_text", "read_text_file"]
