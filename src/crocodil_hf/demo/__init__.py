"""The demo: a Gradio app of guided demasking (`crocodil demo`, or `app.py` on a Space). Needs the `demo` extra
(`pip install "crocodil_hf[demo]"`).

`backend.DemoBackend` is what the tabs do, without gradio; `app.build_demo` lays them out; `app.launch` serves them.

Example:
    ```python
    >>> from crocodil_hf.demo import build_demo, launch
    >>> launch(build_demo("crocodil-python-tiny"))  # http://127.0.0.1:7860
    ```
"""

import importlib

_LAZY = {"DemoBackend": ".backend", "Frame": ".backend", "build_demo": ".app", "launch": ".app"}
__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name not in _LAZY:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(_LAZY[name], __name__), name)
