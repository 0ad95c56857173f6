"""The settings of one pipeline call, frozen once built, and the small mutable state of its denoising loop.

`CrocodilPipeline.__call__` builds a `GenerationSettings` (defaults filled in, nothing checked), hands it to
`check_inputs` (every check, nothing filled in), and then only reads it. What changes during the call (the canvas,
z₀, the counts) lives in `LoopState`.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin

from .accounting import NFEBreakdown

Generators = torch.Generator | list[torch.Generator] | None


@dataclass(frozen=True)
class GenerationSettings:
    """Every argument of a call after `mode`, defaults filled in (see `CrocodilPipeline.__call__` for each).

    `prompts`, `suffixes` and `text` hold one entry per sample; `prior_scheduler` is what the caller asked for (a
    `PRIOR_SOLVERS` name, a scheduler, or `None` for the pipeline's own): the priors a call samples with are
    resolved from these settings into a separate `PriorPlan`.
    """

    mode: str
    num_samples: int
    gen_length: int
    block_length: int
    steps: int
    temperature: float = 0.0
    remasking: str = "low_confidence"
    threshold: float | None = None
    num_registers: int = 1
    refresh_at: tuple[float, ...] = (0.5,)
    eta: float = 0.0
    text: tuple[str, ...] | None = None
    prompts: tuple[str, ...] | None = None
    suffixes: tuple[str, ...] | None = None
    prompt_given_per_sample: bool = False  # `prompt=` was a list (its length sets `num_samples`)
    eos_fill: bool = False
    eos_penalty: float = 0.0
    prior_steps: int | None = None
    conditional_prior_steps: int | None = None
    prior_scheduler: str | SchedulerMixin | None = None
    use_distilled_prior: bool | None = None
    use_mdm_demasker: bool | None = None
    registers: torch.Tensor | None = None
    generator: Generators = None
    callback_on_step_end: Callable | None = None
    callback_tensor_inputs: tuple[str, ...] | None = None

    @property
    def num_blocks(self) -> int:
        return self.gen_length // self.block_length

    @property
    def steps_per_block(self) -> int:
        """Scheduler timesteps per block: the budget split evenly, or with `threshold` the block length (an upper
        bound; the loop ends once nothing is masked)."""
        return self.steps // self.num_blocks if self.threshold is None else self.block_length


@dataclass
class LoopState:
    """What changes during a call: the canvas, z₀, the counts, and a refreshing mode's schedule."""

    canvas: torch.Tensor
    registers: torch.Tensor | None = None
    nfe: NFEBreakdown = field(default_factory=NFEBreakdown)
    calls: int = 0  # demasker calls made so far
    refresh_steps: set[int] = field(default_factory=set)  # fixed budgets: refresh after these many calls
    refresh_fractions: list[float] = field(default_factory=list)  # threshold decoding: refresh at these fractions


__all__ = ["GenerationSettings", "LoopState"]
