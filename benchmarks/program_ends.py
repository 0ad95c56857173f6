"""Where autoencoded programs end (issue 41): CER and the length of the reconstructions against the programs', with
and without an EOS penalty, for one or more pipelines on the same held-out programs.

A demasker that ends programs too early (an EOS committed mid-program) shows a length ratio below the baseline's
and a CER that an EOS penalty brings back down; one whose reconstructions are only imprecise does not.

Usage:
    python benchmarks/program_ends.py --pipelines crocodil-python-tiny runs/cont/pipeline [--num-programs 48]
                                      [--penalties 0,4] [--output-dir runs/bench/program_ends]
Prints one JSON object; writes `program_ends.json` under `--output-dir`.
"""

import argparse

from common import load_pipeline, write_result

from crocodil_hf.evaluation.metrics import cer
from crocodil_hf.evaluation.sweep import reference_programs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipelines", nargs="+", default=["crocodil-python-tiny"])
    parser.add_argument("--num-programs", type=int, default=48)
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--penalties", default="0,4", help="comma-separated EOS penalties")
    parser.add_argument("--output-dir", default="runs/bench/program_ends")
    args = parser.parse_args()
    rows = []
    for name in args.pipelines:
        pipe = load_pipeline(name)
        programs = reference_programs(pipe, args.num_programs, 64)["texts"][: args.num_programs]
        for penalty in (float(p) for p in args.penalties.split(",")):
            out = pipe("autoencode", text=programs, gen_length=64, steps=args.steps, eos_penalty=penalty)
            ratio = sum(map(len, out.texts)) / sum(map(len, programs))
            rows.append({"pipeline": name, "eos_penalty": penalty, "cer": cer(programs, out.texts)["cer"],
                         "length_ratio": ratio})  # fmt: skip
            print(f"{name}  EOS penalty {penalty:g}: CER {rows[-1]['cer']:.3f}, length ratio {ratio:.3f}", flush=True)
    write_result(
        {"benchmark": "program_ends", "num_programs": args.num_programs, "steps": args.steps, "rows": rows},
        args.output_dir,
        "program_ends.json",
    )


if __name__ == "__main__":
    main()
