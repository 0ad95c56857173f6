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
from .modes import MODES

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
    num_registers_given: bool = False  # the call named `num_registers` (else the default above was filled in)
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
    heal: bool = True
    fit_context: bool = True
    kv_cache: str | None = None
    kv_cache_refresh: str = "block"
    registers: torch.Tensor | None = None
    generator: Generators = None
    callback_on_step_end: Callable | None = None
    callback_tensor_inputs: tuple[str, ...] | None = None

    @classmethod
    def from_call(cls, pipe, mode: str, **kwargs) -> "GenerationSettings":
        """The settings of `pipe(mode, **kwargs)` with every default filled in from the pipeline `pipe`; nothing is
        checked here, so a bad value reaches `check_inputs` as it was given."""
        source = MODES.get(mode)
        text = kwargs.pop("text")
        texts = (text,) if isinstance(text, str) else tuple(text) if isinstance(text, (list, tuple)) else text
        prompt, suffix = kwargs.pop("prompt"), kwargs.pop("suffix")
        num_samples = kwargs.pop("num_samples")
        prompts = suffixes = None
        if prompt is not None:
            repeat = num_samples if isinstance(num_samples, int) and not isinstance(num_samples, bool) else 1
            prompts = (prompt,) * repeat if isinstance(prompt, str) else prompt
            prompts = tuple(prompts) if isinstance(prompts, (list, tuple)) else prompts
            if not isinstance(prompt, str) and isinstance(prompts, tuple) and num_samples == 1:
                num_samples = len(prompts)
        if suffix is not None and isinstance(prompts, tuple):
            suffixes = (suffix,) * len(prompts) if isinstance(suffix, str) else suffix
            suffixes = tuple(suffixes) if isinstance(suffixes, (list, tuple)) else suffixes
        elif suffix is not None:
            suffixes = suffix
        readable = isinstance(texts, tuple) and texts and all(isinstance(t, str) for t in texts)
        reconstructs = source is not None and source.one_sample_per_text and readable
        if reconstructs:
            num_samples = len(texts)
        gen_length = kwargs.pop("gen_length")
        if gen_length is None:
            if reconstructs:
                gen_length = max(len(pipe.text_canvas.ids(t)) for t in texts) + 1
            else:
                gen_length = pipe.trained_gen_length or 128
        block_length, steps = kwargs.pop("block_length"), kwargs.pop("steps")
        registers, refresh_at, eos_fill = kwargs.pop("registers"), kwargs.pop("refresh_at"), kwargs.pop("eos_fill")
        num_registers = kwargs.pop("num_registers")
        num_registers_given = num_registers is not None
        if num_registers is None:
            sampled = getattr(source, "samples_from_prior", False) and registers is None
            num_registers = pipe.sampled_num_registers_default if sampled else pipe.num_registers_max
        inputs = kwargs.pop("callback_on_step_end_tensor_inputs")
        return cls(
            mode=mode,
            num_samples=num_samples,
            gen_length=gen_length,
            block_length=gen_length if block_length is None else block_length,
            steps=gen_length if steps is None else steps,
            num_registers=num_registers,
            num_registers_given=num_registers_given,
            refresh_at=tuple(refresh_at) if isinstance(refresh_at, (list, tuple)) else refresh_at,
            text=texts,
            prompts=prompts,
            suffixes=suffixes,
            prompt_given_per_sample=prompt is not None and not isinstance(prompt, str),
            eos_fill=prompt is not None if eos_fill is None else bool(eos_fill),
            registers=registers,
            callback_tensor_inputs=tuple(inputs) if inputs is not None else None,
            **kwargs,
        )

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
