"""The `crocodil` command: generate, autoencode, interpolate on a saved pipeline; clear errors."""

import json

import pytest

from crocodil_hf.cli import main
from crocodil_hf.testing import TINY_CORPUS, build_tiny_pipeline


@pytest.fixture(scope="module")
def pipeline_dir(tmp_path_factory):
    path = tmp_path_factory.mktemp("pipe")
    build_tiny_pipeline().save_pretrained(path)
    return str(path)


def test_generate_prints_samples_nfe_and_wall_time_and_writes_jsonl(pipeline_dir, tmp_path, capsys):
    out_file = tmp_path / "samples.jsonl"
    code = main(
        [
            "generate",
            "--pipeline",
            pipeline_dir,
            "--num-samples",
            "2",
            "--steps",
            "4",
            "--gen-length",
            "16",
            "--prior-steps",
            "3",
            "--seed",
            "5",
            "--output",
            str(out_file),
        ]
    )
    printed = capsys.readouterr().out
    assert code == 0
    assert "# ---- sample 0 (con_within_disc, seed 5) ----" in printed and "sample 1" in printed
    assert "# NFE: 4 demasker calls" in printed and "# wall time:" in printed
    rows = [json.loads(line) for line in out_file.read_text().splitlines()]
    assert [r["seed"] for r in rows] == [5, 6] and rows[0]["mode"] == "con_within_disc"
    nfe = rows[0]["nfe"]  # the priors' share of the sample's FLOPs, from the pipeline's own accounting
    assert 0 < nfe["prior_total"] < nfe["total"]
    assert f"(priors {100 * nfe['prior_total'] / nfe['total']:.1f} %)" in printed
    assert nfe["encoder_calls"] == 1 and ", 1 encoder call = " in printed  # singular for one call


def test_generate_is_reproducible_per_seed(pipeline_dir, capsys):
    args = [
        "generate",
        "--pipeline",
        pipeline_dir,
        "--num-samples",
        "1",
        "--steps",
        "4",
        "--gen-length",
        "16",
        "--prior-steps",
        "3",
        "--mode",
        "con_then_disc",
        "--temperature",
        "1.0",
    ]
    main(args)
    first = capsys.readouterr().out.split("# NFE")[0]
    main(args)
    assert capsys.readouterr().out.split("# NFE")[0] == first


def test_autoencode_and_interpolate_files(pipeline_dir, tmp_path, capsys):
    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text(TINY_CORPUS[0])
    b.write_text(TINY_CORPUS[1])
    assert main(["autoencode", str(a), "--pipeline", pipeline_dir, "--steps", "4", "--gen-length", "32"]) == 0
    printed = capsys.readouterr().out
    assert "# ---- reconstruction ----" in printed and "# CER " in printed
    assert (
        main(
            [
                "interpolate",
                str(a),
                str(b),
                "--pipeline",
                pipeline_dir,
                "--alphas",
                "0,0.5,1",
                "--steps",
                "4",
                "--gen-length",
                "32",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out.count("# ---- alpha = ") == 3


def test_errors_are_reported_without_a_traceback(pipeline_dir, tmp_path, capsys):
    empty = tmp_path / "empty.py"
    empty.write_text("\n")
    assert main(["autoencode", str(empty), "--pipeline", pipeline_dir]) == 2
    assert "is empty" in capsys.readouterr().err
    assert main(["generate", "--pipeline", pipeline_dir, "--steps", "100", "--gen-length", "16"]) == 2
    assert "steps" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["generate", "--mode", "bogus"])


def test_complete_and_infill_keep_the_prompt_and_suffix_and_show_each_part(pipeline_dir, tmp_path, capsys):
    program = tmp_path / "prog.py"
    program.write_text("import os\n\ndef main():\n    path = os.getcwd()\n    print(path)\n\nmain()\n")
    common = ["--pipeline", pipeline_dir, "--gen-length", "8", "--steps", "4", "--prior-steps", "3"]
    assert main(["complete", str(program), "--lines", "3", *common]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# ---- prompt (kept) ----\nimport os\n\ndef main():\n# ---- generated 0")
    assert main(["infill", str(program), "--span", "4:5", "--mode", "mdm", *common]) == 0
    out = capsys.readouterr().out
    assert "# ---- suffix (kept) ----\n\nmain()\n" in out
    assert "# ---- original lines ----\n    path = os.getcwd()\n    print(path)\n" in out
    assert main(["complete", "--prompt", "def f(x):\n", "--num-samples", "2", *common]) == 0
    assert capsys.readouterr().out.count("# ---- generated ") == 2


def test_infill_writes_the_filled_file_with_the_lines_around_the_span_unchanged(pipeline_dir, tmp_path, capsys):
    program = tmp_path / "prog.py"
    program.write_text("import os\n\ndef main():\n    path = os.getcwd()\n    print(path)\n\nmain()\n")
    filled = tmp_path / "filled.py"
    common = ["--pipeline", pipeline_dir, "--gen-length", "8", "--steps", "4", "--prior-steps", "3"]
    assert main(["infill", str(program), "--span", "4:5", "--output", str(filled), *common]) == 0
    generated = capsys.readouterr().out.split("# ---- generated 0 (con_within_disc, seed 0) ----\n")[1]
    generated = generated.split("# ---- suffix (kept) ----")[0]
    text = filled.read_text()
    assert text.startswith("import os\n\ndef main():\n") and text.endswith("\nmain()\n")
    assert (
        text
        == "import os\n\ndef main():\n" + text[len("import os\n\ndef main():\n") : -len("\nmain()\n")] + "\nmain()\n"
    )
    assert generated.strip() in text  # the printed span is the written one
    before = filled.read_text()
    assert main(["infill", str(program), "--span", "4:5", "--output", str(filled), *common]) == 2  # no overwrite
    assert "already exists" in capsys.readouterr().err and filled.read_text() == before


def test_complete_stop_blank_line_ends_the_printed_and_written_completion_at_its_first_blank_line(
    tmp_path, capsys, monkeypatch
):
    from types import SimpleNamespace

    from crocodil_hf.cli.commands import complete as complete_command

    generated = "    return x\n   \ndef g():\n    pass\n"
    out = SimpleNamespace(texts=[generated], full_texts=["def f(x):\n" + generated], nfe={"total": 1}, wall_time=0.1)

    monkeypatch.setattr(complete_command, "load", lambda name, mode=None, **call: lambda mode, **kwargs: out)
    monkeypatch.setattr(complete_command, "nfe_line", lambda nfe: "NFE 1")
    written = tmp_path / "done.py"
    args = ["complete", "--prompt", "def f(x):\n", "--stop", "blank-line", "--output", str(written)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "seed 0) ----\n    return x\n# NFE 1" in printed and "def g" not in printed
    assert written.read_text() == "def f(x):\n    return x\n"
    assert main(["complete", "--prompt", "def f(x):\n"]) == 0  # the default stops at EOS only
    assert "def g():\n    pass\n" in capsys.readouterr().out


def test_every_option_of_every_command_says_what_it_does():
    """`crocodil COMMAND --help` explains each argument: none is listed with a bare name."""
    import argparse

    from crocodil_hf.cli import build_parser

    parser = build_parser()
    commands = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices
    bare = [
        f"{name} {action.option_strings[0] if action.option_strings else action.dest}"
        for name, command in commands.items()
        for action in command._actions
        if not isinstance(action, argparse._HelpAction) and not action.help
    ]
    assert len(commands) >= 10 and not bare, bare


def test_kv_cache_option_reaches_the_pipeline(pipeline_dir, tmp_path, capsys):
    """`--kv-cache dual` runs the same calls with less demasker work (4 blocks): the JSONL's executed FLOPs say so."""
    flops = {}
    for cache in (None, "dual"):
        out_file = tmp_path / f"{cache}.jsonl"
        args = ["generate", "--pipeline", pipeline_dir, "--num-samples", "1", "--steps", "8", "--gen-length", "16",
                "--block-length", "4", "--prior-steps", "3", "--output", str(out_file)]  # fmt: skip
        assert main(args + (["--kv-cache", cache] if cache else [])) == 0
        nfe = json.loads(out_file.read_text().splitlines()[0])["nfe"]
        assert nfe["demasker_calls"] == 8
        flops[cache] = nfe["demasker_flops"]
    assert flops["dual"] < flops[None]
    with pytest.raises(SystemExit) as refused:  # argparse's own refusal, status 2
        main(["generate", "--pipeline", pipeline_dir, "--kv-cache", "triple"])
    assert refused.value.code == 2 and "invalid choice: 'triple'" in capsys.readouterr().err
