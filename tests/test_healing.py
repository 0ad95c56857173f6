"""Healed token boundaries (`TextCanvas.heal`): prompts and suffixes cut where users cut them (line starts, after a
space, mid-identifier) are tokenized as the whole program would be, and the pipeline's texts keep every character.

The programs are the installed `diffusers` sources (code from outside the standard library the shipped tokenizer was
trained on), cut at random points with a fixed seed."""

import os
import random
from pathlib import Path

import diffusers
import pytest
import torch
from transformers import AutoTokenizer

from crocodil_hf.pipelines.canvas import TextCanvas
from crocodil_hf.utils.locate import locate_pipeline

FILES = sorted(Path(os.path.dirname(diffusers.__file__)).rglob("*.py"))


@pytest.fixture(scope="module")
def canvas():
    tokenizer = AutoTokenizer.from_pretrained(locate_pipeline("crocodil-python-tiny") / "tokenizer")
    return TextCanvas(tokenizer, tokenizer.mask_token_id, tokenizer.eos_token_id)


def cuts(kind: str, count: int, seed: int = 0):
    """(prompt, middle, suffix) of real programs: whole lines (`line`), or any two characters (`char`)."""
    rng = random.Random(seed)
    while count:
        text = FILES[rng.randrange(len(FILES))].read_text(encoding="utf-8")[:2000]
        lines = text.splitlines(keepends=True)
        if len(lines) < 5:
            continue
        if kind == "line":
            a = rng.randrange(1, len(lines) - 1)
            b = rng.randrange(a + 1, min(len(lines), a + 4) + 1)
            yield "".join(lines[:a]), "".join(lines[a:b]), "".join(lines[b:])
        else:
            a = rng.randrange(1, len(text) - 2)
            b = rng.randrange(a + 1, min(len(text), a + 40))
            yield text[:a], text[a:b], text[b:]
        count -= 1


def split(canvas, prompt, middle, suffix):
    """The whole program's tokens split as the healed canvas splits them: (healed prompt, true span, healed
    suffix), or None when the healed prompt / suffix are not its first / last tokens."""
    kept, start, end, rest = canvas.heal(prompt, suffix)
    assert kept + start == prompt and end + rest == suffix  # nothing dropped, nothing doubled
    head, start, end, tail = canvas.healed_ids(prompt, suffix)  # what the canvas holds
    assert canvas.tokenizer.decode(head) == kept and canvas.tokenizer.decode(tail) == rest
    full = canvas.ids(prompt + middle + suffix)
    if full[: len(head)] != head or (tail and full[len(full) - len(tail) :] != tail):
        return None
    return head, full[len(head) : len(full) - len(tail)], tail, (start, end)


def test_line_cuts_heal_to_the_whole_program_s_tokens(canvas):
    """Cuts at line starts, as `crocodil complete` / `infill` and every user make them: healed prompt ids + true span
    ids + healed suffix ids are the whole program's ids, every time; the boundary texts are healed (not tokenized as
    given) in every case, and the span's first and last true tokens carry them in nearly all."""
    results = [split(canvas, *cut) for cut in cuts("line", 150)]
    assert all(r is not None for r in results)
    assert all(r[3][0] for r in results)  # the prompt's last line break is always healed
    carried = sum(
        canvas.tokenizer.decode(mid[:1]).startswith(start) and canvas.tokenizer.decode(mid[-1:]).endswith(end)
        for _, mid, _, (start, end) in results
    )
    assert carried >= 0.9 * len(results)


def test_cuts_anywhere_heal_exactly_whenever_a_token_can_carry_the_cut(canvas):
    """Cuts at any character: wherever `heal` healed both sides (one token can carry each cut-off text), the split
    is exact; the rest (a mid-identifier cut that no single token starts with) keep today's tokenization."""
    healed = exact = total = 0
    for prompt, middle, suffix in cuts("char", 200, seed=1):
        total += 1
        kept, start, end, rest = canvas.heal(prompt, suffix)
        full, head, tail = canvas.ids(prompt + middle + suffix), canvas.ids(prompt), canvas.ids(suffix)
        prompt_ok = bool(start) or full[: len(head)] == head  # healed, or nothing to heal
        suffix_ok = bool(end) or full[len(full) - len(tail) :] == tail
        if prompt_ok and suffix_ok:
            healed += 1
            exact += split(canvas, prompt, middle, suffix) is not None
    assert healed >= 0.6 * total and exact == healed, (total, healed, exact)  # measured: 138 of 200, all exact


def test_a_bare_newline_at_the_end_of_a_prompt_is_healed(canvas):
    kept, start, end, rest = canvas.heal("def f(x):\n", "    return x\n")
    assert (kept, start, end, rest) == ("def f(x):", "\n", "   ", " return x\n")
    unhealed_ids = canvas.ids("def f(x):\n") + canvas.ids("    return x\n")
    assert unhealed_ids != canvas.ids("def f(x):\n    return x\n")  # what healing is for


@pytest.fixture(scope="module")
def pipe():
    from crocodil_hf import CrocodilPipeline

    pipe = CrocodilPipeline.from_pretrained("crocodil-python-tiny")
    pipe.set_progress_bar_config(disable=True)
    return pipe


@pytest.mark.parametrize("mode", ["mdm", "con_within_disc"])
def test_prompted_calls_keep_prompt_and_suffix_as_given_at_any_cut(pipe, mode):
    """`full_texts == prompt + span + suffix` for line and character cuts in one batch of different lengths; with
    healing the span starts with the healed characters' continuation (an indented line after `def ...:\\n`)."""
    prompts, suffixes = [], []
    for kind in ("line", "char"):
        for prompt, _, suffix in cuts(kind, 2, seed=3):
            prompts.append(prompt[-200:])
            suffixes.append(suffix[:100])
    out = pipe(mode, prompt=prompts, suffix=suffixes, gen_length=16, steps=8,
               generator=[torch.Generator().manual_seed(i) for i in range(len(prompts))])  # fmt: skip
    assert out.full_texts == [p + t + s for p, t, s in zip(prompts, out.texts, suffixes)]
    alone = pipe(mode, prompt=prompts[1], suffix=suffixes[1], gen_length=16, steps=8,
                 generator=torch.Generator().manual_seed(1))  # fmt: skip
    assert alone.texts[0] == out.texts[1]  # a healed sample equals its result alone


def test_a_healed_line_start_prompt_continues_with_an_indented_line(pipe):
    prompt, suffix = "def python_files(folder):\n    names = []\n", "    return names\n"
    healed = pipe("mdm", prompt=prompt, suffix=suffix, gen_length=16, steps=16)
    raw = pipe("mdm", prompt=prompt, suffix=suffix, gen_length=16, steps=16, heal=False)
    assert healed.texts[0].startswith("    ") and healed.full_texts[0] == prompt + healed.texts[0] + suffix
    assert raw.full_texts[0] == prompt + raw.texts[0] + suffix


def test_fit_context_keeps_whole_lines_nearest_the_span_within_the_budget():
    """Over random line cuts of real programs: the kept prompt is the prompt's last whole lines, the kept suffix the
    suffix's first ones, the lines next to the span always kept, and the rest fits the budget."""
    import inspect
    import random

    from crocodil_hf import CrocodilPipeline
    from crocodil_hf.pipelines import canvas as canvas_module

    canvas = CrocodilPipeline.from_configs("crocodil-python-tiny").text_canvas
    lines = inspect.getsource(canvas_module).splitlines(keepends=True)
    rng = random.Random(0)
    for _ in range(60):
        start = rng.randrange(0, len(lines) - 40)
        window = lines[start : start + rng.randrange(3, 40)]
        cut = rng.randrange(1, len(window))
        prompt, suffix = "".join(window[:cut]), "".join(window[cut:]) if rng.random() < 0.7 else None
        budget = rng.randrange(4, 80)
        kept_prompt, kept_suffix = canvas.fit_context(prompt, suffix, budget)
        dropped = prompt[: len(prompt) - len(kept_prompt)]
        assert prompt.endswith(kept_prompt) and kept_prompt.endswith(window[cut - 1])
        assert dropped == "" or dropped.endswith("\n")  # whole lines
        if suffix is None:
            assert kept_suffix is None
        else:
            assert suffix.startswith(kept_suffix) and kept_suffix.startswith(window[cut])
            assert kept_suffix == suffix or kept_suffix.endswith("\n")

        def size(text):
            return sum(len(canvas.ids(line)) for line in (text or "").splitlines(True))

        adjacent = kept_prompt == window[cut - 1] and (suffix is None or kept_suffix == window[cut])
        assert (
            size(kept_prompt) + size(kept_suffix) <= budget or adjacent
        )  # only the lines next to the span may not fit
        if size(prompt) + size(suffix) <= budget:  # nothing is dropped when everything fits
            assert (kept_prompt, kept_suffix) == (prompt, suffix)


def test_a_long_file_is_seen_as_the_window_around_the_span_and_returned_whole(monkeypatch):
    """`fit_context`: the call on a file longer than the trained length equals the call on the window that fits
    (same tokens and NFE), and `full_texts` still holds the whole file."""
    from crocodil_hf import CrocodilPipeline

    pipe = CrocodilPipeline.from_pretrained("crocodil-python-tiny")
    pipe.set_progress_bar_config(disable=True)
    head = "".join(f"value_{i} = compute({i}, scale=2)\n" for i in range(12))
    prompt, suffix = head + "def total(values):\n", "    return result\n\n" + head
    common = dict(gen_length=16, steps=8, suffix=suffix)
    out = pipe("mdm", prompt=prompt, generator=torch.Generator().manual_seed(0), **common)
    settings = pipe.validate("mdm", prompt=prompt, **common)
    (seen_prompt,), (seen_suffix,) = pipe.model_context(settings)
    assert len(seen_prompt) < len(prompt) and len(seen_suffix) < len(suffix)
    window = pipe(
        "mdm", prompt=seen_prompt, generator=torch.Generator().manual_seed(0), **{**common, "suffix": seen_suffix}
    )
    assert out.texts == window.texts and out.nfe == window.nfe
    assert out.full_texts[0] == prompt + out.texts[0] + suffix
    whole = pipe("mdm", prompt=prompt, fit_context=False, generator=torch.Generator().manual_seed(0), **common)
    assert whole.sequences.shape == out.sequences.shape  # the span; the canvas itself was longer


def test_a_pad_in_a_sequence_is_dropped_where_it_stands_and_eos_ends_it():
    """Spans trained with `--prompt_span_pad` end in pad tokens; a stray pad mid-program must not cut the text
    (measured: cutting there shortened autoencoded programs), while EOS still ends it."""
    from crocodil_hf import CrocodilPipeline

    canvas = CrocodilPipeline.from_configs("crocodil-python-tiny").text_canvas
    assert canvas.pad != canvas.eos
    a, b, c = canvas.ids("x = 1\n"), canvas.ids("y = 2\n"), canvas.ids("z = 3\n")
    row = a + [canvas.pad] + b + [canvas.pad, canvas.pad, canvas.eos] + c
    assert canvas.decode(torch.tensor([row])) == ["x = 1\ny = 2\n"]
