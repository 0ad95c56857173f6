"""Objectives of the paper, written once and shared by the trainers.

- `forward_mask` / `mdm_loss`: masked diffusion forward process and LLaDA's loss (Eq. 5 without z).
- `register_noise`: the robustness noise of Alg. 1 lines 5–6, scaled to a target cosine similarity.
- `autoencoder_loss`: Eq. 5 / Alg. 1 with nested dropout and all-mask batches (App. C).
- `prompt_spans`: prompt-aware training (App. H): a visible prompt (and suffix) per example, the rest maskable.

Every random draw takes a `generator`: `None` (the global RNG), one `torch.Generator`, or `RowGenerators` (one
generator per example, seeded from the run seed, the micro-batch index and the example's row in the global batch). The
trainers use `RowGenerators`, so the noise an example gets does not depend on how the global batch is split across
processes: a 2-process run and a 1-process run over the same global batches compute the same losses.
"""

import hashlib
import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ..modeling.modeling_register_encoder import nested_dropout


class RowGenerators:
    """One `torch.Generator` per example of a batch; draws return `(B, *shape)` with row b drawn from generator b.

    Example:
        ```python
        >>> gens = RowGenerators.for_rows(seed=0, step=3, first_row=4, num_rows=2)
        >>> uniform((2, 5), gens).shape
        torch.Size([2, 5])
        ```
    """

    def __init__(self, seeds: Sequence[int], device: torch.device | str = "cpu"):
        self.device = torch.device(device)
        self.generators = [torch.Generator(device=self.device).manual_seed(int(s)) for s in seeds]

    @staticmethod
    def row_seed(seed: int, step: int, row: int) -> int:
        digest = hashlib.sha256(f"crocodil:{seed}:{step}:{row}".encode()).digest()
        return int.from_bytes(digest[:8], "little") & (2**63 - 1)

    @classmethod
    def for_rows(cls, seed: int, step: int, first_row: int, num_rows: int, device="cpu") -> "RowGenerators":
        """Generators of rows `first_row … first_row + num_rows − 1` of the global batch of micro-step `step`."""
        return cls([cls.row_seed(seed, step, first_row + i) for i in range(num_rows)], device)

    @classmethod
    def from_seeds(cls, seeds: torch.Tensor) -> "RowGenerators":
        return cls(seeds.tolist(), seeds.device)

    def __len__(self) -> int:
        return len(self.generators)

    def draw(self, kind: str, shape: tuple[int, ...], low: int = 0, high: int = 1) -> torch.Tensor:
        if shape[0] != len(self.generators):
            raise ValueError(f"{len(self.generators)} row generators cannot draw a batch of {shape[0]}.")
        rows = []
        for generator in self.generators:
            if kind == "rand":
                rows.append(torch.rand(shape[1:], generator=generator, device=self.device))
            elif kind == "randn":
                rows.append(torch.randn(shape[1:], generator=generator, device=self.device))
            else:
                rows.append(torch.randint(low, high, shape[1:], generator=generator, device=self.device))
        return torch.stack(rows)


Generator = torch.Generator | RowGenerators | None


def uniform(shape: tuple[int, ...], generator: Generator = None, device=None) -> torch.Tensor:
    """U[0, 1) of `shape` (first dimension = batch) from the global RNG, a generator or per-row generators."""
    if isinstance(generator, RowGenerators):
        out = generator.draw("rand", shape)
    else:
        out = torch.rand(shape, generator=generator)
    return out.to(device) if device is not None else out


def normal(shape: tuple[int, ...], generator: Generator = None, device=None) -> torch.Tensor:
    """N(0, 1) float32 of `shape` (first dimension = batch)."""
    if isinstance(generator, RowGenerators):
        out = generator.draw("randn", shape)
    else:
        out = torch.randn(shape, generator=generator, dtype=torch.float32)
    return out.to(device) if device is not None else out


def integers(low: int, high: int, shape: tuple[int, ...], generator: Generator = None, device=None) -> torch.Tensor:
    """Integers in [low, high) of `shape` (first dimension = batch)."""
    if isinstance(generator, RowGenerators):
        out = generator.draw("randint", shape, low, high)
    else:
        out = torch.randint(low, high, shape, generator=generator)
    return out.to(device) if device is not None else out


def forward_mask(
    input_ids: torch.LongTensor,
    mask_token_id: int,
    t: torch.Tensor | None = None,
    *,
    eps: float = 1e-3,
    all_mask_prob: float = 0.0,
    keep_first: bool = True,
    generator: Generator = None,
    maskable: torch.BoolTensor | None = None,
) -> tuple[torch.LongTensor, torch.BoolTensor, torch.Tensor]:
    """Forward process q(x_t | x₀) of masked diffusion: each token is masked independently with probability t.

    Args:
        input_ids: `(B, L)` clean sequences x₀.
        mask_token_id: id of `[MASK]`.
        t: `(B,)` masking levels; drawn t ~ U[eps, 1] when omitted (LLaDA samples p_mask = (1 − eps)·t + eps).
        all_mask_prob: Probability that an example is fully masked regardless of t (App. C's all-mask schedule).
        keep_first: Never mask position 0 (BOS), as generation always starts from a visible BOS.
        generator: Optional generator (a `torch.Generator` or `RowGenerators`).
        maskable: `(B, L)` positions that may be masked (`prompt_spans`); the others stay visible, as a prompt does.

    Returns:
        `(x_t, masked, p_mask)` with `masked` `(B, L)` and `p_mask` `(B,)` the probability each token had.
    """
    batch_size, length = input_ids.shape
    device = input_ids.device
    if t is None:
        t = uniform((batch_size,), generator, device)
        t = (1 - eps) * t + eps
    p_mask = t.to(device).float().clone()
    masked = uniform((batch_size, length), generator, device) < p_mask[:, None]
    if all_mask_prob > 0:
        full = uniform((batch_size,), generator, device) < all_mask_prob
        masked[full] = True
        p_mask = torch.where(full, torch.ones_like(p_mask), p_mask)
    if keep_first:
        masked[:, 0] = False
    if maskable is not None:
        masked &= maskable.to(device)
    x_t = torch.where(masked, torch.full_like(input_ids, mask_token_id), input_ids)
    return x_t, masked, p_mask


def program_lengths(input_ids: torch.LongTensor, eos_token_id: int) -> torch.LongTensor:
    """`(B,)` length of `[BOS] program [EOS]` in each row: up to and including the first EOS after position 0 (the
    whole row when it has none)."""
    length = input_ids.shape[1]
    is_eos = input_ids[:, 1:] == eos_token_id
    first = torch.where(is_eos.any(dim=1), is_eos.float().argmax(dim=1) + 1, length - 1)
    return first + 1


class SpanDraw(NamedTuple):
    """One draw of prompt-aware spans per row (`draw_spans`): `prompted` rows keep `[0, start)` visible; rows
    `with_suffix` also keep `[end, …)` visible."""

    prompted: torch.BoolTensor
    start: torch.LongTensor
    with_suffix: torch.BoolTensor
    end: torch.LongTensor

    def mask(self, width: int) -> torch.BoolTensor:
        """`(B, width)` bool: True where the forward process may mask."""
        columns = torch.arange(width, device=self.start.device)[None, :]
        maskable = columns >= torch.where(self.prompted, self.start, 0)[:, None]
        return maskable & ((columns < self.end[:, None]) | ~self.with_suffix[:, None])

    def padded(self, span_pad: int, generator: "Generator") -> tuple["SpanDraw", torch.LongTensor]:
        """This draw with r ~ U{0, …, span_pad} positions added after each fill-in-the-middle span, and the r."""
        pads = integers(0, span_pad + 1, tuple(self.end.shape), generator, self.end.device) * self.with_suffix
        return self._replace(end=self.end + pads), pads


def draw_spans(lengths: torch.LongTensor, prompt_prob: float, suffix_prob: float, generator: "Generator") -> SpanDraw:
    """The prompts and suffixes of `prompt_spans`, drawn for rows of program lengths `lengths`."""
    batch_size, device = lengths.shape[0], lengths.device
    n = lengths.float()
    draws = uniform((batch_size, 4), generator, device)
    prompted = draws[:, 0] < prompt_prob
    start = 1 + (draws[:, 1] * (n - 1)).long().clamp(max=(n - 2).long())  # a in [1, n − 1]
    with_suffix = prompted & (draws[:, 2] < suffix_prob)
    room = (n - 1 - start).clamp(min=1)  # b in [a + 1, n − 1]
    end = start + 1 + (draws[:, 3] * room).long().clamp(max=(room - 1).long())
    return SpanDraw(prompted, start, with_suffix, end)


def prompt_spans(
    lengths: torch.LongTensor,
    width: int,
    prompt_prob: float,
    suffix_prob: float = 0.0,
    generator: Generator = None,
) -> torch.BoolTensor:
    """Prompt-aware training (paper App. H, Alg. 2 line 7): which positions of x₀ may be masked.

    `lengths` `(B,)` are the lengths n of `[BOS] program [EOS]` (`program_lengths`) in rows of `width` positions.
    An example is prompted with probability `prompt_prob`: its first `a` positions (BOS and a prompt of
    a − 1 ~ U{0, …, n − 2} program tokens) stay visible, as a prompt does at
    generation. A prompted example also keeps a suffix visible with probability `suffix_prob` (fill-in-the-middle):
    then only `[a, b)` may be masked, b ~ U{a + 1, …, max(a + 1, n − 1)}, and the suffix from b on (with its EOS
    padding) stays visible. Other examples may be masked anywhere. The draws come from `generator`, so they follow the trainer's
    per-example seeds.

    Returns:
        `(B, L)` bool: True where the forward process may mask.

    Example:
        ```python
        >>> ids = torch.tensor([[1, 5, 6, 7, 8, 2, 2]])  # BOS=1, EOS=2: n = 6
        >>> gen = torch.Generator().manual_seed(0)
        >>> spans = prompt_spans(program_lengths(ids, eos_token_id=2), 7, prompt_prob=1.0, generator=gen)
        >>> spans.tolist()  # BOS and a prompt of this row's draw stay visible, the rest may be masked
        [[False, False, False, False, True, True, True]]
        ```
    """
    return draw_spans(lengths, prompt_prob, suffix_prob, generator).mask(width)


def pad_spans(
    input_ids: torch.LongTensor, end: torch.LongTensor, pads: torch.LongTensor, pad_token_id: int
) -> torch.LongTensor:
    """Insert `pads[i]` copies of `pad_token_id` at position `end[i]` of row i, shifting the rest right (what falls
    off the row's end is dropped): the span `[a, b)` of a fill-in-the-middle example followed by EOS padding before
    its suffix, as LLaDA's SFT pads an answer with EOS (issue 41: `gen_length` is an upper bound of the span).

    Example:
        ```python
        >>> pad_spans(torch.tensor([[1, 5, 6, 7, 2, 2]]), torch.tensor([2]), torch.tensor([2]), 2).tolist()
        [[1, 5, 2, 2, 6, 7]]
        ```
    """
    columns = torch.arange(input_ids.shape[1], device=input_ids.device)[None, :]
    after = columns >= end[:, None]
    source = torch.where(after, columns - pads[:, None], columns).clamp(min=0)
    shifted = input_ids.gather(1, source)
    return torch.where(after & (columns < (end + pads)[:, None]), pad_token_id, shifted)


def span_pad_token(demasker) -> int | None:
    """The demasker's pad token when it is its own token (not EOS), else None (EOS pads spans)."""
    pad, eos = getattr(demasker.config, "pad_token_id", None), demasker.config.eos_token_id
    return pad if pad is not None and pad != eos and pad != demasker.config.mask_token_id else None


def prompt_layout(
    input_ids: torch.LongTensor,
    eos_token_id: int,
    prompt_prob: float,
    suffix_prob: float = 0.0,
    generator: Generator = None,
    *,
    span_pad: int = 0,
    pad_token_id: int | None = None,
) -> tuple[torch.LongTensor, torch.BoolTensor | None]:
    """x₀ and its maskable positions for prompt-aware training of `[BOS] program [EOS] ...` rows.

    `prompt_spans` draws the prompt and suffix; with `span_pad` > 0 each fill-in-the-middle row also gets
    r ~ U{0, …, span_pad} pad tokens between its span and its suffix (`pad_spans`), maskable and counted in the
    loss, so the demasker learns to end a span before the suffix. The pad is `pad_token_id` (the tokenizer's own
    pad), else EOS: measured, EOS followed by more code taught the autoencoder to end whole programs early
    (docs/results.md, "Infilling at line cuts"). Returns `(input_ids, None)` (and draws nothing)
    when `prompt_prob` is 0, so that runs without the option keep their random draws.

    Example:
        ```python
        >>> ids = torch.tensor([[1, 5, 6, 7, 8, 9, 2, 2, 2, 2]])
        >>> gen = torch.Generator().manual_seed(1)
        >>> x0, maskable = prompt_layout(ids, 2, prompt_prob=1.0, suffix_prob=1.0, generator=gen, span_pad=3,
        ...                              pad_token_id=4)
        >>> x0.tolist(), maskable.int().tolist()  # the span 6 7 8 and 3 pads may be masked; prompt and suffix 9 not
        ([[1, 5, 6, 7, 8, 4, 4, 4, 9, 2]], [[0, 0, 1, 1, 1, 1, 1, 1, 0, 0]])
        ```
    """
    if prompt_prob <= 0:
        return input_ids, None
    spans = draw_spans(program_lengths(input_ids, eos_token_id), prompt_prob, suffix_prob, generator)
    if span_pad > 0:
        end = spans.end
        spans, pads = spans.padded(span_pad, generator)
        input_ids = pad_spans(input_ids, end, pads, eos_token_id if pad_token_id is None else pad_token_id)
    return input_ids, spans.mask(input_ids.shape[1])


def mdm_loss(logits: torch.Tensor, input_ids: torch.LongTensor, masked: torch.BoolTensor, p_mask: torch.Tensor):
    """LLaDA's loss, Eq. 5 with w = 1/t: −(1/(B·L)) Σ_masked log p_θ(x₀ⁱ | x_t) / t."""
    if not bool(masked.any()):
        return logits.sum() * 0.0
    token_loss = F.cross_entropy(logits[masked].float(), input_ids[masked], reduction="none")
    weights = (1.0 / p_mask)[:, None].expand_as(masked)[masked]
    return (token_loss * weights).sum() / masked.numel()


def register_noise(
    registers: torch.Tensor, cosine_similarity: float = 0.8, generator: Generator = None
) -> torch.Tensor:
    """z₀ + e with white Gaussian e scaled so that E[CS(z₀, z₀ + e)] ≈ `cosine_similarity` (Alg. 1 lines 5–6).

    For a register of norm ‖z‖ in R^d and e ~ N(0, σ²I): CS ≈ 1/√(1 + dσ²/‖z‖²), so
    σ = ‖z‖/√d · √(1/CS² − 1) per register (σ = √(1/CS² − 1) for registers of norm √d).
    `cosine_similarity=1` returns the registers unchanged.
    """
    if not 0 < cosine_similarity <= 1:
        raise ValueError(f"`cosine_similarity` must lie in (0, 1], got {cosine_similarity}.")
    if cosine_similarity == 1:
        return registers
    d = registers.shape[-1]
    scale = registers.float().norm(dim=-1, keepdim=True) / math.sqrt(d) * math.sqrt(1 / cosine_similarity**2 - 1)
    noise = normal(tuple(registers.shape), generator, registers.device)
    return (registers.float() + scale * noise).to(registers.dtype)


def autoencoder_loss(
    encoder,
    demasker,
    input_ids: torch.LongTensor,
    attention_mask: torch.Tensor | None = None,
    *,
    encoder_inputs: dict[str, torch.Tensor] | None = None,
    cosine_similarity: float = 0.8,
    all_mask_prob: float = 0.25,
    nested: bool = True,
    generator: Generator = None,
    prompt_prob: float = 0.0,
    suffix_prob: float = 0.0,
    span_pad: int = 0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """One robust encoder–demasker step (Alg. 1, App. C): z₀ = h_φ(x₀), z₀ + e, first k registers, x_t ~ q(·|x₀).

    Args:
        encoder: h_φ.
        demasker: f_θ.
        input_ids: `(B, L)` x₀ for the demasker (`[BOS] program [EOS] ... [EOS]`).
        attention_mask: `(B, L)` for the encoder when `encoder_inputs` is not given (1 up to the first EOS).
        encoder_inputs: Inputs for an encoder with its own tokenizer.
        cosine_similarity: Target CS of the register noise (paper: 0.8).
        all_mask_prob: Probability of a fully masked x_t (paper: 0.25).
        nested: Nested dropout over k (paper: on).
        prompt_prob, suffix_prob: Prompt-aware training (`prompt_spans`): x_t keeps a prompt (and a suffix) of
            x₀ visible; z₀ still encodes the whole program (App. H: "the prompt and the answer together").
        span_pad: EOS padding after a fill-in-the-middle span (`prompt_layout`); the encoder reads the program
            without it.
    """
    if encoder_inputs is None:
        encoder_inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    registers = encoder(**encoder_inputs).registers  # (B, K, d)
    noisy = register_noise(registers, cosine_similarity, generator=generator)
    batch_size, num_registers = registers.shape[:2]
    if not nested:
        k = torch.full((batch_size,), num_registers, dtype=torch.long, device=input_ids.device)
    elif isinstance(generator, RowGenerators):  # k ~ U{1, …, K} per example, as `nested_dropout` draws it
        k = integers(1, num_registers + 1, (batch_size,), generator, input_ids.device)
    else:
        k = nested_dropout(batch_size, num_registers, generator=generator, device=input_ids.device)
    mask_token_id = demasker.config.mask_token_id
    input_ids, maskable = prompt_layout(
        input_ids,
        demasker.config.eos_token_id,
        prompt_prob,
        suffix_prob,
        generator,
        span_pad=span_pad,
        pad_token_id=span_pad_token(demasker),
    )
    x_t, masked, p_mask = forward_mask(
        input_ids, mask_token_id, all_mask_prob=all_mask_prob, generator=generator, maskable=maskable
    )
    logits = demasker(x_t, registers=noisy.to(demasker.dtype), num_registers=k).logits
    loss = mdm_loss(logits, input_ids, masked, p_mask)
    return loss, {"num_registers": k, "p_mask": p_mask}


__all__ = [
    "RowGenerators",
    "autoencoder_loss",
    "forward_mask",
    "integers",
    "mdm_loss",
    "normal",
    "program_lengths",
    "SpanDraw",
    "draw_spans",
    "pad_spans",
    "prompt_layout",
    "span_pad_token",
    "prompt_spans",
    "register_noise",
    "uniform",
]
