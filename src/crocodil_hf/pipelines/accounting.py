"""What a call costs: demasker, prior and encoder calls, and everything in demasker-forward equivalents by FLOPs
(paper footnote 4)."""

from dataclasses import dataclass, field

import torch


def forward_flops(module: torch.nn.Module, num_tokens: int, num_keys: int | None = None) -> float:
    """Approximate forward FLOPs: 2·(linear parameters)·tokens + 4·layers·tokens·keys·width for attention (keys =
    tokens unless a cached call attends to more)."""
    linear = sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Linear))
    config = getattr(module, "config", None)
    width = getattr(config, "d_model", None) or getattr(config, "hidden_size", None) or 0
    layers = getattr(config, "n_layers", None) or getattr(config, "num_layers", None) or 0
    backbone = getattr(config, "backbone_config", None)  # the register encoder: its backbone's size
    if backbone is not None:
        width = getattr(backbone, "hidden_size", 0)
        layers = getattr(backbone, "num_hidden_layers", None) or getattr(backbone, "n_layers", 0)
    keys = num_tokens if num_keys is None else num_keys
    return 2.0 * linear * num_tokens + 4.0 * layers * num_tokens * keys * width


@dataclass
class NFEBreakdown:
    """Function evaluations of one call (paper footnote 4).

    Args:
        demasker_calls: Forward passes of the demasker (each over the whole batch).
        prior_calls: Forward passes of the unconditional and conditional priors.
        encoder_calls: Forward passes of the register encoder.
        total: Everything in demasker-forward equivalents by FLOPs.
        prior_total: The priors' part of `total` (`prior_total / total` is their share of a sample's FLOPs), each
            call counted at the FLOPs of the prior that made it (the conditional prior, with its cross-attention, is
            larger than the unconditional one).
        demasker_flops: FLOPs the demasker calls executed for one sample (a row of the batch; with `kv_cache`, a
            call on a block's positions costs a fraction of a whole-canvas call; `total` still counts each call as
            one forward, as the paper does).
    """

    demasker_calls: int = 0
    prior_calls: int = 0
    encoder_calls: int = 0
    total: float = 0.0
    prior_total: float = 0.0
    demasker_flops: float = 0.0
    prior_flops: float = field(default=0.0, repr=False)  # summed by `count_prior_calls`, in FLOPs

    def count_prior_calls(self, prior: torch.nn.Module, calls: int, condition_tokens: int | None = None) -> None:
        """Add `calls` forward passes of `prior` (a `RegisterPriorTransformer`) to the count and to the FLOPs; a
        conditional prior's cross-attention projects its `condition_tokens` keys and values in every call."""
        self.prior_calls += calls
        tokens = prior.config.num_registers
        flops = forward_flops(prior, tokens)
        if condition_tokens is not None:  # `forward_flops` ran the key / value projections over the query tokens
            kv = sum(
                block.attn2.to_k.weight.numel() + block.attn2.to_v.weight.numel()
                for block in prior.blocks
                if block.attn2 is not None
            )
            flops += 2.0 * kv * (condition_tokens - tokens)
        self.prior_flops += calls * flops

    def to_dict(self) -> dict:
        return {
            "demasker_calls": self.demasker_calls,
            "prior_calls": self.prior_calls,
            "encoder_calls": self.encoder_calls,
            "total": self.total,
            "prior_total": self.prior_total,
            "demasker_flops": self.demasker_flops,
        }


__all__ = ["NFEBreakdown", "forward_flops"]
