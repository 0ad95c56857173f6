"""The register priors of a pipeline as one part: which prior a call samples with (teacher or distilled student), at
how many steps, with which solver; and the sampler a mode draws z₀ from, with its cost counted.

- `RegisterPriors` checks a call's prior options (`check`) and resolves them into a frozen `PriorPlan` (`plan`).
- `RegisterSampler` is what a mode (`modes.py`) receives: `encode(texts)` (h_φ), `unconditional(n)` (P(z)) and
  `conditional(canvas)` (P(z | h_φ(visible tokens of x_t)), App. E), each adding its calls to the call's NFE.
"""

from dataclasses import dataclass

import torch
from diffusers.schedulers.scheduling_utils import SchedulerMixin

if __package__.startswith("crocodil_hf"):  # the installed package
    from crocodil_hf.modeling.modeling_register_encoder import RegisterEncoderModel
    from crocodil_hf.modeling.modeling_register_prior import RegisterPriorTransformer
    from crocodil_hf.schedulers.scheduling_register_prior import (
        PRIOR_SOLVERS,
        check_sampling_scheduler,
        make_prior_scheduler,
        sample_registers,
        solver_name,
    )
    from crocodil_hf.utils.numbers import check_number
else:  # a pipeline's remote code (pipelines/remote_code.py): the package's files side by side in one folder
    from .modeling_register_encoder import RegisterEncoderModel
    from .modeling_register_prior import RegisterPriorTransformer
    from .numbers import check_number
    from .scheduling_register_prior import (
        PRIOR_SOLVERS,
        check_sampling_scheduler,
        make_prior_scheduler,
        sample_registers,
        solver_name,
    )
from .accounting import NFEBreakdown
from .canvas import CanvasLayout, TextCanvas
from .settings import GenerationSettings


@dataclass(frozen=True)
class PriorPlan:
    """The priors one call samples with, their steps and their solver (resolved from the call's settings)."""

    prior: RegisterPriorTransformer
    prior_steps: int
    conditional_prior: RegisterPriorTransformer | None
    conditional_prior_steps: int
    scheduler: SchedulerMixin
    eta: float = 0.0


@dataclass(frozen=True)
class RegisterPriors:
    """A pipeline's priors: the teachers, their optional distilled students, the saved sampler and step defaults.

    Example:
        ```python
        >>> pipe.priors.plan(settings).prior_steps  # the teacher's default_prior_steps, or a student's own
        ```
    """

    prior: RegisterPriorTransformer
    scheduler: SchedulerMixin
    default_prior_steps: int
    default_conditional_prior_steps: int
    conditional_prior: RegisterPriorTransformer | None = None
    distilled_prior: RegisterPriorTransformer | None = None
    distilled_conditional_prior: RegisterPriorTransformer | None = None

    @property
    def num_registers(self) -> int:
        """How many registers the priors sample: K, or the k of prefix priors."""
        return self.prior.config.num_registers

    def check(self, settings: GenerationSettings) -> None:
        """A call's prior options: steps positive integers, `use_distilled_prior` a bool or None (and True only with
        a student), `prior_scheduler` a known solver that can drive these priors, `eta` DDIM's only."""
        most = self.scheduler.config.num_train_timesteps  # a sampler takes at most one step per training timestep
        check_number("`prior_steps`", settings.prior_steps, minimum=1, maximum=most, integer=True, allow_none=True)
        check_number(
            "`conditional_prior_steps`", settings.conditional_prior_steps, minimum=1, maximum=most, integer=True,
            allow_none=True,
        )  # fmt: skip
        if settings.use_distilled_prior not in (None, True, False):
            raise ValueError(
                f"`use_distilled_prior` must be True, False or None, got {settings.use_distilled_prior!r}."
            )
        if settings.use_distilled_prior and self.distilled_prior is None and self.distilled_conditional_prior is None:
            raise ValueError("`use_distilled_prior=True` but this pipeline has no distilled prior component.")
        solver = settings.prior_scheduler
        if isinstance(solver, str) and solver not in PRIOR_SOLVERS:
            raise ValueError(f"unknown `prior_scheduler` {solver!r}; choose one of {', '.join(PRIOR_SOLVERS)}.")
        scheduler = self._scheduler(solver)
        check_sampling_scheduler(scheduler, self.prior)
        if settings.eta > 0 and solver_name(scheduler) != "ddim":
            raise ValueError("`eta` is DDIM's stochasticity; with another `prior_scheduler` pass eta=0.")

    def plan(self, settings: GenerationSettings) -> PriorPlan:
        """The teachers at the call's steps (else the saved defaults), or the distilled students at their own
        `distilled_steps` whenever the pipeline has them and the call does not say `use_distilled_prior=False`."""
        distilled = settings.use_distilled_prior is not False
        conditional_steps = settings.conditional_prior_steps
        if conditional_steps is None:
            conditional_steps = settings.prior_steps

        def pick(teacher, student, steps, default):
            if distilled and student is not None:
                return student, student.config.distilled_steps if steps is None else steps
            return teacher, default if steps is None else steps

        prior, prior_steps = pick(self.prior, self.distilled_prior, settings.prior_steps, self.default_prior_steps)
        conditional, conditional_steps = pick(
            self.conditional_prior,
            self.distilled_conditional_prior,
            conditional_steps,
            self.default_conditional_prior_steps,
        )
        return PriorPlan(
            prior=prior,
            prior_steps=prior_steps,
            conditional_prior=conditional,
            conditional_prior_steps=conditional_steps,
            scheduler=self._scheduler(settings.prior_scheduler),
            eta=settings.eta,
        )

    def _scheduler(self, solver: str | SchedulerMixin | None) -> SchedulerMixin:
        """The call's solver on the saved schedule: `None` is the saved `scheduler` itself."""
        return self.scheduler if solver is None else make_prior_scheduler(solver, self.scheduler.config)


class RegisterSampler:
    """Where a mode gets z₀ from in one call: the encoder, the unconditional prior and the conditional prior on the
    visible tokens, each counted in `nfe`."""

    def __init__(
        self,
        plan: PriorPlan,
        encoder: RegisterEncoderModel,
        text_canvas: TextCanvas,
        layout: CanvasLayout,
        nfe: NFEBreakdown,
        generator=None,
    ):
        self.plan, self.encoder, self.text_canvas, self.layout = plan, encoder, text_canvas, layout
        self.nfe, self.generator = nfe, generator

    @property
    def mask_token_id(self) -> int:
        return self.text_canvas.mask_token_id

    def encode(self, texts) -> torch.Tensor:
        """z₀ = h_φ(x₀) `(B, K, d)` for texts (one encoder call)."""
        z0 = self.encoder(**self.text_canvas.encoder_inputs(texts)).registers
        self.nfe.encoder_calls += 1
        return z0

    def unconditional(self, batch_size: int) -> torch.Tensor:
        """z₀ ~ P(z) (ConThenDisc, Alg. 2 line 3)."""
        plan = self.plan
        sampled = sample_registers(
            plan.prior, plan.scheduler, batch_size, num_inference_steps=plan.prior_steps, eta=plan.eta,
            generator=self.generator,
        )  # fmt: skip
        self.nfe.count_prior_calls(plan.prior, sampled.num_prior_calls)
        return sampled.registers

    def conditional(self, canvas: torch.Tensor) -> torch.Tensor:
        """z₀ ~ P(z | h_φ(x_t)): the conditional prior on the registers of the visible tokens (App. E)."""
        plan = self.plan
        condition = self.encoder(**self.text_canvas.visible_condition(canvas, self.layout)).registers
        self.nfe.encoder_calls += 1
        sampled = sample_registers(
            plan.conditional_prior, plan.scheduler, canvas.shape[0], num_inference_steps=plan.conditional_prior_steps,
            eta=plan.eta, generator=self.generator, encoder_hidden_states=condition,
        )  # fmt: skip
        self.nfe.count_prior_calls(
            plan.conditional_prior, sampled.num_prior_calls, condition_tokens=condition.shape[1]
        )
        return sampled.registers


__all__ = ["PriorPlan", "RegisterPriors", "RegisterSampler"]
