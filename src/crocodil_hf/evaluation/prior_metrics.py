"""Metrics of the register prior: PRDC per register index (App. E) and PSNR(g_ψ(z_t, t), z₀) against t (Fig. 9)."""

import math

import torch
from diffusers import DDPMScheduler

from ..modeling.modeling_register_prior import RegisterPriorTransformer
from ..schedulers.scheduling_register_prior import add_register_noise


def _kth_neighbour_distance(features: torch.Tensor, nearest_k: int) -> torch.Tensor:
    distances = torch.cdist(features, features)
    # the k-th smallest distance with the point itself (distance 0) counted first, as in Naeem et al.'s code
    return distances.kthvalue(nearest_k + 1, dim=1).values


def prdc(real: torch.Tensor, fake: torch.Tensor, nearest_k: int = 5) -> dict[str, float]:
    """Precision, recall, density and coverage (Naeem et al. 2020) of `fake` against `real` feature sets.

    Args:
        real: `(N, F)` real features.
        fake: `(M, F)` generated features.
        nearest_k: k of the k-nearest-neighbour balls.
    """
    if real.dim() != 2 or fake.dim() != 2 or real.shape[1] != fake.shape[1]:
        raise ValueError(f"`real` and `fake` must be (N, F) and (M, F), got {tuple(real.shape)}, {tuple(fake.shape)}.")
    if not 1 <= nearest_k < min(len(real), len(fake)):
        raise ValueError(f"`nearest_k` must lie in [1, {min(len(real), len(fake)) - 1}], got {nearest_k}.")
    real, fake = real.double(), fake.double()
    real_radius = _kth_neighbour_distance(real, nearest_k)  # (N,)
    fake_radius = _kth_neighbour_distance(fake, nearest_k)  # (M,)
    distance = torch.cdist(real, fake)  # (N, M)
    inside_real = distance < real_radius[:, None]
    return {
        "precision": inside_real.any(dim=0).double().mean().item(),
        "recall": (distance < fake_radius[None, :]).any(dim=1).double().mean().item(),
        "density": inside_real.sum(dim=0).double().mean().item() / nearest_k,
        "coverage": (distance.min(dim=1).values < real_radius).double().mean().item(),
    }


def register_prdc(real: torch.Tensor, fake: torch.Tensor, nearest_k: int = 5) -> dict[str, float]:
    """PRDC computed separately for every register index j on {z⁽ʲ⁾} and averaged over j (App. E).

    Args:
        real: `(N, K, d)` real register banks.
        fake: `(M, K, d)` sampled register banks.

    Returns:
        Mean of each metric over registers, plus `<metric>_std` across registers.
    """
    if real.dim() != 3 or fake.dim() != 3 or real.shape[1:] != fake.shape[1:]:
        raise ValueError(
            f"`real` and `fake` must be (N, K, d) and (M, K, d), got {tuple(real.shape)}, {tuple(fake.shape)}."
        )
    per_register = [prdc(real[:, j], fake[:, j], nearest_k) for j in range(real.shape[1])]
    result = {}
    for key in per_register[0]:
        values = torch.tensor([r[key] for r in per_register], dtype=torch.float64)
        result[key] = values.mean().item()
        result[f"{key}_std"] = values.std(unbiased=False).item()
    return result


@torch.no_grad()
def psnr_curve(
    prior: RegisterPriorTransformer,
    noise_scheduler: DDPMScheduler,
    registers: torch.Tensor,
    timesteps: list[int],
    *,
    encoder_hidden_states: torch.Tensor | None = None,
    encoder_attention_mask: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
    data_range: float | None = None,
) -> list[dict[str, float]]:
    """PSNR(g_ψ(z_t, t), z₀) = 10·log10(R² / MSE) for each base time t (App. E, Fig. 9).

    Block offsets are applied as in training. `R` defaults to the peak-to-peak range of `registers`, so curves of the
    unconditional and the conditional prior on the same banks are directly comparable.
    """
    num_train = noise_scheduler.config.num_train_timesteps
    if data_range is None:
        data_range = (registers.max() - registers.min()).item()
    batch_size = registers.shape[0]
    curve = []
    for t in timesteps:
        if not 0 <= t < num_train:
            raise ValueError(f"timesteps must lie in [0, {num_train}), got {t}.")
        per_register_t = prior.register_timesteps(torch.full((batch_size,), t, dtype=torch.long))
        noise = torch.randn(registers.shape, generator=generator, dtype=registers.dtype)
        noisy = add_register_noise(noise_scheduler, registers, noise, per_register_t)
        pred = prior(noisy, per_register_t, encoder_hidden_states, encoder_attention_mask).sample
        mse = torch.nn.functional.mse_loss(pred.float(), registers.float()).item()
        curve.append({"t": int(t), "psnr": 10 * math.log10(data_range**2 / max(mse, 1e-20))})
    return curve


__all__ = ["prdc", "psnr_curve", "register_prdc"]
