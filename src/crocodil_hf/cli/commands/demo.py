"""`crocodil demo`: serve the Gradio app of guided demasking on a local port (the `demo` extra)."""

from ..common import pipeline_arg

HELP_TEXT = "serve a web demo: generation animated step by step, completion and infilling, autoencoding, interpolation"


def register(subparsers) -> None:
    cmd = subparsers.add_parser("demo", help=HELP_TEXT, description=HELP_TEXT[0].upper() + HELP_TEXT[1:] + ".")
    pipeline_arg(cmd)
    cmd.add_argument("--port", type=int, default=7860, help="local port to serve on (default 7860)")
    cmd.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    cmd.add_argument("--share", action="store_true", help="also open a public gradio.live link (needs the internet)")


def check_gradio() -> None:
    """The demo extra is installed (checked before the pipeline loads)."""
    import importlib.util

    if importlib.util.find_spec("gradio") is None:
        raise ValueError('the demo needs gradio; install it with `pip install "crocodil_hf[demo]"`.')


def run(args, rest=None) -> int:
    import logging

    from ...utils.locate import locate_pipeline
    from ...utils.numbers import check_number

    check_number("--port", args.port, minimum=1, maximum=65535, integer=True)
    check_gradio()
    source = locate_pipeline(args.pipeline)
    from ...demo import build_demo, launch

    logging.getLogger("httpx").setLevel(logging.WARNING)  # not a line per request of the page to its own server

    print(f"# serving {args.pipeline} on http://{args.host}:{args.port} (Ctrl-C stops it)", flush=True)
    launch(build_demo(str(source)), server_name=args.host, server_port=args.port, share=args.share)
    return 0
