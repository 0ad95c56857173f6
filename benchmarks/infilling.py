"""Held-out infilling and completion cut at line starts, as users cut code (issue 41): healed against unhealed
boundaries, oracle against upper-bound span lengths, every mode at the span budget and a quarter of it.

Tasks: small functions (4–10 lines, ≤ 400 characters) from an installed package's sources (default `diffusers`: code
from outside the standard library the shipped model trained on), one task per function:

- `line`: the middle line of the body is the span; the prompt is every line before it, the suffix every line after;
- `lines`: 2–4 lines from the middle of the body (the count drawn per function), likewise;
- `complete`: the prompt is the lines before the middle line, no suffix; the first generated line is compared
  with the middle line (`crocodil complete --lines`).

Metrics per point: exact match of the stripped lines, CER of the span, `ast.parse` validity of prompt + span + suffix
(dedented; for `complete`, prompt + the generated line), NFE and wall time.

- `length=oracle`: the span's own token count (with healing: the tokens between the healed prompt and suffix, the
  slot before the suffix included; without: the lines' tokens alone) — one call per task;
- `length=bound`: a fixed number of tokens for every task (`--bound`, twice it for `lines`), the span cut at its
  first EOS (what a user can ask).

Usage:
    python benchmarks/infilling.py [--pipeline crocodil-python-tiny] [--package diffusers] [--num-tasks 48]
                                   [--tasks line,lines,complete] [--lengths oracle,bound] [--heal both|on|off]
                                   [--fit-context on|off] [--bound 16] [--output-dir runs/bench/infilling]
Prints one JSON object; writes `infilling.json` under `--output-dir`.
"""

import argparse
import ast
import importlib
import os
import random
import textwrap
import time
from pathlib import Path

import torch
from common import load_pipeline, write_result

from crocodil_hf.evaluation.metrics import cer

MODES = ("mdm", "con_then_disc", "con_within_disc")
# diagnostic points (`--modes ...,oracle_registers,oracle_registers_all`, upper-bound lengths only): the guided
# demasker given the registers of the whole program (h_φ of prompt + true span + suffix) instead of a prior's
# sample, through the first k registers as sampled ones (the pipeline's default k), or through all K
ORACLE, ORACLE_ALL = "oracle_registers", "oracle_registers_all"


def functions(package: str) -> list[list[str]]:
    """The lines of each small function (4–10 lines, ≤ 400 characters, no docstring) of a package's sources."""
    root = Path(os.path.dirname(importlib.import_module(package).__file__))
    found = []
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        lines = source.splitlines(keepends=True)
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef) or node.end_lineno - node.lineno + 1 not in range(4, 11):
                continue
            body = lines[node.lineno - 1 : node.end_lineno]
            if len("".join(body)) <= 400 and '"""' not in "".join(body):
                found.append((body, node.body[0].lineno - node.lineno))
    return found


def tasks(package: str, kind: str, count: int, seed: int = 0) -> list[tuple[str, str, str | None]]:
    """(prompt, span, suffix) of `kind` (`line`, `lines`, `complete`) cut at line starts, one per function."""
    rng, found = random.Random(seed), []
    for body, first in functions(package):
        middle = (first + len(body) - 1) // 2  # a line of the body
        size = rng.randint(2, 4) if kind == "lines" else 1
        end = min(middle + size, len(body) - (0 if kind == "complete" else 1))
        if end - middle != size or not all(line.strip() for line in body[middle:end]):
            continue
        suffix = None if kind == "complete" else "".join(body[end:])
        found.append(("".join(body[:middle]), "".join(body[middle:end]), suffix))
    rng.shuffle(found)
    if len(found) < count:
        raise ValueError(f"{package} has only {len(found)} functions that fit the {kind} task, {count} asked.")
    return found[:count]


def stripped_lines(text: str, count: int | None = None) -> list[str]:
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[:count] if count else lines


def parses(text: str) -> bool:
    try:
        ast.parse(textwrap.dedent(text))
        return True
    except SyntaxError:
        return False


def oracle_length(pipe, prompt: str, line: str, suffix: str, heal: bool) -> int:
    canvas = pipe.text_canvas
    if not heal:
        return max(1, len(canvas.ids(line)))
    head, _, end, tail = canvas.healed_ids(prompt, suffix)
    full = canvas.ids(prompt + line + suffix)
    return max(1, len(full) - len(head) - len(tail) - (1 if end else 0))


def run_point(pipe, items, kind: str, mode: str, heal: bool, length: str, args) -> dict:
    start, texts, nfe = time.perf_counter(), [], 0.0
    if length == "oracle":
        for i, (prompt, span, suffix) in enumerate(items):
            n = oracle_length(pipe, prompt, span, suffix or "", heal)
            steps = max(1, n // args.divisor)
            out = pipe(mode, prompt=prompt, suffix=suffix, gen_length=n, steps=steps, heal=heal,
                       eos_fill=False, fit_context=args.fit_context == "on",
                       generator=torch.Generator().manual_seed(i))  # fmt: skip
            texts.append(out.texts[0])
            nfe += out.nfe["total"]
    else:
        bound = args.bound * (2 if kind == "lines" else 1)
        steps = max(1, bound // args.divisor)
        suffixes = None if kind == "complete" else [s for _, _, s in items]
        call = dict(prompt=[p for p, _, _ in items], suffix=suffixes, gen_length=bound, steps=steps, heal=heal,
                    fit_context=args.fit_context == "on")  # fmt: skip
        if mode in (ORACLE, ORACLE_ALL):  # z₀ = h_φ of the program the model sees, with the true span
            seen, seen_suffixes = pipe.model_context(pipe.validate("con_then_disc", **call))
            spans = [span for _, span, _ in items]
            wholes = [p + span + (x or "") for p, span, x in zip(seen, spans, seen_suffixes or [None] * len(items))]
            call["registers"] = pipe.encode(wholes)
            call["num_registers"] = (
                pipe.num_registers_max if mode == ORACLE_ALL else pipe.sampled_num_registers_default
            )
        generators = [torch.Generator().manual_seed(i) for i in range(len(items))]
        out = pipe("con_then_disc" if mode in (ORACLE, ORACLE_ALL) else mode, generator=generators, **call)
        texts, nfe = out.texts, out.nfe["total"] * len(items)
    if kind == "complete":  # the first generated line against the next line
        texts = [text.split("\n")[0] + "\n" for text in texts]
    spans = [span for _, span, _ in items]
    return {
        "task": kind,
        "mode": mode,
        "heal": heal,
        "length": length,
        "steps": "span" if args.divisor == 1 else f"span/{args.divisor}",
        "exact": sum(stripped_lines(t) == stripped_lines(ref) for t, ref in zip(texts, spans)) / len(items),
        "cer": cer([ref.strip() or ref for ref in spans], [t.strip() for t in texts])["cer"],
        "parses": sum(parses(p + t + (s or "")) for (p, _, s), t in zip(items, texts)) / len(items),
        "nfe_per_task": nfe / len(items),
        "seconds": time.perf_counter() - start,
        "examples": [{"span": ref, "generated": t} for ref, t in list(zip(spans, texts))[:3]],
    }


def with_conditional_prior(pipe, path: str):
    """The pipeline with another conditional prior whose k may differ from the unconditional prior's (a pipeline
    refuses that mix; this diagnostic bypasses the check): prompted calls show the demasker all k it samples."""
    from crocodil_hf.modeling.modeling_register_prior import RegisterPriorTransformer

    prior = RegisterPriorTransformer.from_pretrained(path).eval()
    k = prior.config.num_registers
    pipe.register_modules(conditional_prior=prior)
    pipe.register_to_config(default_num_registers=k)

    class Diagnostic(type(pipe)):
        prior_num_registers = property(lambda self: k)

    pipe.__class__ = Diagnostic
    return pipe


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default="crocodil-python-tiny")
    parser.add_argument("--package", default="diffusers")
    parser.add_argument("--num-tasks", type=int, default=48)
    parser.add_argument("--tasks", default="line,lines,complete", help="comma-separated: line, lines, complete")
    parser.add_argument("--lengths", default="oracle,bound", help="comma-separated: oracle, bound")
    parser.add_argument("--heal", choices=("both", "on", "off"), default="both")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument(
        "--fit-context", choices=("on", "off"), default="on", help="show the model the lines that fit (the default)"
    )
    parser.add_argument(
        "--conditional-prior",
        default=None,
        help="diagnostic: swap in this conditional prior (e.g. one over all K registers) and show the demasker all "
        "the registers it samples in prompted calls",
    )
    parser.add_argument("--bound", type=int, default=16)
    parser.add_argument("--output-dir", default="runs/bench/infilling")
    args = parser.parse_args()
    pipe = load_pipeline(args.pipeline)
    if args.conditional_prior:
        pipe = with_conditional_prior(pipe, args.conditional_prior)
    heals = {"both": (False, True), "on": (True,), "off": (False,)}[args.heal]
    points, given = [], {}
    for kind in args.tasks.split(","):
        items = tasks(args.package, kind, args.num_tasks)
        given[kind] = sum(parses(p + span + (s or "")) for p, span, s in items) / len(items)
        for length in args.lengths.split(","):
            for heal in heals:
                for divisor in (1, 4):
                    args.divisor = divisor
                    for mode in args.modes.split(","):
                        if mode in (ORACLE, ORACLE_ALL) and length == "oracle":
                            continue
                        points.append(run_point(pipe, items, kind, mode, heal, length, args))
                        p = points[-1]
                        print(f"{kind:8} {length:6} heal={heal!s:5} {p['steps']:7} {mode:16} exact {p['exact']:.3f} "
                              f"CER {p['cer']:.3f} parses {p['parses']:.2f}", flush=True)  # fmt: skip
    result = {
        "benchmark": "infilling",
        "pipeline": args.pipeline,
        "package": args.package,
        "num_tasks": args.num_tasks,
        "bound": args.bound,
        "fit_context": args.fit_context,
        "conditional_prior": args.conditional_prior,
        "original_files_parse": given,
        "points": points,
    }
    write_result(result, args.output_dir, "infilling.json")


if __name__ == "__main__":
    main()
