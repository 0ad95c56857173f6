"""DDIM sampling of register banks from the prior g_ψ (App. E), with the block-wise timestep offsets of training.

Every register follows the DDIM update of diffusers' `DDIMScheduler.step` (x₀-prediction, `clip_sample=False`) at its
own effective time t_b = clip(τ + Δ_b·T): later blocks lag behind earlier ones and the base grid is extended by just
enough steps for the last block to reach t = 0. Without offsets this is exactly `DDIMScheduler.step` on every step.
"""

import math
from dataclasses import dataclass

import torch
from diffusers import DDIMScheduler
from diffusers.utils.torch_utils import randn_tensor

from ..modeling.modeling_register_encoder import normalize_registers
from ..modeling.modeling_register_prior import (  # noqa: F401  (scheduler factories re-exported)
    RegisterPriorTransformer,
    make_noise_scheduler,
    make_sampling_scheduler,
)


def check_sampling_scheduler(scheduler: DDIMScheduler, prior: RegisterPriorTransformer) -> None:
    """Raise `ValueError` if the scheduler cannot drive an x₀-predicting register prior."""
    if not isinstance(scheduler, DDIMScheduler):
        raise TypeError(f"`scheduler` must be a DDIMScheduler, got {type(scheduler).__name__}.")
    config = scheduler.config
    if config.prediction_type != "sample":
        raise ValueError(
            f"the register prior predicts x₀: `scheduler.prediction_type` must be 'sample', got "
            f"{config.prediction_type!r}."
        )
    if config.clip_sample or config.thresholding:
        raise ValueError(
            "`scheduler.clip_sample` and `scheduler.thresholding` must be False: registers are not images in [-1, 1]."
        )
    if config.num_train_timesteps != prior.config.num_train_timesteps:
        raise ValueError(
            f"`scheduler.num_train_timesteps` ({config.num_train_timesteps}) must equal the prior's "
            f"`num_train_timesteps` ({prior.config.num_train_timesteps})."
        )


@dataclass
class RegisterSamples:
    """Result of `sample_registers`.

    Args:
        registers: `(B, K, d)` sampled register banks (renormalised to √d per register unless disabled).
        num_prior_calls: Forward passes of the prior (the extra steps that let offset blocks finish included).
    """

    registers: torch.Tensor
    num_prior_calls: int


def _alphas(scheduler: DDIMScheduler, timesteps: torch.Tensor) -> torch.Tensor:
    alphas = scheduler.alphas_cumprod.to(timesteps.device)
    final = torch.as_tensor(scheduler.final_alpha_cumprod, dtype=alphas.dtype, device=timesteps.device)
    return torch.where(timesteps >= 0, alphas[timesteps.clamp(min=0)], final)


def ddim_register_step(
    scheduler: DDIMScheduler,
    pred_original_sample: torch.Tensor,
    timesteps: torch.Tensor,
    prev_timesteps: torch.Tensor,
    sample: torch.Tensor,
    eta: float = 0.0,
    generator: torch.Generator | list[torch.Generator] | None = None,
) -> torch.Tensor:
    """One DDIM step (Song et al. 2021, Eq. 12; `DDIMScheduler.step` with x₀-prediction) with a timestep per register.

    Args:
        scheduler: Supplies `alphas_cumprod` and `final_alpha_cumprod`.
        pred_original_sample: `(B, K, d)` ẑ₀ from the prior.
        timesteps: `(B, K)` current times; a register with t < 0 has finished and is returned unchanged.
        prev_timesteps: `(B, K)` times after the step (< 0 means the final, clean time).
        sample: `(B, K, d)` current z_t.
        eta: DDIM stochasticity (0 = deterministic).
        generator: Generator(s) for the noise when `eta > 0`.
    """
    alpha_t = _alphas(scheduler, timesteps)[..., None].to(sample.dtype)
    alpha_prev = _alphas(scheduler, prev_timesteps)[..., None].to(sample.dtype)
    beta_t = 1 - alpha_t
    done = (timesteps < 0)[..., None]
    safe_beta = torch.where(done, torch.ones_like(beta_t), beta_t)
    pred_epsilon = (sample - alpha_t**0.5 * pred_original_sample) / safe_beta**0.5
    variance = (1 - alpha_prev) / safe_beta * (1 - alpha_t / alpha_prev)
    std_dev_t = eta * variance.clamp(min=0) ** 0.5
    direction = (1 - alpha_prev - std_dev_t**2).clamp(min=0) ** 0.5 * pred_epsilon
    prev_sample = alpha_prev**0.5 * pred_original_sample + direction
    if eta > 0:
        noise = randn_tensor(sample.shape, generator=generator, device=sample.device, dtype=sample.dtype)
        prev_sample = prev_sample + std_dev_t * noise
    return torch.where(done, sample, prev_sample)


@torch.no_grad()
def sample_registers(
    prior: RegisterPriorTransformer,
    scheduler: DDIMScheduler,
    batch_size: int,
    num_inference_steps: int = 50,
    eta: float = 0.0,
    generator: torch.Generator | list[torch.Generator] | None = None,
    encoder_hidden_states: torch.Tensor | None = None,
    encoder_attention_mask: torch.Tensor | None = None,
    latents: torch.Tensor | None = None,
    renormalize: bool = True,
) -> RegisterSamples:
    """Sample register banks z₀ ~ P(z) (ConThenDisc, Alg. 2 line 3) or P(z | h_φ(x_t)) (ConWithinDisc, Alg. 3 line 6).

    Args:
        prior: The (conditional) register prior.
        scheduler: A `DDIMScheduler` with `prediction_type="sample"` and `clip_sample=False`; its
            `timestep_spacing` sets the grid.
        batch_size: Number of banks.
        num_inference_steps: DDIM steps of the base grid.
        eta: DDIM stochasticity.
        generator: A generator, or a list with one per bank (each bank then reproducible alone or in a batch).
        encoder_hidden_states: `(B, L, c)` conditioning for a conditional prior.
        encoder_attention_mask: `(B, L)` validity of the conditioning tokens.
        latents: Starting noise `(B, K, d)`; drawn from `generator` when omitted.
        renormalize: Rescale each sampled register to norm √d, as the encoder's outputs are (App. C).

    Example:
        ```python
        >>> prior = RegisterPriorTransformer(num_registers=4, register_dim=8, hidden_size=32, num_layers=1,
        ...                                  num_attention_heads=4)
        >>> out = sample_registers(prior, make_sampling_scheduler(), batch_size=2, num_inference_steps=5)
        >>> out.registers.shape, out.num_prior_calls
        (torch.Size([2, 4, 8]), 5)
        ```
    """
    check_sampling_scheduler(scheduler, prior)
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be >= 1, got {batch_size}.")
    if num_inference_steps < 1:
        raise ValueError(f"`num_inference_steps` must be >= 1, got {num_inference_steps}.")
    if eta < 0:
        raise ValueError(f"`eta` must be >= 0, got {eta}.")
    if isinstance(generator, list) and len(generator) != batch_size:
        raise ValueError(f"got {len(generator)} generators for a batch of {batch_size}.")
    if encoder_hidden_states is not None and not prior.is_conditional:
        raise ValueError("`encoder_hidden_states` given but the prior is unconditional (no cross-attention).")
    if encoder_hidden_states is None and prior.is_conditional:
        raise ValueError("this prior is conditional: pass `encoder_hidden_states` (h_φ of the visible tokens).")

    config = prior.config
    shape = (batch_size, config.num_registers, config.register_dim)
    device, dtype = prior.device, prior.dtype
    if latents is None:
        latents = randn_tensor(shape, generator=generator, device=device, dtype=dtype)
    elif tuple(latents.shape) != shape:
        raise ValueError(f"`latents` must have shape {shape}, got {tuple(latents.shape)}.")
    sample = latents.to(device=device, dtype=dtype)

    scheduler.set_timesteps(num_inference_steps, device=device)
    num_train = scheduler.config.num_train_timesteps
    stride = num_train // scheduler.num_inference_steps
    base = scheduler.timesteps.long().tolist()
    max_shift = round(max(prior.offsets) * num_train) if prior.offsets else 0
    base += [base[-1] - stride * (i + 1) for i in range(math.ceil(max_shift / stride))]

    # Δ_b·T per register, (1, K); zeros without offsets
    shift = (
        prior.register_timesteps(torch.zeros(1, dtype=torch.long, device=device))
        if prior.offsets
        else (torch.zeros(1, config.num_registers, dtype=torch.long, device=device))
    )
    for tau in base:
        timesteps = _shifted(tau, shift, batch_size, num_train)  # (B, K); < 0 once a block has finished
        prev = _shifted(tau - stride, shift, batch_size, num_train)
        x0 = prior(
            sample,
            timesteps.clamp(min=0),
            encoder_hidden_states=encoder_hidden_states,
            encoder_attention_mask=encoder_attention_mask,
        ).sample
        sample = ddim_register_step(scheduler, x0, timesteps, prev, sample, eta=eta, generator=generator)
    registers = normalize_registers(sample) if renormalize else sample
    return RegisterSamples(registers=registers, num_prior_calls=len(base))


def _shifted(base_time: int, shift: torch.Tensor, batch_size: int, num_train: int) -> torch.Tensor:
    """Effective per-register times `(B, K)` for base time τ: τ + Δ_b·T, capped at T−1 but not floored at 0."""
    return (base_time + shift).expand(batch_size, -1).clamp(max=num_train - 1)


__all__ = [
    "RegisterSamples",
    "check_sampling_scheduler",
    "ddim_register_step",
    "make_noise_scheduler",
    "make_sampling_scheduler",
    "sample_registers",
]
