"""Held-out completion and infilling (paper App. H): how much register guidance helps fill a span of a program.

Held-out validation programs (never trained on) of at least `--min-tokens` tokens. Three tasks, each filling a span
of `--span` tokens (the reference span is the program's next tokens, EOS-padded when the program ends first):
- `prefix25` / `prefix50`: the first 25 % / 50 % of the program's tokens are the prompt;
- `infill`: the first 25 % are the prompt, the tokens after the span are the suffix.
For every mode (`mdm`, `con_then_disc`, `con_within_disc`) and steps ∈ {span/8, span/4, span/2, span}: token accuracy
of the span over the reference's real tokens, CER of the span text, the fraction of the reference's complete lines
reproduced exactly, Gen-PPL of the whole completed programs, NFE (prior and encoder calls included) and wall time.
Greedy decoding; every prompt comes back unchanged (checked).

Usage:
    python benchmarks/completion.py [--pipeline crocodil-python-tiny] [--num-programs 32] [--span 16]
                                    [--prior-steps 20] [--output-dir runs/bench/completion]
Prints one JSON object; writes `completion.json` and `completion_accuracy_vs_nfe.png` under `--output-dir`.
"""

import argparse
import time
from pathlib import Path

import torch
from common import load_pipeline, write_result

from crocodil_hf.evaluation.metrics import cer, gen_ppl
from crocodil_hf.evaluation.scorer import load_scorer

MODES = ("mdm", "con_then_disc", "con_within_disc")


def held_out_programs(pipe, count: int, min_tokens: int, max_tokens: int) -> list[list[int]]:
    from crocodil_hf.data.corpus import CorpusConfig, build_program_dataset

    dataset, _ = build_program_dataset(pipe.tokenizer, CorpusConfig(max_length=max_tokens + 2))
    rows = []
    for text in dataset["validation"].shuffle(seed=0)["text"]:
        ids = pipe.tokenizer(text, add_special_tokens=False)["input_ids"]
        if min_tokens <= len(ids) <= max_tokens:
            rows.append(ids)
        if len(rows) == count:
            break
    if len(rows) < count:
        raise ValueError(f"only {len(rows)} held-out programs of {min_tokens}–{max_tokens} tokens, {count} asked.")
    return rows


def task(ids: list[int], name: str, span: int, eos: int) -> tuple[list[int], list[int], list[int] | None]:
    """(prompt ids, reference span ids (EOS-padded), suffix ids or None)."""
    cut = max(1, round(len(ids) * (0.5 if name == "prefix50" else 0.25)))
    middle = ids[cut : cut + span]
    reference = middle + [eos] * (span - len(middle))
    suffix = ids[cut + span :] if name == "infill" else None
    return ids[:cut], reference, suffix or None


def complete_lines(text: str) -> list[str]:
    return text.split("\n")[:-1]  # a last line without its newline is not complete


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", default="crocodil-python-tiny")
    parser.add_argument("--num-programs", type=int, default=32)
    parser.add_argument("--span", type=int, default=16)
    parser.add_argument("--min-tokens", type=int, default=40)
    parser.add_argument("--prior-steps", type=int, default=20)
    parser.add_argument("--scorer", default=None)
    parser.add_argument("--output-dir", default="runs/bench/completion")
    args = parser.parse_args()

    pipe = load_pipeline(args.pipeline)
    max_tokens = pipe.trained_gen_length - 1 if pipe.trained_gen_length else 63
    programs = held_out_programs(pipe, args.num_programs, args.min_tokens, max_tokens)
    scorer = load_scorer(args.scorer)
    eos = pipe.tokenizer.eos_token_id
    decode = pipe.tokenizer.decode
    steps_grid = sorted({max(1, args.span // d) for d in (8, 4, 2, 1)})
    rows = []
    for name in ("prefix25", "prefix50", "infill"):
        parts = [task(ids, name, args.span, eos) for ids in programs]
        prompts = [decode(p) for p, _, _ in parts]
        suffixes = [decode(s) for _, _, s in parts] if name == "infill" else None
        if suffixes is not None and not all(suffixes):
            raise ValueError("an infill task with an empty suffix: raise --min-tokens")
        references = [r for _, r, _ in parts]
        reference_texts = pipe.decode_sequences(torch.tensor(references))
        for mode in MODES:
            for steps in steps_grid:
                start = time.perf_counter()
                out = pipe(
                    mode=mode, prompt=prompts, suffix=suffixes, gen_length=args.span, steps=steps,
                    prior_steps=args.prior_steps, generator=[torch.Generator().manual_seed(i) for i in range(len(parts))],
                )  # fmt: skip
                wall = time.perf_counter() - start
                assert all(f.startswith(p) for f, p in zip(out.full_texts, prompts)), "a prompt changed"
                generated = out.sequences.tolist()
                real = hits = 0
                for gen, ref in zip(generated, references):
                    for g, r in zip(gen, ref):
                        if r != eos:
                            real += 1
                            hits += int(g == r)
                ref_lines = [complete_lines(t) for t in reference_texts]
                line_hits = sum(
                    sum(a == b for a, b in zip(complete_lines(g), r)) for g, r in zip(out.texts, ref_lines)
                )
                rows.append(
                    {
                        "task": name,
                        "mode": mode,
                        "steps": steps,
                        "token_accuracy": round(hits / real, 4),
                        "cer": round(cer([t or " " for t in reference_texts], out.texts)["cer"], 4),
                        "line_exact": round(line_hits / max(1, sum(map(len, ref_lines))), 4),
                        "gen_ppl": round(gen_ppl(scorer, out.full_texts)["gen_ppl"], 2),
                        "nfe_total": round(out.nfe["total"], 2),
                        "demasker_calls": out.nfe["demasker_calls"],
                        "wall_s": round(wall, 3),
                    }
                )
                print(rows[-1], flush=True)

    _plot(rows, Path(args.output_dir) / "completion_accuracy_vs_nfe.png")
    write_result(
        {
            "pipeline": args.pipeline,
            "programs": f"{len(programs)} held-out stdlib validation programs of {args.min_tokens}–{max_tokens} "
            "tokens",
            "span": args.span,
            "prior_steps": args.prior_steps,
            "scorer": scorer.name,
            "decoding": "greedy (temperature 0), one block",
            "rows": rows,
        },
        args.output_dir,
        "completion.json",
    )


def _plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path.parent.mkdir(parents=True, exist_ok=True)
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(1, len(tasks), figsize=(4.2 * len(tasks), 3.4), sharey=True)
    for ax, name in zip(axes, tasks):
        for mode in MODES:
            pts = sorted(
                (r["nfe_total"], r["token_accuracy"]) for r in rows if r["task"] == name and r["mode"] == mode
            )
            ax.plot([x for x, _ in pts], [y for _, y in pts], marker="o", label=mode)
        ax.set_xscale("log")
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("NFE (demasker-forward equivalents)")
    axes[0].set_ylabel("span token accuracy")
    axes[0].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


if __name__ == "__main__":
    main()
