"""The Gradio app: four tabs over one `DemoBackend` (Generate, Complete / infill, Autoencode, Interpolate).

Every event shares one queue (`concurrency_id="pipeline"`, one call at a time): visitors wait their turn on the one
loaded model and each gets the frames of their own call. A bad input shows the package's own one-line message
(`cli.errors.explain_error`) in the page, never a traceback.

Example:
    ```python
    >>> from crocodil_hf.demo import build_demo, launch
    >>> launch(build_demo("crocodil-python-tiny"), server_port=7860)
    ```
"""

import functools
import inspect

import gradio as gr

from ..cli.errors import explain_error
from ..pipelines import generation_modes
from .backend import AUTOENCODE_STEPS, DemoBackend

EXAMPLE = """import json


def load(path):
    with open(path) as f:
        return json.load(f)


def save(data, path):
    with open(path, "w") as f:
        json.dump(data, f)
"""
EXAMPLE_A = "def add(a, b):\n    return a + b\n"
EXAMPLE_B = "for i in range(10):\n    print(i)\n"
QUEUE = dict(concurrency_id="pipeline", concurrency_limit=1)


def shown(fn):
    """Run a handler with every error turned into `gr.Error(<one line>)`: the message the CLI prints, in the page."""

    def error(err: Exception) -> gr.Error:
        line, _ = explain_error(err)
        return gr.Error(line, print_exception=False)

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def stream(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except gr.Error:
                raise
            except Exception as err:
                raise error(err) from None

        return stream

    @functools.wraps(fn)
    def call(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except Exception as err:
            raise error(err) from None

    return call


def _generate_tab(backend: DemoBackend) -> None:
    pipe = backend.pipe
    with gr.Row():
        with gr.Column(scale=1):
            mode = gr.Dropdown(generation_modes(), value="con_within_disc", label="mode")
            steps = gr.Slider(1, backend.gen_length, value=16, step=1, label="steps (demasker calls)")
            k = gr.Slider(1, pipe.prior_num_registers, value=pipe.sampled_num_registers_default, step=1,
                          label="k registers shown to the demasker")  # fmt: skip
            temperature = gr.Slider(0, 2, value=0, step=0.05, label="temperature (0 = greedy)")
            threshold = gr.Slider(0, 1, value=0, step=0.05, label="confidence threshold (0 = off)")
            seed = gr.Number(0, precision=0, minimum=0, label="seed")
            run = gr.Button("Generate", variant="primary", elem_id="generate-run")
        with gr.Column(scale=2):
            canvas = gr.HTML(label="canvas", elem_id="generate-canvas")
            cost = gr.Markdown(elem_id="generate-cost")
            code = gr.Code(language="python", label="program", interactive=False, elem_id="generate-code")

    @shown
    def on_run(mode, steps, k, temperature, threshold, seed):
        call = dict(num_registers=int(k), temperature=temperature, threshold=threshold, seed=seed)
        for frame in backend.generate(mode, int(steps), **call):
            yield frame.canvas, frame.nfe, frame.code

    run.click(on_run, [mode, steps, k, temperature, threshold, seed], [canvas, cost, code], **QUEUE)


def _fill_tab(backend: DemoBackend) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            source = gr.Code(EXAMPLE, language="python", label="program", interactive=True, elem_id="fill-source")
            with gr.Row():
                start = gr.Number(5, precision=0, label="regenerate from line", elem_id="fill-start")
                end = gr.Number(6, precision=0, label="to line (blank: complete to the end)", elem_id="fill-end")
            mode = gr.Dropdown(generation_modes(), value="con_within_disc", label="mode")
            steps = gr.Slider(1, 64, value=8, step=1, label="steps (demasker calls)")
            length = gr.Slider(1, backend.gen_length, value=32, step=1, label="most tokens to generate")
            seed = gr.Number(0, precision=0, minimum=0, label="seed")
            run = gr.Button("Regenerate the lines", variant="primary", elem_id="fill-run")
        with gr.Column(scale=1):
            canvas = gr.HTML(elem_id="fill-canvas")
            cost = gr.Markdown(elem_id="fill-cost")
            filled = gr.Code(language="python", label="filled program", interactive=False, elem_id="fill-code")

    @shown
    def on_run(form):  # gradio passes a set of inputs as one {component: value} dict
        frames = backend.fill(
            form[source], form[start], form[end], form[mode], int(form[steps]), gen_length=int(form[length]),
            seed=form[seed],
        )  # fmt: skip
        for frame in frames:
            yield frame.canvas, frame.nfe, frame.code

    run.click(on_run, {source, start, end, mode, steps, length, seed}, [canvas, cost, filled], **QUEUE)


def _autoencode_tab(backend: DemoBackend) -> None:
    with gr.Row():
        with gr.Column(scale=1):
            source = gr.Code(EXAMPLE_A, language="python", label="program", interactive=True, elem_id="ae-source")
            seed = gr.Number(0, precision=0, minimum=0, label="seed")
            run = gr.Button("Encode and decode", variant="primary", elem_id="ae-run")
        with gr.Column(scale=2):
            with gr.Row():
                outputs = [
                    gr.Code(language="python", label=f"{n} steps", interactive=False, elem_id=f"ae-{n}")
                    for n in AUTOENCODE_STEPS
                ]
            cers = gr.Markdown(elem_id="ae-cer")

    @shown
    def on_run(code, seed, progress=gr.Progress()):  # noqa: B008  (gradio reads the default to track progress)
        rows = backend.autoencode(code, seed=seed, progress=progress)
        line = " · ".join(f"{n} steps: CER {c:.3f}" for n, _, c in rows)
        return (*(text for _, text, _ in rows), line)

    run.click(on_run, [source, seed], [*outputs, cers], **QUEUE)


def _interpolate_tab(backend: DemoBackend) -> None:
    with gr.Row():
        code_a = gr.Code(EXAMPLE_A, language="python", label="program A (α = 0)", interactive=True, elem_id="ip-a")
        code_b = gr.Code(EXAMPLE_B, language="python", label="program B (α = 1)", interactive=True, elem_id="ip-b")
    alpha = gr.Slider(0, 1, value=0.5, step=0.05, label="α, the weight of program B", elem_id="ip-alpha")
    run = gr.Button("Decode", variant="primary", elem_id="ip-run")
    mixed = gr.Code(language="python", label="decoded from z_α", interactive=False, elem_id="ip-out")
    decode = shown(backend.interpolate)
    run.click(decode, [code_a, code_b, alpha], mixed, **QUEUE)
    alpha.release(decode, [code_a, code_b, alpha], mixed, **QUEUE)


def build_demo(pipeline="crocodil-python-tiny", *, frame_delay: float = 0.15) -> gr.Blocks:
    """The app on a pipeline (a name, folder or Hub id, or a loaded `CrocodilPipeline`); `launch(demo)` serves it."""
    pipe = pipeline
    if isinstance(pipeline, str):
        from ..pipelines.pipeline_crocodil import CrocodilPipeline

        pipe = CrocodilPipeline.from_pretrained(pipeline)
    backend = DemoBackend(pipe, frame_delay=frame_delay)
    with gr.Blocks(title="CRoCoDiL demo") as demo:
        gr.Markdown(
            "# CRoCoDiL: register-guided masked diffusion for code\n"
            "Continuous registers, sampled by a diffusion prior or encoded from a program, steer a masked-diffusion "
            "demasker. Masked positions show as ░; the tokens each demasker call commits are highlighted."
        )
        with gr.Tabs():
            for name, tab in (
                ("Generate", _generate_tab), ("Complete / infill", _fill_tab), ("Autoencode", _autoencode_tab),
                ("Interpolate", _interpolate_tab),
            ):  # fmt: skip
                with gr.Tab(name):
                    tab(backend)
    return demo


def launch(demo: gr.Blocks, **kwargs):
    """`demo.launch(**kwargs)` with the page's system fonts (nothing fetched from a font server) and the queue."""
    theme = gr.themes.Default(
        font=["ui-sans-serif", "system-ui", "sans-serif"], font_mono=["ui-monospace", "Consolas", "monospace"]
    )
    return demo.queue(default_concurrency_limit=1).launch(theme=theme, **kwargs)


__all__ = ["build_demo", "launch", "shown"]
