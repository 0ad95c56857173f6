"""`crocodil interpolate`: decode linear interpolations between two files' registers (App. D)."""

from ..common import HELP, check_common, configs, fit_program, load, model_length, pipeline_arg


def register(subparsers) -> None:
    it = subparsers.add_parser(
        "interpolate", help="decode linear interpolations between two files' registers (App. D)"
    )
    pipeline_arg(it)
    it.add_argument("file_a", help="program at alpha = 0")
    it.add_argument("file_b", help="program at alpha = 1")
    it.add_argument("--alphas", default="0,0.25,0.5,0.75,1", help="comma list of weights of file_b in [0, 1]")
    it.add_argument("--steps", type=int, default=16, help="demasker calls per decode (default 16)")
    it.add_argument("--gen-length", type=int, default=None, help=HELP["reconstruction_length"])


def alphas_of(value: str) -> list[float]:
    import math

    try:
        alphas = [float(a) for a in value.split(",") if a.strip()]
    except ValueError:
        alphas = []
    if not alphas or not all(math.isfinite(a) and 0 <= a <= 1 for a in alphas):
        raise ValueError(f"--alphas must be a comma list of numbers in [0, 1] such as 0,0.5,1; got {value!r}.")
    return alphas


def run(args, rest=None) -> int:
    from ...utils.files import read_text_file

    check_common(args)
    alphas = alphas_of(args.alphas)
    texts_in = [read_text_file(args.file_a), read_text_file(args.file_b)]
    skeleton = configs(args.pipeline)
    gen_length = args.gen_length or model_length(skeleton)
    text_a, _ = fit_program(args.file_a, texts_in[0], skeleton, gen_length)
    text_b, _ = fit_program(args.file_b, texts_in[1], skeleton, gen_length)
    pipe = load(
        args.pipeline, "autoencode", skeleton=skeleton, text=[text_a, text_b], gen_length=gen_length, steps=args.steps
    )
    texts = pipe.interpolate(text_a, text_b, alphas=alphas, gen_length=gen_length, steps=args.steps)
    for alpha, text in zip(alphas, texts):
        print(f"# ---- alpha = {alpha:g} ----")
        print(text.rstrip("\n"))
    return 0
