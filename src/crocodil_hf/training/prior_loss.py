"""Training objective of the register prior (App. E, Alg. 5 line 5 and Alg. 4 line 7), shared by both prior stages."""

import torch
from diffusers import DDPMScheduler

from ..modeling.modeling_register_prior import RegisterPriorTransformer
from ..schedulers.scheduling_register_prior import add_register_noise, base_timestep_range
from .losses import Generator, integers, normal


def sample_base_timesteps(
    prior: RegisterPriorTransformer, batch_size: int, generator: Generator = None, device=None
) -> torch.LongTensor:
    """Base times t ~ U{−max Δ·T, …, T−1}: starting below 0 lets every offset block see its whole range [0, T−1]
    ("all blocks are trained across the full range of diffusion times", App. E)."""
    low, high = base_timestep_range(prior)
    return integers(low, high, (batch_size,), generator, device)


def register_prior_loss(
    prior: RegisterPriorTransformer,
    noise_scheduler: DDPMScheduler,
    registers: torch.Tensor,
    *,
    encoder_hidden_states: torch.Tensor | None = None,
    encoder_attention_mask: torch.Tensor | None = None,
    generator: Generator = None,
    noise: torch.Tensor | None = None,
    base_timesteps: torch.Tensor | None = None,
) -> torch.Tensor:
    """L_cont(ψ) = E‖g_ψ(z_t, t [| h_φ(x⁽ʳ⁾)]) − z₀‖² with z_t from `DDPMScheduler.add_noise`, per-block times.

    Args:
        prior: The register prior (its block offsets are applied).
        noise_scheduler: A `DDPMScheduler` (cosine schedule: `make_noise_scheduler()`), same T as the prior.
        registers: `(B, K, d)` clean register banks z₀ from the frozen encoder.
        encoder_hidden_states: `(B, L, c)` conditioning h_φ(x⁽ʳ⁾) for the conditional prior.
        encoder_attention_mask: `(B, L)` validity of the conditioning tokens.
        generator: Optional generator for t and the noise.
        noise: `(B, K, d)` the ε of z_t = √ᾱ_t z₀ + √(1−ᾱ_t) ε, drawn from `generator` when omitted (distillation
            passes the ε that puts z_t on a teacher trajectory's line).
        base_timesteps: `(B,)` base times (block offsets are added), drawn by `sample_base_timesteps` when omitted.

    Returns:
        The scalar MSE, averaged over registers and dimensions.
    """
    if noise_scheduler.config.num_train_timesteps != prior.config.num_train_timesteps:
        raise ValueError(
            f"`noise_scheduler.num_train_timesteps` ({noise_scheduler.config.num_train_timesteps}) must equal the "
            f"prior's ({prior.config.num_train_timesteps})."
        )
    batch_size = registers.shape[0]
    base = base_timesteps
    if base is None:
        base = sample_base_timesteps(prior, batch_size, generator=generator, device=registers.device)
    timesteps = prior.register_timesteps(base)  # (B, K)
    if noise is None:
        noise = normal(tuple(registers.shape), generator, registers.device).to(registers.dtype)
    noisy = add_register_noise(noise_scheduler, registers, noise, timesteps)
    pred = prior(
        noisy, timesteps, encoder_hidden_states=encoder_hidden_states, encoder_attention_mask=encoder_attention_mask
    ).sample
    return torch.nn.functional.mse_loss(pred.float(), registers.float())


__all__ = ["register_prior_loss", "sample_base_timesteps"]
