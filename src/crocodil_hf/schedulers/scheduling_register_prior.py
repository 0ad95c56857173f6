"""The register prior's time schedule (App. E), in one place for training and sampling: the block-wise timestep
offsets (`block_timestep_offsets`; the model turns base times into per-register times with `block_timesteps`), the
noise of training (`make_noise_scheduler`, `add_register_noise`, `base_timestep_range`), and sampling register banks
by DDIM or any of diffusers' multistep solvers (`PRIOR_SOLVERS`, `make_prior_scheduler`, `sample_registers`).

Every register block b runs at its own effective time t_b = clip(τ + Δ_b·T) of a shared base grid τ: later blocks lag
behind earlier ones and the base grid is extended by just enough steps for the last block to reach t = 0. One prior
call per base step evaluates all registers at their own times. Then:

- DDIM (`DDIMScheduler`): every register follows the update of `DDIMScheduler.step` (x₀-prediction,
  `clip_sample=False`) at its own time, `ddim_register_step`. Without offsets this is exactly `DDIMScheduler.step`.
- A multistep solver (`DPMSolverMultistepScheduler`, `UniPCMultistepScheduler`): each block gets its own copy of the
  scheduler, set to that block's shifted grid, and its `step` runs on the block's slice whenever the block's time
  moves. The solver maths stays in diffusers; without offsets this is exactly the scheduler's own sampling loop.

`PRIOR_SOLVERS` names the solvers; `make_prior_scheduler("dpmsolver++", pipe.scheduler.config)` builds one that keeps
the pipeline's training schedule.
"""

import inspect
import math
from dataclasses import dataclass

import diffusers
import torch
from diffusers import DDIMScheduler, DDPMScheduler
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils.torch_utils import randn_tensor

if __package__.startswith("crocodil_hf"):  # the installed package
    from crocodil_hf.modeling.modeling_register_encoder import normalize_registers
    from crocodil_hf.modeling.modeling_register_prior import RegisterPriorTransformer, block_timesteps, register_blocks
else:  # a pipeline's remote code (pipelines/remote_code.py): the package's files side by side in one folder
    from .modeling_register_encoder import normalize_registers
    from .modeling_register_prior import RegisterPriorTransformer, block_timesteps, register_blocks
from .names import PRIOR_SOLVER_SPECS

# solver name -> (diffusers scheduler class, config it needs on top of the pipeline's schedule)
PRIOR_SOLVERS: dict[str, tuple[type, dict]] = {
    name: (getattr(diffusers, cls), extra) for name, (cls, extra) in PRIOR_SOLVER_SPECS.items()
}
# grids other than the timestep grid (Karras, exponential, … sigmas) cannot carry per-block offsets
_GRID_OPTIONS = ("use_karras_sigmas", "use_exponential_sigmas", "use_beta_sigmas", "use_lu_lambdas", "use_flow_sigmas")


# ---------------------------------------------------------------- the schedule of training and sampling


def block_timestep_offsets(num_registers: int, max_offset: float = 0.2) -> list[float]:
    """Default offsets Δ_b, linear in the block index from 0 to `max_offset` (fractions of the diffusion time).

    `max_offset=0` switches the offsets off (the App. G(iii) ablation).
    """
    num_blocks = len(register_blocks(num_registers))
    if not 0.0 <= max_offset < 1.0:
        raise ValueError(f"`max_offset` must lie in [0, 1), got {max_offset}.")
    if num_blocks == 1:
        return [0.0]
    return [max_offset * b / (num_blocks - 1) for b in range(num_blocks)]


def add_register_noise(noise_scheduler, registers: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor):
    """`noise_scheduler.add_noise` with one timestep per register: `(B, K, d)` banks, `(B, K)` timesteps.

    `add_noise` broadcasts one timestep per leading index, so registers are flattened into the batch.
    """
    batch_size, num_registers, dim = registers.shape
    noisy = noise_scheduler.add_noise(registers.reshape(-1, 1, dim), noise.reshape(-1, 1, dim), timesteps.reshape(-1))
    return noisy.view(batch_size, num_registers, dim)


def make_noise_scheduler(num_train_timesteps: int = 1000) -> DDPMScheduler:
    """The training schedule of the paper's prior: DDPM, cosine (`squaredcos_cap_v2`), x₀-prediction."""
    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="sample",
        clip_sample=False,
    )


def make_sampling_scheduler(num_train_timesteps: int = 1000, timestep_spacing: str = "trailing") -> DDIMScheduler:
    """The matching DDIM sampler. `clip_sample=False` matters: registers are not images in [−1, 1]."""
    return DDIMScheduler(
        num_train_timesteps=num_train_timesteps,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="sample",
        clip_sample=False,
        set_alpha_to_one=True,
        timestep_spacing=timestep_spacing,
    )


def base_timestep_range(prior: RegisterPriorTransformer) -> tuple[int, int]:
    """The base times [low, high) of training and sampling: from −max Δ·T, so that the most-offset block also runs
    its whole range [0, T−1] (App. E), to T."""
    num_train = prior.config.num_train_timesteps
    max_shift = round(max(prior.offsets) * num_train) if prior.offsets else 0
    return -max_shift, num_train


# ---------------------------------------------------------------- the priors' solvers


def solver_name(scheduler) -> str:
    """The `PRIOR_SOLVERS` name of a scheduler instance (its class), or its class name if it is none of them."""
    for name, (cls, _) in PRIOR_SOLVERS.items():
        if type(scheduler) is cls:
            return name
    return type(scheduler).__name__


def make_prior_scheduler(solver: str | SchedulerMixin, config) -> SchedulerMixin:
    """A prior sampler by `PRIOR_SOLVERS` name, on the schedule of `config` (T, betas, spacing: a pipeline's
    `scheduler.config`); an instance is returned as it is.

    Example:
        ```python
        >>> dpm = make_prior_scheduler("dpmsolver++", make_sampling_scheduler().config)
        >>> type(dpm).__name__, dpm.config.prediction_type, dpm.config.timestep_spacing
        ('DPMSolverMultistepScheduler', 'sample', 'trailing')
        ```
    """
    if not isinstance(solver, str):
        return solver
    if solver not in PRIOR_SOLVERS:
        raise ValueError(f"unknown prior solver {solver!r}; choose one of {', '.join(PRIOR_SOLVERS)}.")
    cls, extra = PRIOR_SOLVERS[solver]
    keep = {k: v for k, v in dict(config).items() if not k.startswith("_")}
    keep = {k: v for k, v in keep.items() if k in inspect.signature(cls.__init__).parameters}
    return cls.from_config({**keep, **extra, "prediction_type": "sample"})


def check_sampling_scheduler(scheduler, prior: RegisterPriorTransformer) -> None:
    """Raise `TypeError` / `ValueError` if the scheduler cannot drive an x₀-predicting register prior."""
    classes = {cls: name for name, (cls, _) in PRIOR_SOLVERS.items()}
    if type(scheduler) not in classes:
        raise TypeError(
            f"the prior's scheduler must be one of {', '.join(c.__name__ for c in classes)} "
            f"(`prior_scheduler=` takes {', '.join(PRIOR_SOLVERS)}), got {type(scheduler).__name__}."
        )
    config = scheduler.config
    if config.prediction_type != "sample":
        raise ValueError(
            f"the register prior predicts x₀: `scheduler.prediction_type` must be 'sample', got "
            f"{config.prediction_type!r}."
        )
    if config.get("clip_sample") or config.get("thresholding"):
        raise ValueError(
            "`scheduler.clip_sample` and `scheduler.thresholding` must be False: registers are not images in [-1, 1]."
        )
    on = [option for option in _GRID_OPTIONS if config.get(option)]
    if on:
        raise ValueError(
            f"`scheduler.{on[0]}` must be False: the prior samples on the timestep grid, where each register block "
            "takes its own offset."
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
    *,
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
    *,
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
        scheduler: A `PRIOR_SOLVERS` scheduler (DDIM, DPM-Solver++, UniPC) with `prediction_type="sample"`; its
            `timestep_spacing` sets the grid.
        batch_size: Number of banks.
        num_inference_steps: Steps of the base grid.
        eta: DDIM stochasticity (DDIM only).
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
    if eta > 0 and not isinstance(scheduler, DDIMScheduler):
        raise ValueError(f"`eta` is DDIM's stochasticity; the {solver_name(scheduler)} prior solver takes eta=0.")
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

    base, shift = offset_grid(scheduler, num_inference_steps, prior, device)
    condition = {"encoder_hidden_states": encoder_hidden_states, "encoder_attention_mask": encoder_attention_mask}
    if isinstance(scheduler, DDIMScheduler):
        stride = scheduler.config.num_train_timesteps // num_inference_steps
        for tau in base:
            timesteps = _shifted(tau, shift, batch_size, scheduler.config.num_train_timesteps)  # < 0: block finished
            prev = _shifted(tau - stride, shift, batch_size, scheduler.config.num_train_timesteps)
            x0 = prior(sample, timesteps.clamp(min=0), **condition).sample
            sample = ddim_register_step(scheduler, x0, timesteps, prev, sample, eta=eta, generator=generator)
    else:
        sample = _sample_multistep(prior, scheduler, base, shift, sample, condition, generator=generator)
    registers = normalize_registers(sample) if renormalize else sample
    return RegisterSamples(registers=registers, num_prior_calls=len(base))


def offset_grid(scheduler, num_inference_steps: int, prior: RegisterPriorTransformer, device):
    """The base grid τ (the scheduler's own `set_timesteps` grid, extended at its stride until the most-offset block
    reaches t = 0) and the per-register shifts Δ_b·T `(1, K)` (zeros without offsets)."""
    scheduler.set_timesteps(num_inference_steps, device=device)
    num_train = scheduler.config.num_train_timesteps
    stride = num_train // num_inference_steps
    base = scheduler.timesteps.long().tolist()
    max_shift = -base_timestep_range(prior)[0]
    base += [base[-1] - stride * (i + 1) for i in range(math.ceil(max_shift / stride))]
    shift = (
        prior.register_timesteps(torch.zeros(1, dtype=torch.long, device=device))
        if prior.offsets
        else torch.zeros(1, prior.config.num_registers, dtype=torch.long, device=device)
    )
    return base, shift


def _set_grid(scheduler, grid: list[int], device) -> None:
    """Set a multistep scheduler to an explicit decreasing timestep grid: `set_timesteps(timesteps=)` where the
    scheduler takes it (DPM-Solver), else its own `set_timesteps(n)` with the grid and its σ's put in place (UniPC)."""
    if "timesteps" in inspect.signature(scheduler.set_timesteps).parameters:
        scheduler.set_timesteps(timesteps=grid, device=device)
        return
    scheduler.set_timesteps(len(grid), device=device)
    if scheduler.timesteps.tolist() == list(grid):
        return  # the scheduler's own grid (a block without offset)
    alphas = scheduler.alphas_cumprod[torch.tensor(grid)].double()
    if scheduler.config.final_sigmas_type == "sigma_min":
        last = ((1 - scheduler.alphas_cumprod[0]) / scheduler.alphas_cumprod[0]) ** 0.5
    else:
        last = torch.zeros(())
    sigmas = torch.cat([((1 - alphas) / alphas) ** 0.5, last.double().view(1)])
    scheduler.sigmas = sigmas.float()
    scheduler.timesteps = torch.tensor(grid, dtype=torch.int64, device=device)


def _sample_multistep(prior, scheduler, base: list[int], shift: torch.Tensor, sample, condition, *, generator):
    """Lockstep sampling with one copy of a multistep `scheduler` per offset block (see the module docstring)."""
    num_train = scheduler.config.num_train_timesteps
    batch_size = sample.shape[0]
    blocks = []  # (register slice, {base-step index: block time}, its scheduler)
    values, counts = torch.unique_consecutive(shift[0], return_counts=True)
    start = 0
    for value, count in zip(values.tolist(), counts.tolist()):
        times = [min(tau + value, num_train - 1) for tau in base]
        # the block steps where its time is valid and moves on: not while it waits at T−1, not once finished
        steps = {i: t for i, t in enumerate(times) if t >= 0 and (i + 1 == len(times) or times[i + 1] < t)}
        block_scheduler = type(scheduler).from_config(scheduler.config)
        _set_grid(block_scheduler, list(steps.values()), sample.device)
        blocks.append((slice(start, start + count), steps, block_scheduler))
        start += count
    noise = {"generator": generator} if "generator" in inspect.signature(scheduler.step).parameters else {}
    for i, tau in enumerate(base):
        timesteps = _shifted(tau, shift, batch_size, num_train).clamp(min=0)
        x0 = prior(sample, timesteps, **condition).sample
        new = sample.clone()  # never written in place: a solver keeps views of the samples it was given
        for registers, steps, block_scheduler in blocks:
            if i in steps:
                new[:, registers] = block_scheduler.step(
                    x0[:, registers], steps[i], sample[:, registers], **noise
                ).prev_sample
        sample = new
    return sample


def _shifted(base_time: int, shift: torch.Tensor, batch_size: int, num_train: int) -> torch.Tensor:
    """Effective per-register times `(B, K)` for base time τ: τ + Δ_b·T, capped at T−1 but not floored at 0."""
    return (base_time + shift).expand(batch_size, -1).clamp(max=num_train - 1)


__all__ = [
    "PRIOR_SOLVERS",
    "add_register_noise",
    "base_timestep_range",
    "block_timestep_offsets",
    "block_timesteps",
    "register_blocks",
    "RegisterSamples",
    "check_sampling_scheduler",
    "ddim_register_step",
    "make_noise_scheduler",
    "make_prior_scheduler",
    "make_sampling_scheduler",
    "offset_grid",
    "sample_registers",
    "solver_name",
]
