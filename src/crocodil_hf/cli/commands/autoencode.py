"""`crocodil autoencode`: encode a file to registers and decode it back (Alg. 6); prints the CER."""

from ..common import HELP, check_common, configs, fit_program, load, model_length, pipeline_arg


def register(subparsers) -> None:
    ae = subparsers.add_parser("autoencode", help="encode a file to registers and decode it back; prints the CER")
    pipeline_arg(ae)
    ae.add_argument("file", help="program to autoencode")
    ae.add_argument("--steps", type=int, default=16, help="demasker calls (default 16)")
    ae.add_argument("--gen-length", type=int, default=None, help=HELP["reconstruction_length"])
    ae.add_argument("--num-registers", type=int, default=None, help="k <= K registers to decode from")


def run(args, rest=None) -> int:
    from ...utils.files import read_text_file
    from ...utils.numbers import check_number

    check_common(args)
    check_number("--num-registers", args.num_registers, minimum=1, integer=True, allow_none=True)
    text = read_text_file(args.file)
    from ...evaluation.metrics import cer

    skeleton = configs(args.pipeline)
    gen_length = args.gen_length or model_length(skeleton)
    text, truncated = fit_program(args.file, text, skeleton, gen_length)
    call = dict(text=[text], gen_length=gen_length, steps=args.steps, num_registers=args.num_registers)
    pipe = load(args.pipeline, "autoencode", skeleton=skeleton, **call)
    if truncated:
        print(f"# note: {args.file} is longer than {gen_length - 1} tokens; autoencoding its first complete lines")
    out = pipe("autoencode", **call)
    print("# ---- reconstruction ----")
    print(out.texts[0].rstrip("\n"))
    print(
        f"# CER {cer([text], out.texts)['cer']:.3f}; NFE {out.nfe['demasker_calls']} demasker calls, "
        f"{out.nfe['encoder_calls']} encoder call; {out.wall_time:.2f} s"
    )
    return 0
