"""Every code block of README.md runs as written, on its own, as a new user would run it (in an empty folder).

- ```python blocks run in a fresh interpreter each;
- ```bash blocks run with bash, each in its own empty folder, except:
  - `<!-- readme-test: ci -->` blocks (install, `.ci/run`, the test command): they are what CI itself runs, and
    `test_the_ci_blocks_are_what_ci_runs` checks each of their commands is in `.ci/run`;
  - `<!-- readme-test: parse -->` blocks (training at scale: hours, or GPUs; the demo's server, which runs until
    stopped): every `crocodil` command in them, also
    behind `accelerate launch` / `torchrun -m crocodil_hf.cli`, is parsed by the real parser and every config it
    names resolves.
"""

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"(?:<!-- readme-test: (\w+) -->\n)?```(\w+)\n(.*?)```", re.S)


def blocks(language: str, tag: str | None = None) -> list[str]:
    text = (ROOT / "README.md").read_text()
    return [body for mark, lang, body in BLOCK.findall(text) if lang == language and (mark or None) == tag]


def test_the_readme_is_for_users():
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 350
    assert blocks("python") and blocks("bash") and blocks("bash", "parse") and blocks("bash", "ci")


@pytest.mark.parametrize("index", range(len(blocks("python"))))
def test_a_python_block_runs_on_its_own(tmp_path, index):
    result = subprocess.run(
        [sys.executable, "-c", blocks("python")[index]], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]


@pytest.mark.parametrize("index", range(len(blocks("bash"))))
def test_a_bash_block_runs_on_its_own(tmp_path, index):
    result = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", blocks("bash")[index]],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "error" not in result.stderr.lower(), result.stderr[-3000:]


def commands(block: str) -> list[list[str]]:
    """The `crocodil` argument lists of a block (continuation lines joined; `$(crocodil config X)` kept as a word)."""
    found = []
    for line in block.replace("\\\n", " ").splitlines():
        line = line.split(" #")[0].strip()
        if not line:
            continue
        words = shlex.split(line)
        if words[0] == "crocodil":
            found.append(words[1:])
        elif "crocodil_hf.cli" in words:
            found.append(words[words.index("crocodil_hf.cli") + 1 :])
        else:
            raise AssertionError(f"a readme-test: parse block runs something else: {line}")
    return found


@pytest.mark.parametrize("index", range(len(blocks("bash", "parse"))))
def test_a_training_block_parses_and_names_shipped_configs(index):
    from crocodil_hf.cli import build_parser
    from crocodil_hf.training.arguments import resolve_config

    block = blocks("bash", "parse")[index]
    for name in re.findall(r"crocodil config (\S+?)\)", block):
        assert resolve_config(name).is_file(), name
    found = commands(block)
    assert found
    for argv in found:
        args, rest = build_parser().parse_known_args(argv)
        assert args.command is not None
        if args.command == "train":
            assert resolve_config(args.config).is_file(), args.config


def installs(text: str) -> dict[str, set[str]]:
    """`pip install` targets of a script -> their extras (`-e ".[dev,eval]"` is `.` with {dev, eval})."""
    found = {}
    for target in re.findall(r"pip install (?:--\S+ )*(?:-e )?(\S+)", text):
        name, _, extras = target.strip("\"'").partition("[")
        found.setdefault(name, set()).update(e for e in extras.rstrip("]").split(",") if e)
    return found


def test_the_ci_blocks_are_what_ci_runs():
    ci = (ROOT / ".ci" / "run").read_text()
    in_ci = installs(ci)
    for block in blocks("bash", "ci"):
        for name, extras in installs(block).items():
            assert name in in_ci and extras <= in_ci[name], (name, extras)
        for command in re.findall(r"python -m pytest[^\n]*", block):
            assert command.strip() in ci
