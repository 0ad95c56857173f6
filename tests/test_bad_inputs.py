"""Bad inputs, as a new user would give them: each case checks the exit status (or the exception type), that no
traceback is printed, words of the message, and that nothing the user had was changed.

CLI cases run `crocodil_hf.cli.main` in-process (an uncaught exception would fail the test); a few run the installed
entry point in a subprocess for the real exit status, `--debug` and the start-up time.
"""

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from crocodil_hf.cli import main
from crocodil_hf.utils.locate import SHIPPED_DIR

SHIPPED = "crocodil-python-tiny"
TOKENIZER = str(SHIPPED_DIR / SHIPPED / "tokenizer")


class Files:
    """Builds the files a case needs under one temporary directory."""

    def __init__(self, root: Path):
        self.root = root

    def path(self, name: str) -> str:
        return str(self.root / name)

    def text(self, name: str, content: str = "def f(x):\n    return x\n") -> str:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return str(path)

    def raw(self, name: str, content: bytes) -> str:
        path = self.root / name
        path.write_bytes(content)
        return str(path)

    def dir(self, name: str) -> str:
        path = self.root / name
        path.mkdir(parents=True, exist_ok=True)
        return str(path)

    def inputs(self) -> list[str]:
        """Overrides that point a shipped config's inputs at existing directories."""
        return ["--tokenizer_name_or_path", self.dir("tokenizer")]

    def stage(self, name: str, **demasker_config) -> str:
        """Looks like a stage output (the files `crocodil assemble` checks for), with `demasker_config` in the
        demasker's config.json."""
        for sub in ("demasker/config.json", "encoder/config.json", "config.json"):
            self.text(f"{name}/{sub}", json.dumps(demasker_config) if sub.startswith("demasker") else "{}")
        return str(self.root / name)

    def eval(self, *options: str) -> list[str]:
        """`crocodil eval` on the shipped pipeline into a new directory, with `options`."""
        return ["eval", "--pipeline", SHIPPED, "--output-dir", self.path("e"), *options]

    def pipeline(self, name: str, corrupt: bool = False, drop: str | None = None, pickled: bool = False) -> str:
        """A saved tiny pipeline: its demasker weights random bytes (`corrupt`), one file removed (`drop`), or its
        demasker weights a pickle holding a Python object (`pickled`)."""
        import types

        from safetensors.torch import load_file

        from crocodil_hf.testing import build_tiny_pipeline

        path = self.root / name
        build_tiny_pipeline().save_pretrained(path)
        weights = path / "demasker" / "model.safetensors"
        if corrupt:
            weights.write_bytes(os.urandom(4096))
        if drop:
            (path / drop).unlink()
        if pickled:
            state = {**load_file(weights), "extra": types.SimpleNamespace(a=1)}
            weights.unlink()
            torch.save(state, path / "demasker" / "pytorch_model.bin")
        return str(path)

    def foreign(self, name: str) -> str:
        """A non-empty directory of the user's, with one file that must survive."""
        self.text(f"{name}/notes.txt", "keep me\n")
        return str(self.root / name)


def run_cli(argv: list[str], capsys) -> tuple[int, str, str]:
    try:
        status = main(argv)
    except SystemExit as exit_:  # argparse errors
        status = exit_.code
    out, err = capsys.readouterr()
    return status, out, err


# (id, argv builder, words the error must contain). Exit status 2 for all.
CLI_CASES = [
    # generate: option values, checked before anything loads
    ("gen-length-0", lambda f: ["generate", "--gen-length", "0"], ["--gen-length", ">= 1", "0"]),
    ("gen-length-negative", lambda f: ["generate", "--gen-length", "-5"], ["--gen-length", ">= 1"]),
    ("gen-length-huge", lambda f: ["generate", "--gen-length", "100000"], ["gen_length", "max_sequence_length"]),
    ("temperature-nan", lambda f: ["generate", "--temperature", "nan"], ["--temperature", "finite"]),
    ("temperature-inf", lambda f: ["generate", "--temperature", "inf"], ["--temperature", "finite"]),
    ("temperature-negative", lambda f: ["generate", "--temperature", "-1"], ["--temperature", ">= 0"]),
    ("eos-penalty-negative", lambda f: ["generate", "--eos-penalty", "-1"], ["--eos-penalty", ">= 0"]),
    ("eos-penalty-nan", lambda f: ["complete", "--prompt", "x", "--eos-penalty", "nan"], ["--eos-penalty", "finite"]),
    ("threshold-0", lambda f: ["generate", "--threshold", "0"], ["--threshold", "> 0"]),
    ("threshold-above-1", lambda f: ["generate", "--threshold", "1.5"], ["--threshold", "<= 1"]),
    ("threshold-nan", lambda f: ["generate", "--threshold", "nan"], ["--threshold", "finite"]),
    ("num-samples-0", lambda f: ["generate", "--num-samples", "0"], ["--num-samples", ">= 1"]),
    ("steps-0", lambda f: ["generate", "--steps", "0"], ["--steps", ">= 1"]),
    ("steps-not-int", lambda f: ["generate", "--steps", "ten"], ["invalid int value", "ten"]),
    ("steps-over-length", lambda f: ["generate", "--steps", "100"], ["steps", "<= `gen_length`"]),
    ("block-length-0", lambda f: ["generate", "--block-length", "0"], ["--block-length", ">= 1"]),
    ("block-length-not-divisor", lambda f: ["generate", "--block-length", "7"], ["block_length", "divisor"]),
    ("prior-steps-0", lambda f: ["generate", "--prior-steps", "0"], ["--prior-steps", ">= 1"]),
    (
        "conditional-prior-steps-0",
        lambda f: ["generate", "--conditional-prior-steps", "0"],
        ["--conditional-prior-steps", ">= 1"],
    ),
    ("prior-scheduler-unknown", lambda f: ["generate", "--prior-scheduler", "euler"], ["invalid choice", "euler"]),
    ("distilled-prior-absent", lambda f: ["generate", "--distilled-prior"], ["no distilled prior"]),
    ("mode-unknown", lambda f: ["generate", "--mode", "bogus"], ["invalid choice", "bogus"]),
    ("extra-argument", lambda f: ["generate", "surplus"], ["unrecognized arguments", "surplus"]),
    ("output-missing-dir", lambda f: ["generate", "--output", f.path("no/such/out.jsonl")], ["does not exist"]),
    ("output-is-dir", lambda f: ["generate", "--output", f.dir("outdir")], ["is a directory"]),
    (
        "output-exists",
        lambda f: ["generate", "--output", f.text("old.jsonl", "{}\n")],
        ["already exists", "--overwrite"],
    ),
    # pipeline sources
    (
        "pipeline-missing",
        lambda f: ["generate", "--pipeline", f.path("nope")],
        ["does not exist", "crocodil assemble"],
    ),
    ("pipeline-empty-dir", lambda f: ["generate", "--pipeline", f.dir("emptypipe")], ["model_index.json"]),
    ("pipeline-is-file", lambda f: ["generate", "--pipeline", f.text("pipe.txt")], ["is a file"]),
    ("pipeline-empty-name", lambda f: ["generate", "--pipeline", ""], ["empty", SHIPPED]),
    ("pipeline-unknown-name", lambda f: ["generate", "--pipeline", "no-such-model"], ["does not exist", SHIPPED]),
    ("pipeline-bad-hub-id", lambda f: ["generate", "--pipeline", "a/b/c/d"], ["does not exist"]),
    # complete / infill
    ("complete-nothing", lambda f: ["complete"], ["give a FILE", "--prompt"]),
    ("complete-file-and-prompt", lambda f: ["complete", f.text("a.py"), "--prompt", "x"], ["not both"]),
    ("complete-empty-prompt", lambda f: ["complete", "--prompt", " "], ["--prompt is empty"]),
    ("complete-lines-0", lambda f: ["complete", f.text("a.py"), "--lines", "0"], ["--lines", ">= 1"]),
    ("complete-lines-past-end", lambda f: ["complete", f.text("a.py"), "--lines", "9"], ["--lines", "<= 2"]),
    ("complete-lines-and-prompt", lambda f: ["complete", "--lines", "2", "--prompt", "x"], ["not allowed with"]),
    ("complete-missing-file", lambda f: ["complete", f.path("gone.py")], ["gone.py", "does not exist"]),
    ("complete-room", lambda f: ["complete", "--prompt", "x = 1\n", "--gen-length", "600"], ["exceed the 511"]),
    ("infill-span-first-line", lambda f: ["infill", f.text("a.py"), "--span", "1:2"], ["--span", "2 <= START"]),
    ("infill-span-text", lambda f: ["infill", f.text("a.py"), "--span", "a:b"], ["--span"]),
    ("infill-span-reversed", lambda f: ["infill", f.text("b.py", "x\ny\nz\n"), "--span", "3:2"], ["--span"]),
    ("infill-no-span", lambda f: ["infill", f.text("a.py")], ["--span"]),
    # autoencode / interpolate: files
    ("autoencode-missing", lambda f: ["autoencode", f.path("missing.py")], ["missing.py", "does not exist"]),
    ("autoencode-directory", lambda f: ["autoencode", f.dir("adir")], ["is a directory"]),
    ("autoencode-non-utf8", lambda f: ["autoencode", f.raw("latin.py", b"x = '\xe9'\n")], ["not UTF-8", "0xe9"]),
    ("autoencode-binary", lambda f: ["autoencode", f.raw("bin.py", b"ab\x00cd\n")], ["bin.py", "binary"]),
    ("autoencode-empty", lambda f: ["autoencode", f.text("empty.py", "  \n")], ["is empty"]),
    ("autoencode-device", lambda f: ["autoencode", "/dev/zero"], ["not a regular file"]),
    ("generate-seed-negative", lambda f: ["generate", "--seed", "-1"], ["--seed", ">= 0"]),
    ("generate-seed-huge", lambda f: ["generate", "--seed", str(2**70)], ["--seed", "<="]),
    ("train-resume-missing", lambda f: ["train", "mdm", "--config", "tiny-python/mdm", *f.inputs(), "--output_dir",
                                       f.path("o"), "--resume_from_checkpoint", f.path("o/checkpoint-9")],
     ["resume_from_checkpoint", "not a directory"]),  # fmt: skip
    ("autoencode-registers-0", lambda f: ["autoencode", f.text("a.py"), "--num-registers", "0"], ["--num-registers"]),
    ("autoencode-registers-over-K", lambda f: ["autoencode", f.text("a.py"), "--num-registers", "999"], ["num_registers", "<= 16", "999"]),
    ("autoencode-steps-0", lambda f: ["autoencode", f.text("a.py"), "--steps", "0"], ["--steps"]),
    ("autoencode-gen-length-1", lambda f: ["autoencode", f.text("a.py"), "--gen-length", "1"],
     ["--gen-length 1", "no room", "a.py"]),  # fmt: skip
    ("autoencode-gen-length-0", lambda f: ["autoencode", f.text("a.py"), "--gen-length", "0"], ["--gen-length"]),
    (
        "interpolate-alphas-text",
        lambda f: ["interpolate", f.text("a.py"), f.text("b.py"), "--alphas", "a,b"],
        ["--alphas", "[0, 1]"],
    ),
    (
        "interpolate-alphas-outside-0-1",
        lambda f: ["interpolate", f.text("a.py"), f.text("b.py"), "--alphas", "2,-1"],
        ["--alphas", "[0, 1]", "2,-1"],
    ),  # fmt: skip
    (
        "interpolate-alphas-nan",
        lambda f: ["interpolate", f.text("a.py"), f.text("b.py"), "--alphas", "0,nan"],
        ["--alphas"],
    ),  # fmt: skip
    (
        "interpolate-alphas-empty",
        lambda f: ["interpolate", f.text("a.py"), f.text("b.py"), "--alphas", ","],
        ["--alphas"],
    ),  # fmt: skip
    ("interpolate-missing-b", lambda f: ["interpolate", f.text("a.py"), f.path("b.py")], ["b.py", "does not exist"]),
    # eval: option values and the output directory, before the pipeline or the scorer loads
    ("eval-batch-size-0", lambda f: f.eval("--batch-size", "0"), ["--batch-size", ">= 1"]),
    ("eval-num-samples-0", lambda f: f.eval("--num-samples", "0"), ["--num-samples"]),
    ("eval-mode-unknown", lambda f: f.eval("--modes", "x"), ["unknown mode", "con_then_disc"]),
    ("eval-steps-text", lambda f: f.eval("--steps", "8,x"), ["--steps", "positive integers"]),
    ("eval-steps-0", lambda f: f.eval("--steps", "0"), ["--steps"]),
    ("eval-temperature-nan", lambda f: f.eval("--temperature", "nan"), ["--temperature"]),
    ("eval-corpus-missing", lambda f: f.eval("--corpus", f.path("nocorpus")), ["--corpus", "does not exist"]),
    (
        "eval-pipeline-missing",
        lambda f: ["eval", "--pipeline", f.path("nopipe"), "--output-dir", f.path("e")],
        ["does not exist"],
    ),  # fmt: skip
    (
        "eval-output-foreign",
        lambda f: ["eval", "--pipeline", SHIPPED, "--output-dir", f.foreign("mine")],
        ["not empty", "--overwrite"],
    ),  # fmt: skip
    (
        "eval-output-is-file",
        lambda f: ["eval", "--pipeline", SHIPPED, "--output-dir", f.text("e.txt")],
        ["is a file"],
    ),  # fmt: skip
    # tokenizer / assemble / push / config
    (
        "tokenizer-vocab-small",
        lambda f: ["tokenizer", "--vocab-size", "10", "--output", f.path("t")],
        ["--vocab-size", ">= 260"],
    ),  # fmt: skip
    (
        "tokenizer-corpus-missing",
        lambda f: ["tokenizer", "--corpus", f.path("nc"), "--output", f.path("t")],
        ["--corpus", "not a directory"],
    ),  # fmt: skip
    (
        "tokenizer-output-foreign",
        lambda f: ["tokenizer", "--corpus", f.dir("c"), "--output", f.foreign("mine")],
        ["not empty", "crocodil did not write"],
    ),  # fmt: skip
    (
        "assemble-autoencoder-missing",
        lambda f: ["assemble", "--autoencoder", f.path("ae"), "--prior", f.dir("p"), "--output", f.path("o")],
        ["--autoencoder", "not a directory"],
    ),  # fmt: skip
    (
        "assemble-output-foreign",
        lambda f: ["assemble", "--autoencoder", f.stage("ae"), "--prior", f.stage("p"), "--output", f.foreign("mine")],
        ["not empty", "--overwrite"],
    ),  # fmt: skip
    (
        "assemble-distilled-steps-without-students",
        lambda f: ["assemble", "--autoencoder", f.stage("ae"), "--prior", f.stage("p"), "--distilled-steps", "2",
                   "--output", f.path("o")],
        ["--distilled-steps needs --distilled-prior"],
    ),  # fmt: skip
    (
        "assemble-distilled-steps-0",
        lambda f: ["assemble", "--autoencoder", f.stage("ae"), "--prior", f.stage("p"), "--distilled-prior",
                   f.stage("d"), "--distilled-steps", "0", "--output", f.path("o")],
        ["--distilled-steps", ">= 1"],
    ),  # fmt: skip
    (
        "assemble-conditional-prior-steps-without-conditional-prior",
        lambda f: ["assemble", "--autoencoder", f.stage("ae"), "--prior", f.stage("p"), "--conditional-prior-steps",
                   "4", "--output", f.path("o")],
        ["--conditional-prior-steps", "no --conditional-prior"],
    ),  # fmt: skip
    (
        "assemble-num-registers-0",
        lambda f: ["assemble", "--autoencoder", f.stage("ae"), "--prior", f.stage("p"), "--num-registers", "0",
                   "--output", f.path("o")],
        ["--num-registers", ">= 1"],
    ),  # fmt: skip
    (
        "assemble-num-registers-above-k",
        lambda f: ["assemble", "--autoencoder", f.stage("ae", num_registers=4), "--prior", f.stage("p"),
                   "--num-registers", "5", "--output", f.path("o")],
        ["--num-registers 5", "K = 4"],
    ),  # fmt: skip
    ("generate-num-registers-0", lambda f: ["generate", "--num-registers", "0"], ["--num-registers", ">= 1"]),
    (
        "assemble-mdm-demasker-not-an-mdm-output",
        lambda f: ["assemble", "--autoencoder", f.stage("ae"), "--prior", f.stage("p"), "--mdm-demasker", f.dir("m"),
                   "--output", f.path("o")],
        ["--mdm-demasker", "config.json"],
    ),  # fmt: skip
    ("push-missing-dir", lambda f: ["push", f.path("nothing"), "org/name"], ["not a non-empty directory"]),
    ("generate-mdm-num-registers", lambda f: ["generate", "--mode", "mdm", "--num-registers", "5"],
     ["num_registers", "does not apply", "'mdm'"]),
    ("config-outside-the-shipped-configs", lambda f: ["config", "../../cli/__init__.py"], ["not a shipped config"]),
    ("config-a-user-file", lambda f: ["config", f.text("mine.yaml", "max_steps: 1\n")], ["not a shipped config"]),
    ("push-bad-repo-id", lambda f: ["push", f.foreign("mine"), "a/b/c"], ["org/name"]),
    # checked before any network call (offline here: a check that came after would fail on the Hub instead)
    ("push-weights-not-safetensors", lambda f: ["push", f.pipeline("p", corrupt=True), "org/name"],
     ["demasker/model.safetensors", "does not load", "nothing was uploaded"]),
    ("push-pipeline-not-loadable", lambda f: ["push", f.pipeline("p", drop="prior/config.json"), "org/name"],
     ["does not load as a pipeline", "nothing was uploaded"]),
    ("autoencode-pickled-weights", lambda f: ["autoencode", f.text("a.py"), "--pipeline", f.pipeline("p", pickled=True)],
     ["refused to load", "pickled", "safetensors"]),
    ("config-unknown", lambda f: ["config", "no/such"], ["shipped"]),
    ("command-unknown", lambda f: ["frobnicate"], ["invalid choice"]),
    # train: arguments, types and the output directory, before any data or model is built
    ("train-no-config", lambda f: ["train", "mdm"], ["--config is required"]),
    ("train-stage-unknown", lambda f: ["train", "bogus", "--config", "tiny-python/mdm"], ["invalid choice"]),
    ("train-config-missing", lambda f: ["train", "mdm", "--config", f.path("none.yaml")], ["none.yaml"]),
    (
        "train-flag-without-value",
        lambda f: ["train", "mdm", "--config", "tiny-python/mdm", "--max_steps"],
        ["--max_steps", "expected one argument"],
    ),  # fmt: skip
    (
        "train-wrong-type",
        lambda f: ["train", "mdm", "--config", "tiny-python/mdm", "--max_steps", "ten"],
        ["invalid int value"],
    ),  # fmt: skip
    (
        "train-unknown-field",
        lambda f: ["train", "mdm", "--config", "tiny-python/mdm", "--no_such_field", "1"],
        ["unknown argument", "no_such_field"],
    ),  # fmt: skip
    (
        "train-yaml-wrong-type",
        lambda f: ["train", "mdm", "--config", f.text("w.yaml", "output_dir: o\nmax_steps: x\n")],
        ["invalid int value"],
    ),  # fmt: skip
    ("train-yaml-list-for-a-scalar", lambda f: ["train", "mdm", "--config", f.text("l.yaml", "output_dir: o\n"
                                                "learning_rate: [1.0e-3, 2.0e-3]\n")], ["learning_rate", "list", "one value"]),
    ("eval-corpus-one-file", lambda f: f.eval("--corpus", f.text("one.py"), "--no-mauve"),
     ["neither a directory of programs nor a data file", "give the folder"]),
    ("eval-corpus-binary-file", lambda f: f.eval("--corpus", f.raw("c.dat", bytes(range(256)))),
     ["neither a directory of programs nor a data file"]),
    ("eval-scorer-not-a-model", lambda f: f.eval("--scorer", f.foreign("notamodel"), "--no-mauve", "--num-samples",
                                                 "2", "--steps", "2", "--modes", "mdm"), ["does not load", "causal"]),
    ("infill-span-negative", lambda f: ["infill", f.text("a.py"), "--span", "-1:3"], ["--span", "'-1:3'"]),
    ("infill-one-line-file", lambda f: ["infill", f.text("one.py", "x = 1\n"), "--span", "2:2"], ["has 1 line"]),
    ("train-yaml-not-mapping", lambda f: ["train", "mdm", "--config", f.text("l.yaml", "- 1\n- 2\n")], ["mapping"]),
    ("train-output-foreign", lambda f: ["train", "mdm", "--config", "tiny-python/mdm", *f.inputs(),
                                        "--output_dir", f.foreign("mine")], ["not empty", "--overwrite_output_dir"]),
    ("train-output-finished", lambda f: ["train", "mdm", "--config", "tiny-python/mdm", *f.inputs(), "--output_dir",
                                         f.text("done/training_complete.json", "{}") and f.path("done")],
     ["finished stage", "--overwrite_output_dir"]),
    ("train-tokenizer-missing", lambda f: ["train", "mdm", "--config", "tiny-python/mdm", "--output_dir", f.path("o"),
                                           "--tokenizer_name_or_path", f.path("no/tokenizer")],
     ["tokenizer_name_or_path", "does not exist"]),
    ("train-corpus-missing", lambda f: ["train", "mdm", "--config", "tiny-python/mdm", *f.inputs(),
                                        "--output_dir", f.path("o"), "--corpus", "./no-corpus"],
     ["corpus", "does not exist"]),
    ("train-batch-size-0", lambda f: ["train", "mdm", "--config", "tiny-python/mdm",
                                      "--per_device_train_batch_size", "0"], ["per_device_train_batch_size", ">= 1"]),
    ("train-learning-rate-nan", lambda f: ["train", "mdm", "--config", "tiny-python/mdm", "--learning_rate", "nan"],
     ["learning_rate", "finite"]),
    ("train-all-mask-prob-2", lambda f: ["train", "autoencoder", "--config", "tiny-python/autoencoder",
                                         "--all_mask_prob", "2"], ["all_mask_prob", "<= 1"]),
    ("train-max-length-2", lambda f: ["train", "mdm", "--config", "tiny-python/mdm", "--max_length", "2"],
     ["max_length", ">= 4"]),
    ("train-num-registers-0", lambda f: ["train", "autoencoder", "--config", "tiny-python/autoencoder",
                                         "--num_registers", "0"], ["num_registers"]),
    ("train-prior-num-registers-0", lambda f: ["train", "prior", "--config", "tiny-python/prior",
                                               "--prior_num_registers", "0"], ["prior_num_registers", ">= 1"]),
    ("train-prior-num-registers-on-mdm", lambda f: ["train", "mdm", "--config", "tiny-python/mdm",
                                                    "--prior_num_registers", "2"], ["prior_num_registers", "not to mdm"]),
    ("train-config-not-utf8", lambda f: ["train", "mdm", "--config", f.raw("bad.yaml", b"output_dir: \xff\n")],
     ["bad.yaml", "not UTF-8"]),
    ("assemble-not-a-stage-output", lambda f: ["assemble", "--autoencoder", f.dir("ae"), "--prior", f.dir("p"),
                                               "--output", f.path("o")], ["demasker/config.json", "autoencoder"]),
    ("eval-scorer-missing", lambda f: f.eval("--scorer", f.path("noscorer")), ["--scorer", "not a directory"]),
    ("tokenizer-corpus-empty", lambda f: ["tokenizer", "--corpus", f.dir("c"), "--output", f.path("t")],
     ["no readable .py files"]),
]  # fmt: skip


@pytest.mark.parametrize("case", CLI_CASES, ids=[c[0] for c in CLI_CASES])
def test_cli_bad_input_is_one_clear_line_with_status_2(case, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _, build, words = case
    files = Files(tmp_path)
    argv = build(files)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file()}
    status, out, err = run_cli(argv, capsys)
    assert status == 2, (status, out[-500:], err[-2000:])
    assert "Traceback" not in err and "Traceback" not in out
    error_lines = [line for line in err.splitlines() if ": error: " in line]
    assert error_lines, err[-2000:]
    message = " ".join(error_lines)
    for word in words:
        assert word in message, (word, message)
    for path, content in before.items():  # nothing the user had is changed or removed
        assert path.exists() and path.read_bytes() == content, path


def test_cli_cases_cover_every_command():
    assert len(CLI_CASES) >= 60
    commands = {build(Files(Path("/nonexistent")))[0] for _, build, _ in CLI_CASES if True}
    assert commands >= {"generate", "autoencode", "interpolate", "eval", "tokenizer", "assemble", "push", "train"}


# ---------------------------------------------------------------- the API


@pytest.fixture(scope="module")
def pipe():
    from crocodil_hf.testing import build_tiny_pipeline

    return build_tiny_pipeline()


def _registers(pipe, **changes):
    d = pipe.demasker.config.register_dim
    z = torch.randn(1, pipe.num_registers_max, d)
    return changes.get("value", z)


API_CASES = [
    ("gen-length-0", dict(mode="mdm", gen_length=0), "gen_length"),
    ("gen-length-huge", dict(mode="mdm", gen_length=100_000), "max_sequence_length"),
    ("gen-length-float", dict(mode="mdm", gen_length=16.0), "gen_length"),
    ("temperature-nan", dict(mode="mdm", gen_length=8, temperature=math.nan), "temperature"),
    ("temperature-inf", dict(mode="mdm", gen_length=8, temperature=math.inf), "temperature"),
    ("eos-penalty-negative", dict(mode="mdm", gen_length=8, eos_penalty=-1.0), "eos_penalty"),
    ("threshold-nan", dict(mode="mdm", gen_length=8, threshold=math.nan), "threshold"),
    ("eta-nan", dict(mode="con_then_disc", gen_length=8, eta=math.nan), "eta"),
    ("num-samples-0", dict(mode="mdm", gen_length=8, num_samples=0), "num_samples"),
    ("num-registers-0", dict(mode="con_then_disc", gen_length=8, num_registers=0), "num_registers"),
    ("prior-steps-0", dict(mode="con_then_disc", gen_length=8, prior_steps=0), "prior_steps"),
    ("refresh-at-out-of-range", dict(mode="con_within_disc", gen_length=8, refresh_at=[1.5]), "refresh_at"),
    ("refresh-at-nan", dict(mode="con_within_disc", gen_length=8, refresh_at=[math.nan]), "refresh_at"),
    ("refresh-at-not-a-list", dict(mode="con_within_disc", gen_length=8, refresh_at=0.5), "refresh_at"),
    ("generator-not-a-generator", dict(mode="mdm", gen_length=8, generator=5), "generator"),
    (
        "generators-per-sample",
        dict(mode="mdm", gen_length=8, num_samples=2, generator=[torch.Generator()]),
        "one per sample",
    ),  # fmt: skip
    ("mode-unknown", dict(mode="bogus"), "mode"),
    ("text-empty-string", dict(mode="autoencode", text=[""]), "non-empty"),
    ("text-blank-string", dict(mode="autoencode", text=["   "]), "non-empty"),
    ("text-not-string", dict(mode="autoencode", text=[123]), "non-empty string"),
    ("text-without-autoencode", dict(mode="mdm", text="x = 1"), "only used"),
    ("registers-nan", dict(mode="con_then_disc", gen_length=8, registers="nan"), "NaN"),
    ("registers-int", dict(mode="con_then_disc", gen_length=8, registers="int"), "floating"),
    ("registers-wrong-width", dict(mode="con_then_disc", gen_length=8, registers="width"), "width"),
    ("registers-wrong-batch", dict(mode="con_then_disc", gen_length=8, registers="batch"), "shape"),
    ("registers-on-meta", dict(mode="con_then_disc", gen_length=8, registers="meta"), "meta device"),
]


@pytest.mark.parametrize("case", API_CASES, ids=[c[0] for c in API_CASES])
def test_pipeline_rejects_bad_arguments_before_any_compute(case, pipe, monkeypatch):
    _, kwargs, word = case
    kwargs = dict(kwargs)
    d, k = pipe.demasker.config.register_dim, pipe.num_registers_max
    registers = {
        "nan": torch.full((1, k, d), math.nan),
        "int": torch.ones(1, k, d, dtype=torch.long),
        "width": torch.randn(1, k, d + 1),
        "batch": torch.randn(3, k, d),
        "meta": torch.empty(1, k, d, device="meta"),
    }
    if "registers" in kwargs:
        kwargs["registers"] = registers[kwargs["registers"]]
    calls = []
    monkeypatch.setattr(pipe.demasker, "forward", lambda *a, **k: calls.append(1))
    with pytest.raises(ValueError, match=word):
        pipe(**kwargs)
    assert not calls, "the demasker ran before the arguments were checked"


def test_loading_a_missing_or_empty_local_pipeline_says_so(tmp_path):
    from crocodil_hf import CrocodilPipeline

    with pytest.raises(ValueError, match="does not exist"):
        CrocodilPipeline.from_pretrained(str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="model_index.json"):
        CrocodilPipeline.from_pretrained(tmp_path)


def test_encode_decode_interpolate_reject_bad_inputs(pipe):
    with pytest.raises(ValueError, match="non-empty"):
        pipe.encode([""])
    with pytest.raises(ValueError, match="non-empty"):
        pipe.encode([])
    with pytest.raises(ValueError, match="register banks"):
        pipe.decode([[0.0]])
    with pytest.raises(ValueError, match="finite"):
        pipe.interpolate("a = 1\n", "b = 2\n", alphas=[0.0, math.nan])


def test_a_long_generation_past_the_trained_length_warns(pipe, caplog):
    trained, pipe.demasker.config.default_gen_length = pipe.demasker.config.default_gen_length, 8
    try:
        out = pipe(mode="mdm", gen_length=16, steps=2)
    finally:
        pipe.demasker.config.default_gen_length = trained
    assert out.sequences.shape == (1, 16)
    assert "longer than the 8 tokens this pipeline was trained on" in caplog.text


def test_a_prompt_that_makes_the_row_longer_than_the_trained_length_warns(pipe, caplog):
    """`complete` / `infill` on a long file: the span fits the trained length, prompt + span + suffix does not."""
    prompt = "def f(x):\n    return x + 1\n"
    fits = len(pipe.text_canvas.ids(prompt)) + 4 + 1 + 4  # a short prompt + the span + a slot, and room to spare
    trained, pipe.demasker.config.default_gen_length = pipe.demasker.config.default_gen_length, fits
    try:
        pipe(mode="mdm", prompt=prompt, gen_length=4, steps=2)
        assert "trained on" not in caplog.text  # a short prompt: no warning
        pipe(mode="mdm", prompt=prompt * 3, suffix=prompt, gen_length=4, steps=2)  # the lines that fit: no warning
        assert "trained on" not in caplog.text
        pipe(mode="mdm", prompt=prompt * 3, suffix=prompt, gen_length=4, steps=2, fit_context=False)
    finally:
        pipe.demasker.config.default_gen_length = trained
    assert "prompt + span + suffix" in caplog.text and f"longer than the {fits} tokens" in caplog.text


@pytest.mark.parametrize(
    "ids, word",
    [
        (lambda v: torch.tensor([[0, v]]), "the vocabulary size"),
        (lambda v: torch.tensor([[-1, 2]]), "the vocabulary size"),
        (lambda v: torch.tensor([[0.0, 1.0]]), "integer token ids"),
    ],
    ids=["id-too-large", "id-negative", "id-float"],
)
def test_models_name_the_vocabulary_for_out_of_range_ids(pipe, ids, word):
    demasker, encoder = pipe.demasker, pipe.encoder
    vocab = demasker.config.vocab_size
    with pytest.raises(ValueError, match=word):
        demasker(ids(vocab))
    z = torch.randn(1, pipe.num_registers_max, demasker.config.register_dim)
    with pytest.raises(ValueError, match=word):
        demasker(ids(vocab), registers=z)
    with pytest.raises(ValueError, match=word):
        demasker.model(ids(vocab))
    with pytest.raises(ValueError, match=word):
        encoder(input_ids=ids(encoder.backbone.get_input_embeddings().num_embeddings))


def test_a_pipeline_whose_components_disagree_on_k_or_d_is_refused(pipe):
    from crocodil_hf import CrocodilPipeline, RegisterPriorTransformer

    parts = {name: getattr(pipe, name) for name in ("demasker", "encoder", "prior", "scheduler", "tokenizer")}
    k, d = pipe.num_registers_max, pipe.demasker.config.register_dim
    for bad_k, bad_d in ((k + 1, d), (k, d * 2)):
        other = RegisterPriorTransformer(num_registers=bad_k, register_dim=bad_d, hidden_size=32, num_layers=1,
                                         num_attention_heads=2)  # fmt: skip
        with pytest.raises(ValueError, match=f"demasker has K={k}, d={d}; prior has K={bad_k}, d={bad_d}"):
            CrocodilPipeline(**{**parts, "prior": other})
        with pytest.raises(ValueError, match="conditional_prior has"):
            CrocodilPipeline(**parts, conditional_prior=other)
    assert CrocodilPipeline(**parts).num_registers_max == k


# ---------------------------------------------------------------- strict loading


def test_every_component_loads_strictly_and_names_what_is_wrong(pipe, tmp_path):
    from safetensors.torch import load_file, save_file

    from crocodil_hf import CrocodilPipeline, GuidedLLaDAForMaskedLM, RegisterPriorTransformer

    pipe.save_pretrained(tmp_path / "p")
    prior_file = tmp_path / "p" / "prior" / "diffusion_pytorch_model.safetensors"
    weights = load_file(str(prior_file))
    dropped = sorted(weights)[0]
    save_file({k: v for k, v in weights.items() if k != dropped}, str(prior_file))
    for kwargs in ({}, {"low_cpu_mem_usage": False}):
        with pytest.raises(ValueError, match=f"missing keys.*{dropped}"):
            RegisterPriorTransformer.from_pretrained(tmp_path / "p" / "prior", **kwargs)
    with pytest.raises(ValueError, match="RegisterPriorTransformer.*missing"):
        CrocodilPipeline.from_pretrained(tmp_path / "p")
    assert RegisterPriorTransformer.from_pretrained(tmp_path / "p" / "prior", strict=False) is not None
    save_file(weights, str(prior_file))  # whole again

    demasker_file = tmp_path / "p" / "demasker" / "model.safetensors"
    weights = load_file(str(demasker_file))
    save_file({**weights, "stray.weight": torch.zeros(2)}, str(demasker_file), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="unexpected.*stray.weight"):
        GuidedLLaDAForMaskedLM.from_pretrained(tmp_path / "p" / "demasker")
    first = sorted(weights)[0]
    save_file({**weights, first: torch.zeros(3, 3)}, str(demasker_file), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="mismatched"):
        GuidedLLaDAForMaskedLM.from_pretrained(tmp_path / "p" / "demasker")

    raw = demasker_file.read_bytes()
    demasker_file.write_bytes(raw[: len(raw) // 2])  # a truncated download
    for load in (lambda: GuidedLLaDAForMaskedLM.from_pretrained(tmp_path / "p" / "demasker"),
                 lambda: CrocodilPipeline.from_pretrained(tmp_path / "p")):  # fmt: skip
        with pytest.raises(ValueError, match=r"demasker.*corrupt or truncated"):
            load()


def test_model_index_naming_the_wrong_class_names_the_component(pipe, tmp_path):
    from crocodil_hf import CrocodilPipeline

    pipe.save_pretrained(tmp_path / "p")
    index = json.loads((tmp_path / "p" / "model_index.json").read_text())
    index["prior"] = ["crocodil_hf", "RegisterEncoderModel"]
    (tmp_path / "p" / "model_index.json").write_text(json.dumps(index))
    with pytest.raises((ValueError, OSError)) as info:
        CrocodilPipeline.from_pretrained(tmp_path / "p")
    assert "prior" in str(info.value)


# ---------------------------------------------------------------- data honesty


def test_programs_that_do_not_parse_are_skipped_and_counted(tmp_path):
    from crocodil_hf.data.corpus import CorpusSummary, read_source_files

    (tmp_path / "good.py").write_text("def f():\n    return 1\n")
    (tmp_path / "broken.py").write_text("def f(:\n    return\n")
    (tmp_path / "escape.py").write_text("x = '\\d'\n")  # a SyntaxWarning, still a program
    (tmp_path / "bom.py").write_bytes(b"\xef\xbb\xbfy = 2\n")  # a byte-order mark: still a program
    summary = CorpusSummary()
    used = [name for name, _ in read_source_files(tmp_path, summary=summary)]
    assert used == ["bom.py", "escape.py", "good.py"]
    assert summary.skipped_syntax == 1 and summary.skipped == 1
    assert "1 not parsing" in str(summary)


# ---------------------------------------------------------------- the entry point


def _crocodil(*args, env=None, timeout=120):
    command = [sys.executable, "-c", "import sys; from crocodil_hf.cli import main; sys.exit(main())", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env or os.environ)


def test_help_and_argument_errors_answer_without_importing_torch():
    start = time.perf_counter()
    result = _crocodil("--help")
    elapsed = time.perf_counter() - start
    assert result.returncode == 0 and "generate" in result.stdout
    probe = subprocess.run(
        [sys.executable, "-c", "import sys; from crocodil_hf.cli import build_parser; build_parser();"
         "print(sorted(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert probe.stdout.strip() == "[]", probe.stdout
    assert elapsed < 5, elapsed  # ~0.1 s measured; the bound leaves room for a loaded CI machine
    assert _crocodil("train", "--help").returncode == 0
    result = _crocodil("generate", "--gen-length", "0")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert result.stderr.strip() == "crocodil generate: error: --gen-length must be an integer >= 1, got 0."


@pytest.mark.parametrize(
    "argv, words",
    [
        (["generate", "--steps", "100", "--gen-length", "64"], ["`steps` (100)"]),
        (["generate", "--num-registers", "99"], ["num_registers", "99"]),
        (["generate", "--block-length", "7", "--gen-length", "64", "--steps", "8"], ["block_length"]),
        (["complete", "--prompt", "def f(x):\n", "--gen-length", "600"], ["exceed", "511"]),
        (["autoencode", "FILE", "--num-registers", "99"], ["num_registers", "99"]),
        (["eval", "--pipeline", SHIPPED, "--num-registers", "99", "--output-dir", "OUT"], ["num_registers", "99"]),
        (["eval", "--pipeline", SHIPPED, "--steps", "100", "--output-dir", "OUT"], ["`steps` (100)"]),
    ],
)
def test_checks_the_configs_allow_come_before_the_weights_and_the_corpus(argv, words, tmp_path, capsys, monkeypatch):
    """Issue 40: a bad value is refused from the pipeline's configs: no weights loaded, no corpus read, no output."""
    from crocodil_hf import CrocodilPipeline
    from crocodil_hf.evaluation import sweep

    def forbidden(*args, **kwargs):
        raise AssertionError("loaded weights or read the corpus before checking the options")

    monkeypatch.setattr(CrocodilPipeline, "from_pretrained", classmethod(forbidden))
    monkeypatch.setattr(sweep, "reference_programs", forbidden)
    program = tmp_path / "a.py"
    program.write_text("def f(x):\n    return x\n")
    argv = [str(program) if a == "FILE" else str(tmp_path / "out") if a == "OUT" else a for a in argv]
    status, _, err = run_cli(argv, capsys)
    assert status == 2 and "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)
    assert not (tmp_path / "out").exists()


def test_train_stage_help_is_cached_and_then_answers_without_importing_torch(tmp_path):
    env = {**os.environ, "CROCODIL_CACHE": str(tmp_path)}
    code = (
        "import sys; from crocodil_hf.cli import main; main(['train', 'prior', '--help']);"
        "print('torch' in sys.modules)"
    )
    first = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    second = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert first.stdout.splitlines()[-1] == "True" and second.stdout.splitlines()[-1] == "False"
    help_text = second.stdout.rsplit("\n", 2)[0]
    assert help_text == first.stdout.rsplit("\n", 2)[0]  # the cached text is the text
    assert "crocodil train prior" in help_text and "--prompt_span_pad" in help_text and "STAGE" not in help_text


def test_a_corpus_file_that_does_not_parse_is_one_line(tmp_path):
    # A subprocess: the datasets library logs through a handler bound to the stderr of its first import.
    corpus = tmp_path / "c.jsonl"
    corpus.write_text('{"text": "a = 1"}\n{broken\n')
    result = _crocodil("train", "mdm", "--config", "tiny-python/mdm", "--output_dir", str(tmp_path / "o"),
                       "--tokenizer_name_or_path", TOKENIZER, "--corpus", str(corpus), "--max_steps", "1")  # fmt: skip
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-2000:]
    assert "crocodil train mdm: error: the corpus could not be read" in result.stderr


def test_debug_shows_the_traceback(tmp_path):
    missing = str(tmp_path / "missing.py")
    plain = _crocodil("autoencode", missing)
    assert plain.returncode == 2 and "Traceback" not in plain.stderr
    for result in (
        _crocodil("autoencode", missing, "--debug"),
        _crocodil("autoencode", missing, env={**os.environ, "CROCODIL_DEBUG": "1"}),
    ):
        assert result.returncode == 2
        assert "Traceback" in result.stderr and "crocodil autoencode: error:" in result.stderr


def test_a_full_disk_reported_by_torch_save_is_named_as_such():
    from safetensors import SafetensorError

    from crocodil_hf.cli import explain_error

    torch_zip = RuntimeError("[enforce fail at inline_container.cc:664] . unexpected pos 8855936 vs 8855824")
    safetensors_write = SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")
    for err in (torch_zip, OSError(28, "No space left on device", "x/optimizer.pt"), safetensors_write):
        message, status = explain_error(err)
        assert status == 2 and message.startswith("no space left on device"), message


def test_hub_unreachable_names_the_endpoint(monkeypatch):
    from huggingface_hub import constants
    from huggingface_hub.errors import OfflineModeIsEnabled

    from crocodil_hf.cli import explain_error

    monkeypatch.setattr(constants, "ENDPOINT", "http://127.0.0.1:9")
    message, status = explain_error(OfflineModeIsEnabled("offline"))
    assert status == 2 and "http://127.0.0.1:9" in message, message


def test_an_unexpected_failure_is_one_line_with_status_1(monkeypatch, capsys):
    import crocodil_hf.cli as cli

    def broken(args, rest):
        raise KeyError("internal")

    monkeypatch.setattr(cli.COMMANDS["config"], "run", broken)
    status, _, err = run_cli(["config", "x"], capsys)
    assert status == 1 and "Traceback" not in err
    assert "unexpected KeyError" in err and "--debug" in err


# ---------------------------------------------------------------- the census: every numeric option of every command

CENSUS_BASE = {  # a valid command line of each command, FILE a small program
    "generate": [],
    "complete": ["FILE", "--lines", "1"],
    "infill": ["FILE", "--span", "2:2"],
    "autoencode": ["FILE"],
    "interpolate": ["FILE", "FILE"],
    "eval": ["--pipeline", SHIPPED, "--output-dir", "OUT"],
    "tokenizer": ["--corpus", "DIR", "--output", "OUT"],
}
# huge values a user may mean: a long job, not an error (every other option must refuse 10^9)
CENSUS_HUGE_IS_VALID = {"--temperature", "--eos-penalty", "--seed", "--num-samples", "--batch-size", "--vocab-size"}


def _census_cases() -> list[tuple[str, str, str]]:
    import argparse

    from crocodil_hf.cli import build_parser

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    cases = []
    for name in CENSUS_BASE:
        for action in commands[name]._actions:
            if isinstance(action, argparse._StoreAction) and action.option_strings and action.type in (int, float):
                option = action.option_strings[0]
                for value in ("nan", "-7", "1000000000"):
                    if not (value == "1000000000" and option in CENSUS_HUGE_IS_VALID):
                        cases.append((name, option, value))
    return cases


@pytest.mark.parametrize("name, option, value", _census_cases())
def test_census_every_numeric_option_refuses_nan_negative_and_huge_before_any_work(
    name, option, value, tmp_path, capsys, monkeypatch
):
    """Walks the parser: a new numeric option that is not checked fails here. The weights, the corpus and the
    tokenizer trainer are forbidden, so a value that slips through is caught before any work."""
    from crocodil_hf import CrocodilPipeline
    from crocodil_hf.evaluation import sweep
    from crocodil_hf.training import run as training_run

    def forbidden(*args, **kwargs):
        raise AssertionError(f"{option}={value} was not refused before the work started")

    monkeypatch.setattr(CrocodilPipeline, "from_pretrained", classmethod(forbidden))
    monkeypatch.setattr(sweep, "reference_programs", forbidden)
    monkeypatch.setattr(training_run, "train_tokenizer_command", forbidden)
    program = tmp_path / "a.py"
    program.write_text("def f(x):\n    y = x\n    return y\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "m.py").write_text("def g():\n    return 1\n")
    where = {"FILE": str(program), "OUT": str(tmp_path / "out"), "DIR": str(tmp_path / "src")}
    base = [where.get(a, a) for a in CENSUS_BASE[name]]
    if option in base:  # the option replaces the base's value
        i = base.index(option)
        base = base[:i] + base[i + 2 :]
    status, _, err = run_cli([name, *base, f"{option}={value}"], capsys)
    assert status == 2 and "Traceback" not in err, (status, err[-600:])
    assert option in err or option.lstrip("-").replace("-", "_") in err, err
    assert not (tmp_path / "out").exists()
