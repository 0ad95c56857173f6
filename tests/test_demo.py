"""The demo's actions (`demo.backend.DemoBackend`) on the shipped model, without a browser: each tab gives what the
pipeline's own call gives for the same seed, the animation is the call's own trajectory, bad inputs are refused with
one line. tests/test_demo_browser.py drives the same app in a real browser."""

import pytest
import torch

from crocodil_hf import CrocodilPipeline
from crocodil_hf.demo.backend import DemoBackend
from crocodil_hf.demo.render import MASK_CELL, canvas_html, cell_states
from crocodil_hf.utils.files import split_lines

PROGRAM = (
    "import json\n\n\ndef load(path):\n    with open(path) as f:\n        return json.load(f)\n\n\n"
    "def save(data, path):\n    with open(path, 'w') as f:\n        json.dump(data, f)\n"
)


@pytest.fixture(scope="module")
def demo():
    return DemoBackend(CrocodilPipeline.from_pretrained("crocodil-python-tiny"))


def seeded(seed):
    return torch.Generator().manual_seed(seed)


def masks_in(html: str) -> int:
    return html.count('class="cell mask"')


def test_split_lines_cuts_at_line_starts():
    assert split_lines(PROGRAM, 5, 6) == ("".join(PROGRAM.splitlines(True)[:4]), "".join(PROGRAM.splitlines(True)[6:]),
                                          "    with open(path) as f:\n        return json.load(f)\n")  # fmt: skip
    prompt, suffix, original = split_lines(PROGRAM, 9)
    assert suffix is None and prompt + original == PROGRAM and original.startswith("def save")
    assert split_lines("a\nb\n", 2, 2)[1] is None  # the last line: nothing after it
    for start, end in ((1, 2), (3, 2), (2, 12), (0, None)):
        with pytest.raises(ValueError, match="START:END line numbers with 2 <= START <= END <= 11"):
            split_lines(PROGRAM, start, end)
    with pytest.raises(ValueError, match="has 1 line"):
        split_lines("x = 1\n", 2, 2)
    with pytest.raises(ValueError, match="empty"):
        split_lines(" \n", 2, 2)


def test_cells_mark_masks_and_this_steps_tokens():
    mask, eos = 9, 7
    assert cell_states([1, 9, 7], None, mask_id=mask, eos_id=eos) == ["kept", "mask", "eos"]
    assert cell_states([1, 2, 7, 9], [1, 9, 9, 9], mask_id=mask, eos_id=eos) == ["kept", "new", "new", "mask"]
    html = canvas_html(["<a>", MASK_CELL], ["new", "mask"], prompt="x = '&'\n", caption="step 1")
    assert "&lt;a&gt;" in html and "&amp;" in html and "<a>" not in html  # code is text, never markup
    assert masks_in(html) == 1 and html.count('class="cell fixed"') == 1 and "step 1" in html
    with pytest.raises(ValueError):
        canvas_html(["a"], [])


def test_generate_animates_the_calls_own_trajectory(demo):
    """The frames are the pipeline's steps (its callback), from all masks to the call's result for the seed."""
    pipe = demo.pipe
    frames = list(demo.generate("con_within_disc", 16, num_registers=2, seed=3))
    own = pipe("con_within_disc", gen_length=64, steps=16, num_registers=2, generator=seeded(3))
    assert frames[-1].code == own.texts[0] and "16 demasker calls" in frames[-1].nfe
    assert len(frames) == 16 + 2  # all-masked, one per demasker call, the result
    masks = [masks_in(f.canvas) for f in frames]
    assert masks[0] == 64 and masks[-2] == 0 == masks[-1]
    assert all(a > b for a, b in zip(masks[:-2], masks[1:-1]))  # every call commits tokens, never un-commits
    assert all(f.canvas.count('class="cell new"') == a - b for f, a, b in zip(frames[1:-1], masks, masks[1:]))
    assert not any(f.code for f in frames[:-1])  # the program appears when the call is done
    other = list(demo.generate("con_within_disc", 16, num_registers=2, seed=4))[-1].code
    assert other == pipe("con_within_disc", gen_length=64, steps=16, num_registers=2, generator=seeded(4)).texts[0]


def test_generate_passes_every_setting(demo):
    pipe = demo.pipe
    for mode, call in (
        ("mdm", dict(temperature=1.0)),
        ("con_then_disc", dict(num_registers=1, threshold=0.5)),
    ):
        got = list(demo.generate(mode, 8, seed=1, **call))[-1].code
        call = dict(call, num_registers=None if mode == "mdm" else call["num_registers"])
        assert got == pipe(mode, gen_length=64, steps=8, generator=seeded(1), **call).texts[0]


def test_fill_keeps_the_other_lines_and_marks_the_span(demo):
    frames = list(demo.fill(PROGRAM, 5, 6, "con_within_disc", 8, gen_length=32, seed=0))
    prompt, suffix, _ = split_lines(PROGRAM, 5, 6)
    own = demo.pipe("con_within_disc", prompt=prompt, suffix=suffix, gen_length=32, steps=8, generator=seeded(0))
    last = frames[-1]
    assert last.code == own.full_texts[0] and last.code.startswith(prompt) and last.code.endswith(suffix)
    assert 'class="cell span"' in last.canvas and last.canvas.count('class="cell fixed"') == 2
    assert masks_in(frames[0].canvas) == 32 and "def load(path):" in frames[0].canvas  # the prompt is shown
    completion = list(demo.fill(PROGRAM, 9, None, "mdm", 8, gen_length=16))[-1]
    assert completion.code.startswith(split_lines(PROGRAM, 9)[0]) and "save" not in completion.code.split("\n")[8:9]


def test_autoencode_is_the_pipelines_reconstruction(demo):
    code = "def add(a, b):\n    return a + b\n"
    rows = demo.autoencode(code, seed=0)
    assert [n for n, _, _ in rows] == [4, 8, 16]
    for n, text, cer in rows:
        own = demo.pipe("autoencode", text=[code], gen_length=64, steps=n, generator=seeded(0))
        assert text == own.texts[0] and 0 <= cer <= 1
    a, b = code, "for i in range(3):\n    print(i)\n"
    assert demo.interpolate(a, b, 0.25) == demo.pipe.interpolate(a, b, alphas=[0.25], gen_length=64, steps=16)[0]


@pytest.mark.parametrize(
    "action, message",
    [
        (lambda d: d.autoencode("   \n"), "the program is empty"),
        (lambda d: d.autoencode("x = 1\n" * 40), "this model reconstructs programs of up to 63 tokens"),
        (lambda d: d.interpolate("x = 1\n", "", 0.5), "program B is empty"),
        (lambda d: d.interpolate("x = 1\n", "y = 2\n", 1.5), "α must be"),
        (lambda d: list(d.fill(PROGRAM, 3, 40, "mdm", 8)), "START:END line numbers with 2 <= START <= END <= 11"),
        (lambda d: list(d.fill(PROGRAM, 2.5, 3, "mdm", 8)), "START must be a whole line number"),
        (lambda d: list(d.fill("", 2, 3, "mdm", 8)), "the program is empty"),
        (lambda d: list(d.generate("con_within_disc", 0)), "`steps` \\(0\\)"),
        (lambda d: list(d.generate("mdm", 8, seed=-1)), "the seed must be"),
    ],
)
def test_bad_inputs_are_one_line_errors_before_any_frame(demo, action, message):
    with pytest.raises(ValueError, match=message) as err:
        action(demo)
    assert "\n" not in str(err.value)


def test_demo_command_needs_its_extra(monkeypatch, capsys):
    import importlib.util

    from crocodil_hf.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "gradio" else real(name, *a))
    assert main(["demo"]) == 2
    assert 'pip install "crocodil_hf[demo]"' in capsys.readouterr().err
    assert main(["demo", "--port", "70000"]) == 2
    assert "--port" in capsys.readouterr().err


def test_code_without_its_last_newline_is_read_as_the_file(demo):
    """A browser's code box drops the final newline; the demo reads the program as the file it came from."""
    code = "def add(a, b):\n    return a + b\n"
    assert demo.autoencode(code.rstrip("\n"), steps=(4,)) == demo.autoencode(code, steps=(4,))
    cut = list(demo.fill(PROGRAM.rstrip("\n"), 5, 6, "mdm", 8, gen_length=16))[-1]
    assert cut.code == list(demo.fill(PROGRAM, 5, 6, "mdm", 8, gen_length=16))[-1].code and cut.code.endswith("\n")
