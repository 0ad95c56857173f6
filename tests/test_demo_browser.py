"""`crocodil demo` in a real browser: Debian's chromium, headless, driven by Playwright, against the app started on a
local port. Each tab's main action gives what the pipeline's own call gives for the same seed; a bad input shows the
package's one-line message in the page; two visitors at once each get their own program.

A screenshot of each tab is saved (under a temporary folder, or under `$CROCODIL_DEMO_SCREENSHOTS`: the README's
pictures are made with `CROCODIL_DEMO_SCREENSHOTS=docs/demo python -m pytest tests/test_demo_browser.py`).

Skipped where gradio, playwright or chromium is missing, except under CI (`CI=true`), whose `.ci/run` installs them.
"""

import os
import shutil
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch

from crocodil_hf.utils.files import split_lines

REQUIRED = bool(os.environ.get("CI"))
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _missing() -> str | None:
    import importlib.util

    for module in ("gradio", "playwright"):
        if importlib.util.find_spec(module) is None:
            return f"{module} is not installed"
    return None if CHROMIUM else "chromium is not installed (apt-get install chromium)"


if _missing():
    if REQUIRED:
        raise RuntimeError(f"the browser test must run in CI: {_missing()}")
    pytest.skip(_missing(), allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from crocodil_hf import CrocodilPipeline  # noqa: E402
from crocodil_hf.demo.app import EXAMPLE, EXAMPLE_A, EXAMPLE_B  # noqa: E402
from hub_server import free_port  # noqa: E402

TIMEOUT_MS = 60_000


@pytest.fixture(scope="module")
def server():
    """`crocodil demo` on a free local port, until the module's tests end."""
    port = free_port()
    env = dict(os.environ, GRADIO_ANALYTICS_ENABLED="False", PYTHONUNBUFFERED="1")
    log = open(Path(os.environ.get("TMPDIR", "/tmp")) / f"crocodil-demo-{port}.log", "w+")
    proc = subprocess.Popen(
        [sys.executable, "-m", "crocodil_hf.cli", "demo", "--port", str(port)], stdout=log, stderr=subprocess.STDOUT,
        env=env,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + 120
    while True:
        try:
            urllib.request.urlopen(url, timeout=2)
            break
        except OSError:
            log.seek(0)
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                pytest.fail(f"`crocodil demo` did not start:\n{log.read()[-3000:]}")
            time.sleep(0.5)
    yield url
    proc.terminate()
    proc.wait(timeout=30)
    log.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        yield browser
        browser.close()


@pytest.fixture(scope="module")
def pipe():
    return CrocodilPipeline.from_pretrained("crocodil-python-tiny")


@pytest.fixture(scope="module")
def shots(tmp_path_factory):
    folder = Path(os.environ.get("CROCODIL_DEMO_SCREENSHOTS") or tmp_path_factory.mktemp("screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def open_page(browser, url, tab: str):
    page = browser.new_page(viewport={"width": 1280, "height": 860})
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(url, wait_until="networkidle")
    page.get_by_role("tab", name=tab).click()
    return page


def code_of(page, elem_id: str) -> str:
    """The text of a code box (CodeMirror's lines)."""
    return "\n".join(page.locator(f"#{elem_id} .cm-line").all_text_contents())  # an empty line is a <br>


def same_code(shown: str, text: str) -> bool:
    """A code box shows the program stripped of leading and trailing whitespace (gradio's `gr.Code`)."""
    return shown.strip() == text.strip()


def set_code(page, elem_id: str, text: str) -> None:
    page.click(f"#{elem_id} .cm-content")
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(text)


def set_number(page, label: str, value) -> None:
    page.get_by_label(label, exact=True).fill(str(value))


def error_toast(page) -> str:
    toast = page.locator(".toast-body.error").first
    toast.wait_for()
    return toast.inner_text()


WATCH_CAPTIONS = """() => {
    window.captions = [];
    new MutationObserver(() => {
        const caption = document.querySelector('#generate-canvas .caption');
        if (caption && window.captions.at(-1) !== caption.textContent) window.captions.push(caption.textContent);
    }).observe(document.querySelector('#generate-canvas'), {subtree: true, childList: true, characterData: true});
}"""


def test_generate_animates_then_shows_the_program(server, browser, pipe, shots):
    page = open_page(browser, server, "Generate")
    page.evaluate(WATCH_CAPTIONS)
    page.click("#generate-run")
    # mid-trajectory: masks still visible and the last call's tokens highlighted
    page.wait_for_function(
        """() => {
            const caption = document.querySelector('#generate-canvas .caption');
            const call = caption && caption.textContent.match(/call (\\d+)/);
            return call && +call[1] >= 6 && document.querySelector('#generate-canvas .cell.mask') !== null;
        }""",
        polling="raf",
    )
    page.screenshot(path=str(shots / "generate.png"))
    expect(page.locator("#generate-cost")).to_contain_text("16 demasker calls")
    own = pipe("con_within_disc", gen_length=64, steps=16, num_registers=2, generator=torch.Generator().manual_seed(0))
    assert same_code(code_of(page, "generate-code"), own.texts[0])
    assert page.locator("#generate-canvas .cell.mask").count() == 0
    captions = page.evaluate("window.captions")  # the frames the page showed, in order
    assert captions[0] == "step 0: every position masked" and captions[-1] == "done"
    steps = [int(c.rsplit(" ", 1)[1]) for c in captions[1:-1]]
    assert len(steps) >= 8 and steps == sorted(steps) and steps[-1] <= 16, captions
    page.close()


def test_two_visitors_get_their_own_programs(server, browser, pipe):
    pages = [open_page(browser, server, "Generate") for _ in range(2)]
    for seed, page in zip((5, 6), pages):
        set_number(page, "seed", seed)
    for page in pages:
        page.click("#generate-run")
    for seed, page in zip((5, 6), pages):
        expect(page.locator("#generate-cost")).to_contain_text("demasker calls")
        own = pipe("con_within_disc", gen_length=64, steps=16, num_registers=2,
                   generator=torch.Generator().manual_seed(seed))  # fmt: skip
        assert same_code(code_of(page, "generate-code"), own.texts[0])
        page.close()


def test_infill_regenerates_the_chosen_lines(server, browser, pipe, shots):
    page = open_page(browser, server, "Complete / infill")
    page.click("#fill-run")
    marked = page.locator("#fill-canvas")
    expect(page.locator("#fill-cost")).to_contain_text("demasker calls")
    prompt, suffix, _ = split_lines(EXAMPLE, 5, 6)
    own = pipe("con_within_disc", prompt=prompt, suffix=suffix, gen_length=32, steps=8,
               generator=torch.Generator().manual_seed(0))  # fmt: skip
    assert marked.locator(".cell.span").inner_text() == own.texts[0]
    assert marked.locator("pre").inner_text() == own.full_texts[0]
    assert same_code(code_of(page, "fill-code"), own.full_texts[0])
    page.screenshot(path=str(shots / "infill.png"), full_page=True)
    set_number(page, "regenerate from line", 40)
    page.click("#fill-run")
    assert "START:END line numbers with 2 <= START <= END" in error_toast(page)
    page.close()


def test_autoencode_shows_the_reconstructions_and_refuses_empty_code(server, browser, pipe, shots):
    page = open_page(browser, server, "Autoencode")
    page.click("#ae-run")
    expect(page.locator("#ae-cer")).to_contain_text("16 steps: CER")
    for n in (4, 8, 16):
        own = pipe("autoencode", text=[EXAMPLE_A], gen_length=64, steps=n, generator=torch.Generator().manual_seed(0))
        assert same_code(code_of(page, f"ae-{n}"), own.texts[0])
    page.screenshot(path=str(shots / "autoencode.png"), full_page=True)
    set_code(page, "ae-source", "")
    page.click("#ae-run")
    assert error_toast(page).strip().endswith("the program is empty; paste a Python program.")
    assert "Traceback" not in page.content()
    page.close()


def test_interpolate_decodes_the_mixed_registers(server, browser, pipe, shots):
    page = open_page(browser, server, "Interpolate")
    page.click("#ip-run")
    own = pipe.interpolate(EXAMPLE_A, EXAMPLE_B, alphas=[0.5], gen_length=64, steps=16)[0]
    expect(page.locator("#ip-out .cm-line").first).not_to_be_empty()
    page.wait_for_function(
        "([id, text]) => [...document.querySelectorAll(`#${id} .cm-line`)].map(l => l.textContent).join('\\n').trim()"
        " === text",
        arg=["ip-out", own.strip()],
    )
    page.screenshot(path=str(shots / "interpolate.png"), full_page=True)
    page.close()
