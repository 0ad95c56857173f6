"""Held-out single-line infilling cut at line starts, as users cut code (issue 41): healed against unhealed
boundaries, oracle against upper-bound span lengths, every mode at the span budget and a quarter of it.

Tasks: small functions (4–10 lines, ≤ 400 characters) from an installed package's sources (default `diffusers`: code
from outside the standard library the shipped model trained on). The span is the middle line of the body; the prompt
is every line before it, the suffix every line after it. Metrics per point: exact match of the stripped line, CER
of the span, `ast.parse` validity of prompt + span + suffix (dedented), NFE and wall time.

- `length=oracle`: the span's own token count (with healing: the tokens between the healed prompt and suffix, the
  slot before the suffix included; without: the line's tokens alone) — one call per task;
- `length=bound`: a fixed `--bound` tokens for every task, the span cut at its first EOS (what a user can ask).

Usage:
    python benchmarks/infilling.py [--pipeline crocodil-python-tiny] [--package diffusers] [--num-tasks 48]
                                   [--bound 16] [--output-dir runs/bench/infilling]
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


def tasks(package: str, count: int, seed: int = 0) -> list[tuple[str, str, str]]:
    """(prompt, line, suffix) of small functions of a package, the middle line of each body as the span."""
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
            text = "".join(body)
            middle = (node.body[0].lineno + node.end_lineno) // 2 - node.lineno  # a line of the body
            if len(text) > 400 or not body[middle].strip() or '"""' in text:
                continue
            found.append(("".join(body[:middle]), body[middle], "".join(body[middle + 1 :])))
    random.Random(seed).shuffle(found)
    if len(found) < count:
        raise ValueError(f"{package} has only {len(found)} functions that fit, {count} asked.")
    return found[:count]


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


def run_point(pipe, items, mode: str, heal: bool, length: str, args) -> dict:
    start, texts, nfe = time.perf_counter(), [], 0.0
    if length == "oracle":
        for i, (prompt, line, suffix) in enumerate(items):
            n = oracle_length(pipe, prompt, line, suffix, heal)
            steps = max(1, n // args.divisor)
            out = pipe(mode, prompt=prompt, suffix=suffix, gen_length=n, steps=steps, heal=heal,
                       eos_fill=False, generator=torch.Generator().manual_seed(i))  # fmt: skip
            texts.append(out.texts[0])
            nfe += out.nfe["total"]
    else:
        steps = max(1, args.bound // args.divisor)
        out = pipe(mode, prompt=[p for p, _, _ in items], suffix=[s for _, _, s in items], gen_length=args.bound,
                   steps=steps, heal=heal, generator=[torch.Generator().manual_seed(i) for i in range(len(items))])  # fmt: skip
        texts, nfe = out.texts, out.nfe["total"] * len(items)
    lines = [line for _, line, _ in items]
    return {
        "mode": mode,
        "heal": heal,
        "length": length,
        "steps": "span" if args.divisor == 1 else f"span/{args.divisor}",
        "exact": sum(t.strip() == ref.strip() for t, ref in zip(texts, lines)) / len(items),
        "cer": cer([ref.strip() or ref for ref in lines], [t.strip() for t in texts])["cer"],
        "parses": sum(parses(p + t + s) for (p, _, s), t in zip(items, texts)) / len(items),
        "nfe_per_task": nfe / len(items),
        "seconds": time.perf_counter() - start,
        "examples": [{"line": ref, "generated": t} for ref, t in list(zip(lines, texts))[:3]],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pipeline", default="crocodil-python-tiny")
    parser.add_argument("--package", default="diffusers")
    parser.add_argument("--num-tasks", type=int, default=48)
    parser.add_argument("--bound", type=int, default=16)
    parser.add_argument("--output-dir", default="runs/bench/infilling")
    args = parser.parse_args()
    pipe = load_pipeline(args.pipeline)
    items = tasks(args.package, args.num_tasks)
    parses_given = sum(parses(p + line + s) for p, line, s in items) / len(items)
    points = []
    for length in ("oracle", "bound"):
        for heal in (False, True):
            for divisor in (1, 4):
                args.divisor = divisor
                for mode in MODES:
                    points.append(run_point(pipe, items, mode, heal, length, args))
                    p = points[-1]
                    print(f"{length:6} heal={heal!s:5} {p['steps']:7} {mode:16} exact {p['exact']:.3f} "
                          f"CER {p['cer']:.3f} parses {p['parses']:.2f}", flush=True)  # fmt: skip
    result = {
        "benchmark": "infilling",
        "pipeline": args.pipeline,
        "package": args.package,
        "num_tasks": len(items),
        "bound": args.bound,
        "original_files_parse": parses_given,
        "points": points,
    }
    write_result(result, args.output_dir, "infilling.json")


if __name__ == "__main__":
    main()
