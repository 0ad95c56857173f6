"""HTML of the demo's canvas: one cell per position of the generated span, masks visible as masks, each step's newly
committed tokens highlighted, the fixed prompt and suffix dimmed around them. Plain Python (no torch, no gradio).

Example:
    ```python
    >>> html = canvas_html(["def", " f", "░"], ["kept", "new", "mask"], prompt="# a\\n")
    >>> html.count('class="cell mask"'), html.count('class="cell new"')
    (1, 1)
    ```
"""

from html import escape

MASK_CELL = "░"  # how a masked position looks
EOS_CELL = "·"  # a position filled with EOS (the program ended before it)

# inline styles: the page needs no stylesheet of its own (a Space, an iframe, `crocodil demo` look the same)
STYLES = {
    "mask": "color:#9ca3af;background:#e5e7eb;",
    "new": "background:#fde047;color:#111827;font-weight:600;",
    "kept": "",
    "eos": "color:#d1d5db;",
    "fixed": "color:#6b7280;",
    "span": "background:#bbf7d0;color:#111827;",
}
PRE = (
    'style="white-space:pre-wrap;font-family:ui-monospace,Menlo,Consolas,monospace;font-size:14px;line-height:1.5;'
    'padding:12px;border:1px solid #e5e7eb;border-radius:8px;background:#fff;color:#111827;margin:0;"'
)


def _cell(text: str, state: str) -> str:
    return f'<span class="cell {state}" style="{STYLES[state]}">{escape(text)}</span>'


def canvas_html(pieces: list[str], states: list[str], *, prompt: str = "", suffix: str = "", caption: str = "") -> str:
    """The span's cells (`states`: `"mask"`, `"new"` this step, `"kept"` from earlier steps, `"eos"`), between
    the dimmed `prompt` and `suffix`, in one `<pre>`; `caption` (e.g. "step 3 / 16") above it."""
    if len(pieces) != len(states):
        raise ValueError(f"{len(pieces)} pieces but {len(states)} states.")
    body = "".join(_cell(p, s) for p, s in zip(pieces, states))
    fixed = [_cell(t, "fixed") if t else "" for t in (prompt, suffix)]
    head = f'<div class="caption" style="color:#6b7280;margin-bottom:4px;">{escape(caption)}</div>' if caption else ""
    return f'<div class="canvas">{head}<pre {PRE}>{fixed[0]}{body}{fixed[1]}</pre></div>'


def program_html(prompt: str, span: str, suffix: str | None = None) -> str:
    """A filled program with its generated span marked (the prompt and suffix as given)."""
    return canvas_html(
        [span], ["span"], prompt=prompt, suffix=suffix or "", caption="done: the generated lines marked"
    )


def cell_states(ids: list[int], previous: list[int] | None, *, mask_id: int, eos_id: int | None) -> list[str]:
    """Each position's state after a step, from its ids and the ids before the step (`None`: the first frame)."""
    states = []
    for i, token in enumerate(ids):
        if token == mask_id:
            states.append("mask")
        elif previous is not None and previous[i] == mask_id:
            states.append("new")
        else:
            states.append("eos" if token == eos_id else "kept")
    return states


__all__ = ["EOS_CELL", "MASK_CELL", "canvas_html", "cell_states", "program_html"]
