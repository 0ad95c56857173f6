"""Objectives of the paper, written once and shared by the trainers.

- `forward_mask` / `mdm_loss`: masked diffusion forward process and LLaDA's loss (Eq. 5 without z).
- `register_noise`: the robustness noise of Alg. 1 lines 5–6, scaled to a target cosine similarity.
- `autoencoder_loss`: Eq. 5 / Alg. 1 with nested dropout and all-mask batches (App. C).
"""

import math

import torch
import torch.nn.functional as F

from ..modeling.modeling_register_encoder import nested_dropout


def forward_mask(
    input_ids: torch.LongTensor,
    mask_token_id: int,
    t: torch.Tensor | None = None,
    eps: float = 1e-3,
    all_mask_prob: float = 0.0,
    keep_first: bool = True,
    generator: torch.Generator | None = None,
) -> tuple[torch.LongTensor, torch.BoolTensor, torch.Tensor]:
    """Forward process q(x_t | x₀) of masked diffusion: each token is masked independently with probability t.

    Args:
        input_ids: `(B, L)` clean sequences x₀.
        mask_token_id: id of `[MASK]`.
        t: `(B,)` masking levels; drawn t ~ U[eps, 1] when omitted (LLaDA samples p_mask = (1 − eps)·t + eps).
        all_mask_prob: Probability that an example is fully masked regardless of t (App. C's all-mask schedule).
        keep_first: Never mask position 0 (BOS), as generation always starts from a visible BOS.
        generator: Optional generator.

    Returns:
        `(x_t, masked, p_mask)` with `masked` `(B, L)` and `p_mask` `(B,)` the probability each token had.
    """
    batch_size, length = input_ids.shape
    device = input_ids.device
    if t is None:
        t = torch.rand(batch_size, generator=generator).to(device)
        t = (1 - eps) * t + eps
    p_mask = t.to(device).float().clone()
    masked = torch.rand(batch_size, length, generator=generator).to(device) < p_mask[:, None]
    if all_mask_prob > 0:
        full = torch.rand(batch_size, generator=generator).to(device) < all_mask_prob
        masked[full] = True
        p_mask = torch.where(full, torch.ones_like(p_mask), p_mask)
    if keep_first:
        masked[:, 0] = False
    x_t = torch.where(masked, torch.full_like(input_ids, mask_token_id), input_ids)
    return x_t, masked, p_mask


def mdm_loss(logits: torch.Tensor, input_ids: torch.LongTensor, masked: torch.BoolTensor, p_mask: torch.Tensor):
    """LLaDA's loss, Eq. 5 with w = 1/t: −(1/(B·L)) Σ_masked log p_θ(x₀ⁱ | x_t) / t."""
    if not bool(masked.any()):
        return logits.sum() * 0.0
    token_loss = F.cross_entropy(logits[masked].float(), input_ids[masked], reduction="none")
    weights = (1.0 / p_mask)[:, None].expand_as(masked)[masked]
    return (token_loss * weights).sum() / masked.numel()


def register_noise(
    registers: torch.Tensor, cosine_similarity: float = 0.8, generator: torch.Generator | None = None
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
    noise = torch.randn(registers.shape, generator=generator, dtype=torch.float32).to(registers.device)
    return (registers.float() + scale * noise).to(registers.dtype)


def autoencoder_loss(
    encoder,
    demasker,
    input_ids: torch.LongTensor,
    attention_mask: torch.Tensor | None = None,
    encoder_inputs: dict[str, torch.Tensor] | None = None,
    cosine_similarity: float = 0.8,
    all_mask_prob: float = 0.25,
    nested: bool = True,
    generator: torch.Generator | None = None,
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
    """
    if encoder_inputs is None:
        encoder_inputs = {"input_ids": input_ids, "attention_mask": attention_mask}
    registers = encoder(**encoder_inputs).registers  # (B, K, d)
    noisy = register_noise(registers, cosine_similarity, generator=generator)
    batch_size, num_registers = registers.shape[:2]
    k = (
        nested_dropout(batch_size, num_registers, generator=generator, device=input_ids.device)
        if nested
        else torch.full((batch_size,), num_registers, dtype=torch.long, device=input_ids.device)
    )
    mask_token_id = demasker.config.mask_token_id
    x_t, masked, p_mask = forward_mask(input_ids, mask_token_id, all_mask_prob=all_mask_prob, generator=generator)
    logits = demasker(x_t, registers=noisy.to(demasker.dtype), num_registers=k).logits
    loss = mdm_loss(logits, input_ids, masked, p_mask)
    return loss, {"num_registers": k, "p_mask": p_mask}


__all__ = ["autoencoder_loss", "forward_mask", "mdm_loss", "register_noise"]
