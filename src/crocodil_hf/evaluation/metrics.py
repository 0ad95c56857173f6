"""Sample-quality metrics of the paper (§5): Gen-PPL with unigram entropy, MAUVE, CER.

Conventions (stated in every result):
- Gen-PPL re-tokenises each sample with the scorer's tokenizer, prepends the scorer's BOS (its EOS when it has no
  BOS, as GPT-2 does) so that the first real token is scored too, appends nothing, and reports the corpus-level
  exp(Σ NLL / Σ tokens) (MDLM). Empty samples are counted and contribute no tokens.
- Entropy is the mean over samples of the unigram entropy (nats) of the sample's scorer tokens; a repetitive sample
  scores low, which is how low Gen-PPL from degenerate text is exposed.
- MAUVE uses `mauve.compute_mauve(p_features=…, q_features=…)` with the scorer's final-layer hidden state at the last
  token as features.
- CER is micro-averaged: total character edits / total reference characters (`jiwer.cer` on the lists).
"""

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from .scorer import Scorer


def _check_texts(texts: Sequence[str], name: str) -> list[str]:
    if isinstance(texts, str):
        raise TypeError(f"`{name}` must be a list of strings, not a string.")
    texts = list(texts)
    if not texts:
        raise ValueError(f"`{name}` is empty: nothing to evaluate.")
    if not all(isinstance(t, str) for t in texts):
        raise TypeError(f"`{name}` must contain only strings.")
    return texts


def _score_ids(scorer: Scorer, texts: list[str], max_length: int | None = None) -> list[list[int]]:
    tok = scorer.tokenizer
    start = tok.bos_token_id if tok.bos_token_id is not None else tok.eos_token_id
    limit = max_length or getattr(scorer.model.config, "max_position_embeddings", 2048)
    rows = []
    for text in texts:
        ids = tok(text, add_special_tokens=False)["input_ids"] if text else []
        rows.append(([start] if start is not None else []) + ids[: limit - 1])
    return rows


def _pad(rows: list[list[int]], pad: int, device) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad id lists into `(ids, attention_mask)`; an empty row becomes a single pad token."""
    from torch.nn.utils.rnn import pad_sequence

    tensors = [torch.tensor(r or [pad], dtype=torch.long) for r in rows]
    ids = pad_sequence(tensors, batch_first=True, padding_value=pad)
    mask = pad_sequence([torch.ones_like(t) for t in tensors], batch_first=True, padding_value=0)
    return ids.to(device), mask.to(device)


@torch.no_grad()
def gen_ppl(scorer: Scorer, texts: Sequence[str], batch_size: int = 8) -> dict:
    """Generative perplexity of `texts` under the scorer, with mean unigram entropy (see module docstring).

    Returns:
        `{"gen_ppl", "entropy", "num_samples", "num_empty", "num_tokens", "scorer"}`.
    """
    texts = _check_texts(texts, "texts")
    rows = _score_ids(scorer, texts)
    total_nll, total_tokens = 0.0, 0
    pad = scorer.tokenizer.pad_token_id if scorer.tokenizer.pad_token_id is not None else 0
    for start in range(0, len(rows), batch_size):
        chunk = [r for r in rows[start : start + batch_size] if len(r) > 1]
        if not chunk:
            continue
        ids, mask = _pad(chunk, pad, scorer.device)
        logits = scorer.model(input_ids=ids, attention_mask=mask).logits[:, :-1].float()
        targets = ids[:, 1:]
        valid = mask[:, 1:].bool()
        nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), targets, reduction="none")
        total_nll += nll[valid].sum().item()
        total_tokens += int(valid.sum())
    entropies = [unigram_entropy(r[1:]) for r in rows]
    return {
        "gen_ppl": math.exp(total_nll / total_tokens) if total_tokens else float("nan"),
        "entropy": sum(entropies) / len(entropies),
        "num_samples": len(texts),
        "num_empty": sum(1 for t in texts if not t.strip()),
        "num_tokens": total_tokens,
        "scorer": scorer.name,
    }


def unigram_entropy(tokens: Sequence[int]) -> float:
    """Entropy (nats) of the token frequency distribution of one sample; 0 for an empty sample."""
    if not tokens:
        return 0.0
    counts = Counter(tokens)
    n = len(tokens)
    return -sum(c / n * math.log(c / n) for c in counts.values())


@torch.no_grad()
def scorer_features(scorer: Scorer, texts: Sequence[str], batch_size: int = 8) -> torch.Tensor:
    """MAUVE features: the scorer's final-layer hidden state at each sample's last token, `(N, hidden)`."""
    texts = _check_texts(texts, "texts")
    rows = _score_ids(scorer, texts)
    pad = scorer.tokenizer.pad_token_id if scorer.tokenizer.pad_token_id is not None else 0
    features = []
    for start in range(0, len(rows), batch_size):
        chunk = rows[start : start + batch_size]
        width = max(max(len(r) for r in chunk), 1)
        ids = torch.full((len(chunk), width), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), width), dtype=torch.long)
        for i, r in enumerate(chunk):
            r = r or [pad]
            ids[i, : len(r)] = torch.tensor(r)
            mask[i, : len(r)] = 1
        out = scorer.model(
            input_ids=ids.to(scorer.device), attention_mask=mask.to(scorer.device), output_hidden_states=True
        )
        last = mask.sum(dim=1) - 1
        hidden = out.hidden_states[-1].float().cpu()
        features.append(hidden[torch.arange(len(chunk)), last])
    return torch.cat(features)


def mauve_score(
    scorer: Scorer,
    samples: Sequence[str],
    references: Sequence[str],
    num_buckets: int | str = "auto",
    seed: int = 25,
    mauve_scaling_factor: float = 5.0,
) -> dict:
    """MAUVE(samples, references) with scorer features; returns the score with n and the settings used."""
    samples = _check_texts(samples, "samples")
    references = _check_texts(references, "references")
    if len(references) != len(samples):
        raise ValueError(
            f"MAUVE compares equally sized sets: got {len(samples)} samples and {len(references)} references."
        )
    if len(samples) < 4:
        raise ValueError(f"MAUVE needs at least 4 samples per side, got {len(samples)}.")
    import mauve

    p = scorer_features(scorer, references).numpy()
    q = scorer_features(scorer, samples).numpy()
    result = mauve.compute_mauve(
        p_features=p,
        q_features=q,
        num_buckets=num_buckets,
        seed=seed,
        mauve_scaling_factor=mauve_scaling_factor,
        verbose=False,
    )
    return {
        "mauve": float(result.mauve),
        "num_samples": len(samples),
        "num_references": len(references),
        "settings": {
            "num_buckets": num_buckets,
            "seed": seed,
            "mauve_scaling_factor": mauve_scaling_factor,
            "features": "scorer last-layer hidden state at the final token",
        },
        "scorer": scorer.name,
    }


def cer(references: Sequence[str], hypotheses: Sequence[str]) -> dict:
    """Micro-averaged character error rate (total edits / total reference characters) with `jiwer`."""
    references = _check_texts(references, "references")
    hypotheses = list(hypotheses)
    if len(references) != len(hypotheses):
        raise ValueError(f"got {len(references)} references and {len(hypotheses)} hypotheses; they must pair up.")
    if any(not r for r in references):
        raise ValueError("CER is undefined for an empty reference.")
    import jiwer

    return {
        "cer": float(jiwer.cer(references, hypotheses)),
        "num_samples": len(references),
        "num_empty": sum(1 for h in hypotheses if not h.strip()),
    }


def syntax_validity(texts: Sequence[str]) -> dict:
    """The fraction of programs Python parses: each cut after its last complete line (a sample's unfinished last
    line is not held against it; a text without a line break is taken whole) and dedented (a sample may start inside
    a block); an empty program does not parse.

    Example:
        ```python
        >>> syntax_validity(["x = 1\nif x:\n    y = 2\nz = (", "def f(:\n"])["syntax"]
        0.5
        ```
    """
    import ast
    import textwrap

    valid = 0
    for text in texts:
        if "\n" in text:
            text = text[: text.rfind("\n") + 1]
        if not text.strip():
            continue
        try:
            ast.parse(textwrap.dedent(text))
        except (SyntaxError, ValueError):  # ValueError: source with NUL bytes
            continue
        valid += 1
    return {"syntax": valid / len(texts) if texts else 0.0}


# ---------------------------------------------------------------- the registry


@dataclass(frozen=True)
class MetricContext:
    """What a metric of a sweep point may use: the samples of one (mode, block length, steps) point."""

    scorer: Scorer
    texts: list[str]
    references: list[str]
    mode: str
    compute_mauve: bool = True


@dataclass(frozen=True)
class Metric:
    """One metric as the sweep, its plots, the model card and the CLI see it.

    Args:
        name: Key in a sweep point's `metrics` and in the card's `EvalResult.metric_type`.
        label: Human name (plot axes, card, CLI).
        higher_is_better: Direction of improvement.
        decimals: Digits shown in the card and the CLI.
        modes: `"all"`, `"generation"` (modes that sample) or `"autoencode"` (reconstructions of the references).
        plot_by: Plot it against NFE with one line per `"mode"` or per `"block_length"`; `None`: no plot.
        compute: `fn(MetricContext) -> dict` of values to store (may hold several metrics and details; `{}` to
            skip); `None` when another metric's `compute` produces it.
        evaluate_module: Folder under `evaluation/evaluate_modules/` holding it as an `evaluate` module
            (`evaluate.load(evaluate_module_path(name))`); `None` when it has none.
    """

    name: str
    label: str
    higher_is_better: bool
    decimals: int
    modes: str = "all"
    plot_by: str | None = None
    compute: Callable[[MetricContext], dict] | None = None
    evaluate_module: str | None = None

    def applies_to(self, mode: str) -> bool:
        from ..pipelines import MODES

        reconstructs = mode in MODES and MODES[mode].one_sample_per_text
        return self.modes == "all" or (self.modes == "autoencode") == reconstructs

    def format(self, value) -> str:
        return "–" if value is None else f"{value:.{self.decimals}f}"


def _mauve(context: MetricContext) -> dict:
    if not context.compute_mauve or len(context.texts) < 4:
        return {}
    return {"mauve": mauve_score(context.scorer, context.texts, context.references)["mauve"]}


# Adding a metric: its function above and one entry here.
METRICS = {
    metric.name: metric
    for metric in (
        Metric("gen_ppl", "Gen-PPL", False, 2, plot_by="mode", compute=lambda c: gen_ppl(c.scorer, c.texts),
               evaluate_module="crocodil_gen_ppl"),
        Metric("entropy", "entropy", True, 2, evaluate_module="crocodil_gen_ppl"),  # mean unigram entropy (nats)
        Metric("mauve", "MAUVE", True, 3, modes="generation", plot_by="mode", compute=_mauve,
               evaluate_module="crocodil_mauve"),
        Metric("cer", "CER", False, 3, modes="autoencode", plot_by="block_length",
               compute=lambda c: cer(c.references, c.texts), evaluate_module="crocodil_cer"),
        Metric("syntax", "parses", True, 3, plot_by="mode", compute=lambda c: syntax_validity(c.texts),
               evaluate_module="crocodil_syntax"),
    )
}  # fmt: skip


def evaluate_module_path(name: str) -> str:
    """The local path of a metric's `evaluate` module, for `evaluate.load(path)` (offline).

    Example:
        ```python
        >>> import evaluate
        >>> cer = evaluate.load(evaluate_module_path("cer"))
        >>> cer.compute(predictions=["x = 1"], references=["x = 2"])["cer"]
        0.2
        ```
    """
    from pathlib import Path

    module = METRICS[name].evaluate_module if name in METRICS else None
    if module is None:
        with_modules = sorted(n for n, m in METRICS.items() if m.evaluate_module)
        raise ValueError(f"metric {name!r} has no evaluate module; these do: {with_modules}.")
    return str(Path(__file__).parent / "evaluate_modules" / module)


def compute_metrics(context: MetricContext) -> dict:
    """Every registered metric that applies to the context's mode."""
    values = {}
    for metric in METRICS.values():
        if metric.compute is not None and metric.applies_to(context.mode):
            values.update(metric.compute(context))
    return values


__all__ = [
    "METRICS",
    "Metric",
    "MetricContext",
    "cer",
    "compute_metrics",
    "evaluate_module_path",
    "gen_ppl",
    "mauve_score",
    "scorer_features",
    "syntax_validity",
    "unigram_entropy",
]
