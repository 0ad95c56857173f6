"""What the demo's tabs do, without gradio: each tab is one method of `DemoBackend`, calling the pipeline as a user
would. The animated tabs stream `Frame`s: the pipeline runs in a worker thread and its own `callback_on_step_end`
hands each step's canvas to the page (no second sampler). Errors are the package's own `ValueError`s; the app shows
their one line.

Example:
    ```python
    >>> from crocodil_hf.demo import DemoBackend
    >>> demo = DemoBackend.from_pretrained("crocodil-python-tiny")
    >>> frames = list(demo.generate(mode="con_within_disc", steps=16, seed=0))
    >>> print(frames[-1].code)
    ```
"""

import queue
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from ..pipelines.modes import MODES
from ..utils.files import split_lines
from ..utils.numbers import check_number
from .render import EOS_CELL, MASK_CELL, canvas_html, cell_states, program_html

AUTOENCODE_STEPS = (4, 8, 16)  # the reconstructions the Autoencode tab shows side by side


@dataclass
class Frame:
    """One update of an animated tab: the canvas HTML, then (last frame only) the cost line and the program. A
    prompted call's last canvas is the filled program with its generated span marked."""

    canvas: str
    nfe: str = ""
    code: str = ""


class DemoBackend:
    """The demo's actions on one loaded pipeline (shared by every visitor; the app runs one call at a time).

    Args:
        pipe: A loaded `CrocodilPipeline`.
        frame_delay: Seconds each animation frame stays at least on screen (a small model is faster than the eye; a
            model slower than that is not slowed down).
    """

    def __init__(self, pipe, frame_delay: float = 0.0):
        self.pipe = pipe
        self.frame_delay = frame_delay
        pipe.set_progress_bar_config(disable=True)

    @classmethod
    def from_pretrained(cls, name: str = "crocodil-python-tiny", **kwargs) -> "DemoBackend":
        from ..pipelines.pipeline_crocodil import CrocodilPipeline

        return cls(CrocodilPipeline.from_pretrained(name), **kwargs)

    @property
    def gen_length(self) -> int:
        """L, the span the model was trained to generate (the Generate tab's canvas)."""
        return self.pipe.trained_gen_length or 64

    # ------------------------------------------------------------------ the tabs

    def generate(self, mode: str, steps: int, *, num_registers: int | None = None, temperature: float = 0.0,
                 threshold: float | None = None, seed: int = 0) -> Iterator[Frame]:  # fmt: skip
        """Sample one program of `gen_length` tokens, streaming the canvas after every demasker call."""
        source = MODES.get(mode)  # an unknown mode is refused by the pipeline's own check
        call = dict(
            gen_length=self.gen_length, steps=steps, temperature=temperature, threshold=threshold or None,
            num_registers=num_registers if source is None or source.makes_registers else None,
            generator=self._generator(seed),
        )  # fmt: skip
        yield from self._stream(mode, call)

    def fill(self, code: str, start: int, end: int | None, mode: str, steps: int, *, gen_length: int = 32,
             seed: int = 0) -> Iterator[Frame]:  # fmt: skip
        """Regenerate lines `start..end` of `code` (1-based; `end=None`: complete from line `start`), the other
        lines kept fixed; streams the canvas, then the filled program with the span marked."""
        prompt, suffix, _ = split_lines(
            as_file(code), _line_number(start, "START"), _line_number(end, "END"), name="the lines"
        )
        call = dict(prompt=prompt, suffix=suffix, gen_length=gen_length, steps=steps, generator=self._generator(seed))
        yield from self._stream(mode, call)

    def autoencode(self, code: str, seed: int = 0, steps: tuple[int, ...] = AUTOENCODE_STEPS, progress=None):
        """`[(steps, reconstruction, CER)]`: `code` encoded and decoded in each number of demasker calls, over the
        model's whole span L (as `crocodil autoencode` does)."""
        from ..evaluation.metrics import cer

        code = self._checked_program(code, "the program")
        rows = []
        for i, n in enumerate(steps):
            if progress is not None:
                progress((i, len(steps)), desc=f"{n} steps")
            call = dict(text=[code], gen_length=self.gen_length, steps=n, generator=self._generator(seed))
            out = self.pipe("autoencode", **call)
            rows.append((n, out.texts[0], cer([code], out.texts)["cer"]))
        return rows

    def interpolate(self, code_a: str, code_b: str, alpha: float, steps: int = 16) -> str:
        """The program decoded from z_α = (1−α)·h_φ(a) + α·h_φ(b) (renormalised)."""
        check_number("α", alpha, minimum=0, maximum=1)
        code_a = self._checked_program(code_a, "program A")
        code_b = self._checked_program(code_b, "program B")
        return self.pipe.interpolate(code_a, code_b, alphas=[float(alpha)], gen_length=self.gen_length, steps=steps)[0]

    # ------------------------------------------------------------------ helpers

    @staticmethod
    def _generator(seed) -> torch.Generator:
        check_number("the seed", seed, minimum=0, maximum=2**63 - 1, integer=True)
        return torch.Generator().manual_seed(int(seed))

    def _checked_program(self, code: str, what: str) -> str:
        """A program to encode: not empty, and no longer than the model was trained to reconstruct."""
        if not isinstance(code, str) or not code.strip():
            raise ValueError(f"{what} is empty; paste a Python program.")
        code = as_file(code)
        tokens = len(self.pipe.tokenizer(code, add_special_tokens=False)["input_ids"])
        if tokens + 1 > self.gen_length:
            raise ValueError(
                f"{what} is {tokens} tokens; this model reconstructs programs of up to {self.gen_length - 1} tokens "
                f"(it was trained on {self.gen_length}); shorten it."
            )
        return code

    def _stream(self, mode: str, call: dict) -> Iterator[Frame]:
        """Run `pipe(mode, **call)` in a worker thread; yield a frame per demasker call, then the result."""
        self.pipe.validate(mode, **call)  # a bad value is refused before the first frame
        steps: queue.Queue = queue.Queue()

        def on_step(pipe, step, block, tensors):
            steps.put(("step", (step, tensors["sequences"][0].tolist())))
            return {}

        def work():
            try:
                out = self.pipe(
                    mode, **call, callback_on_step_end=on_step, callback_on_step_end_tensor_inputs=["sequences"]
                )
                steps.put(("done", out))
            except BaseException as err:  # shown in the page by the app
                steps.put(("error", err))

        threading.Thread(target=work, daemon=True, name="crocodil-demo-call").start()
        prompt, suffix = call.get("prompt") or "", call.get("suffix") or ""
        previous = [self.pipe.mask_token_id] * call["gen_length"]
        yield Frame(self._canvas(previous, None, prompt, suffix, "step 0: every position masked"))
        shown_at = time.monotonic()
        while True:
            kind, item = steps.get()
            if kind == "error":
                raise item
            if kind == "done":
                yield self._result(item, previous, prompt, suffix)
                return
            step, ids = item
            time.sleep(max(0.0, shown_at + self.frame_delay - time.monotonic()))  # the previous frame's turn
            yield Frame(self._canvas(ids, previous, prompt, suffix, f"after demasker call {step}"))
            shown_at, previous = time.monotonic(), ids

    def _canvas(self, ids, previous, prompt, suffix, caption) -> str:
        eos = self.pipe.text_canvas.eos
        states = cell_states(ids, previous, mask_id=self.pipe.mask_token_id, eos_id=eos)
        pieces = [
            MASK_CELL if s == "mask" else EOS_CELL if t == eos else self.pipe.tokenizer.decode([t])
            for t, s in zip(ids, states)
        ]
        return canvas_html(pieces, states, prompt=prompt, suffix=suffix, caption=caption)

    def _result(self, out, previous, prompt, suffix) -> Frame:
        from ..cli.common import nfe_line

        cost = f"{nfe_line(out.nfe)}; {out.wall_time:.2f} s"
        if out.full_texts is None:
            return Frame(self._canvas(out.sequences[0].tolist(), previous, "", "", "done"), cost, out.texts[0])
        return Frame(program_html(prompt, out.texts[0], suffix), cost, out.full_texts[0])


def as_file(code: str) -> str:
    """The code as a file holds it, ending with a newline (a browser's code box drops the last one)."""
    return code if not isinstance(code, str) or code.endswith("\n") or not code else code + "\n"


def _line_number(value, name: str) -> int | None:
    """A line number from a form field (a number box gives floats; blank is `None`)."""
    if value is None or value == "":
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise ValueError(f"{name} must be a whole line number, got {value!r}.")
    return value


__all__ = ["AUTOENCODE_STEPS", "DemoBackend", "Frame"]
