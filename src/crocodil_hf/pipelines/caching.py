"""The demasker calls of one pipeline call, optionally through an approximate key/value cache (Fast-dLLM's prefix
and dual caches, Wu et al. 2025, arXiv:2505.22618).

A masked-diffusion demasker attends bidirectionally, so no key/value is ever exact once any token changes; within a
semi-autoregressive block, though, the positions outside the block change little. With `kv_cache="dual"` the first
call of a block runs the whole canvas (register prefix, BOS, prompt, finished blocks, masked future blocks, suffix)
and keeps every layer's keys/values in a `CanvasCache`; each later call of the block runs the demasker on the block's
positions only, attending to the cached keys/values of everything else. `kv_cache="prefix"` caches only what lies
before the block and recomputes the block and everything after it.

The cache is refilled by a whole-canvas call whenever what it holds is no longer the canvas the caller sees:
at each block's start (the window moves), whenever z₀ changes (ConWithinDisc's refresh points, a callback), and
whenever a position outside the window changed since the fill (`eos_fill` writing EOS into later blocks, a callback
editing the sequences). `kv_cache_refresh="step"` refills before every call and then computes the window from the
fresh cache: no speed-up, but tokens equal to the uncached path's — the check that the cache reads the right keys.

Like `modes.py`, this module imports no torch when it is imported (the CLI reads `KV_CACHES` for its choices before
anything loads); `DemaskerCalls` imports it when it runs.
"""

from dataclasses import dataclass
from typing import Any

KV_CACHES = {
    "prefix": "cache the register prefix, BOS, prompt and finished blocks; recompute the block and all after it",
    "dual": "cache everything outside the current block (also masked future blocks and the suffix)",
}
KV_CACHE_REFRESH = ("block", "step")


@dataclass
class _Filled:
    """What a cache was filled with: the model, the window it serves, the registers and the canvas."""

    model: Any  # the demasker (torch.nn.Module)
    window: tuple[int, int]
    registers: Any  # torch.Tensor | None
    canvas: Any  # torch.Tensor
    cache: Any  # CanvasCache


class DemaskerCalls:
    """Runs the demasker calls of one pipeline call: every call over the whole canvas (`kv_cache=None`), or through
    a `CanvasCache` (see the module docstring). Counts the FLOPs it executed in `flops`.

    Example:
        ```python
        >>> calls = DemaskerCalls("dual", "block", offset=1)
        >>> calls.window((1, 17), canvas_len=65)  # dual: the block only
        (1, 17)
        >>> DemaskerCalls("prefix", "block", offset=1).window((17, 33), canvas_len=65)  # prefix: the block onwards
        (17, 65)
        ```
    """

    def __init__(self, kind: str | None, refresh: str = "block", *, offset: int):
        self.kind, self.refresh, self.offset = kind, refresh, offset
        self.filled: _Filled | None = None
        self.flops = 0.0
        self.fills = 0

    def window(self, block: tuple[int, int], canvas_len: int) -> tuple[int, int] | None:
        """The canvas positions a call recomputes; `None` when nothing worth caching lies outside them (the whole
        span of an unprompted call: only BOS and the register prefix would be cached)."""
        if self.kind is None:
            return None
        lo, hi = block
        hi = canvas_len if self.kind == "prefix" else hi
        if self.offset <= 1 and lo <= self.offset and hi >= canvas_len:
            return None
        return lo, hi

    def __call__(self, model, canvas, keep, *, block, registers=None, num_registers=None, padded=None):
        """`(N, V)` logits of `keep`'s positions (row-major), as `model(canvas, registers=..., logits_to_keep=keep)`
        gives them; `keep` is false outside `block`."""
        import torch

        padded = padded or {}
        guided = {} if registers is None else {"registers": registers, "num_registers": num_registers}
        window = self.window(block, canvas.shape[1])
        keys = _cache_length(model, canvas.shape[1], registers, num_registers)  # register prefix + canvas
        if window is None:
            self._count(model, keys, keys)
            return model(canvas, logits_to_keep=keep, **guided, **padded).logits
        if self.refresh == "step" or self._stale(model, window, registers, canvas):
            cache = model.canvas_cache(keys)
            logits = model(canvas, logits_to_keep=keep, past_key_values=cache, **guided, **padded).logits
            self._count(model, keys, keys)
            self.filled = _Filled(model, window, registers, canvas.clone(), cache)
            self.fills += 1
            if self.refresh == "block":
                return logits
        where = torch.arange(*window, device=canvas.device)
        if "position_ids" in padded:
            padded = {**padded, "position_ids": padded["position_ids"][:, where]}
        self._count(model, len(where), keys)
        return model(
            canvas[:, where], logits_to_keep=keep[:, where], past_key_values=self.filled.cache, cache_position=where,
            **guided, **padded,
        ).logits  # fmt: skip

    def _stale(self, model, window, registers, canvas) -> bool:
        """Whether the cache no longer holds this call's canvas outside `window` (or another model's, window's or
        z₀'s keys/values)."""
        import torch

        f = self.filled
        if f is None or f.model is not model or f.window != window:
            return True
        if (registers is None) != (f.registers is None) or (
            registers is not None and (registers.shape != f.registers.shape or not torch.equal(registers, f.registers))
        ):
            return True
        outside = torch.ones(canvas.shape[1], dtype=torch.bool, device=canvas.device)
        outside[window[0] : window[1]] = False
        return not torch.equal(canvas[:, outside], f.canvas[:, outside])

    def _count(self, model, queries: int, keys: int) -> None:
        """Add one call's FLOPs: `queries` positions computed, attending to `keys`."""
        from .accounting import forward_flops

        self.flops += forward_flops(model, queries, num_keys=keys)


def _cache_length(model, text_len: int, registers, num_registers) -> int:
    """Keys of one call: the text, plus the register prefix of a guided call."""
    if registers is None or not hasattr(model, "cache_length"):
        return text_len
    return model.cache_length(text_len, registers, num_registers)


__all__ = ["DemaskerCalls", "KV_CACHES", "KV_CACHE_REFRESH"]
