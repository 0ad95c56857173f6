"""Every check of a pipeline call, in one place, before any compute: `check_call(pipe, settings)` is what
`CrocodilPipeline.check_inputs` runs. It only checks (it fills nothing in); each error says what was wrong and what
is allowed."""

import torch
from diffusers.utils import logging

if __package__.startswith("crocodil_hf"):  # the installed package
    from crocodil_hf.schedulers.names import REMASKING
    from crocodil_hf.utils.numbers import check_number
else:  # a pipeline's remote code (pipelines/remote_code.py): the package's files side by side in one folder
    from .names import REMASKING
    from .numbers import check_number
from .caching import KV_CACHE_REFRESH, KV_CACHES
from .components import check_texts
from .modes import MODES
from .settings import GenerationSettings

logger = logging.get_logger(__name__)


def check_call(pipe, settings: GenerationSettings) -> None:
    """Check a call's settings against the pipeline `pipe` (a `CrocodilPipeline`)."""
    s = settings
    if s.mode not in MODES:
        raise ValueError(f"unknown `mode` {s.mode!r}; expected one of {tuple(MODES)}.")
    source = MODES[s.mode]
    check_texts("text", list(s.text) if isinstance(s.text, tuple) else s.text)
    _check_prompts(pipe, s, source)
    if source.needs_text and not s.text:
        raise ValueError(f"`mode={s.mode!r}` needs `text=` (a string or a list of strings).")
    if not source.needs_text and s.text is not None:
        raise ValueError(f"`text` is only used by modes that read it, not by mode {s.mode!r}.")
    check_number("`num_samples`", s.num_samples, minimum=1, integer=True)
    check_number("`gen_length`", s.gen_length, minimum=1, integer=True)
    if s.heal not in (True, False):
        raise ValueError(f"`heal` must be True or False, got {s.heal!r}.")
    if s.fit_context not in (True, False):
        raise ValueError(f"`fit_context` must be True or False, got {s.fit_context!r}.")
    if s.kv_cache is not None and s.kv_cache not in KV_CACHES:
        raise ValueError(f"unknown `kv_cache` {s.kv_cache!r}; choose None or one of {', '.join(KV_CACHES)}.")
    if s.kv_cache_refresh not in KV_CACHE_REFRESH:
        raise ValueError(
            f"`kv_cache_refresh` must be one of {', '.join(KV_CACHE_REFRESH)}, got {s.kv_cache_refresh!r}."
        )
    length = _check_lengths(pipe, s)
    _check_schedule(s)
    check_number("`num_registers`", s.num_registers, minimum=1, maximum=pipe.num_registers_max, integer=True)
    if s.num_registers_given and not source.makes_registers and s.registers is None:
        raise ValueError(
            f"`num_registers` does not apply to mode {s.mode!r}: it shows the demasker no registers (give "
            "`registers=` to guide it, or pick a mode with registers)."
        )
    check_number("`eta`", s.eta, minimum=0)
    pipe.priors.check(s)
    if s.use_mdm_demasker not in (None, True, False):
        raise ValueError(f"`use_mdm_demasker` must be True, False or None, got {s.use_mdm_demasker!r}.")
    if s.use_mdm_demasker and pipe.mdm_demasker is None:
        raise ValueError("`use_mdm_demasker=True` but this pipeline has no `mdm_demasker` component.")
    if not isinstance(s.refresh_at, (list, tuple)) or any(
        isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1 for f in s.refresh_at
    ):
        raise ValueError(f"`refresh_at` must be a list of fractions in (0, 1), got {s.refresh_at!r}.")
    if source.needs_conditional_prior and pipe.conditional_prior is None:
        raise ValueError(f"`mode={s.mode!r}` needs a `conditional_prior` component; this pipeline has none.")
    _check_generators(s)
    _check_callback(pipe, s)
    if s.registers is not None:
        check_registers(s.registers, s.num_samples, s.num_registers, pipe.demasker.config.register_dim)
    elif source.samples_from_prior and s.num_registers > pipe.prior_num_registers:
        raise ValueError(
            f"`num_registers` {s.num_registers} is more than the {pipe.prior_num_registers} registers this "
            "pipeline's priors sample."
        )
    if pipe.trained_gen_length and length > pipe.trained_gen_length:
        what = "gen_length %d" if s.prompts is None else "prompt + span + suffix (%d tokens)"
        logger.warning(
            what + " is longer than the %d tokens this pipeline was trained on; expect degraded text.",
            length,
            pipe.trained_gen_length,
        )


def _check_prompts(pipe, s: GenerationSettings, source) -> None:
    """Prompts and suffixes: one string per sample, a suffix only with a prompt, a mode that can be prompted."""
    if s.prompts is None:
        if s.suffixes is not None:
            raise ValueError("`suffix` needs a `prompt` (use prompt='\\n' to fill the start of a file).")
        return
    check_texts("prompt", list(s.prompts) if isinstance(s.prompts, tuple) else s.prompts)
    if s.prompt_given_per_sample and s.num_samples != len(s.prompts):
        raise ValueError(f"got {len(s.prompts)} prompts for num_samples={s.num_samples}; give one per sample.")
    if s.suffixes is not None and (
        not isinstance(s.suffixes, tuple)
        or len(s.suffixes) != len(s.prompts)
        or not all(isinstance(x, str) for x in s.suffixes)
    ):
        raise ValueError(f"`suffix` must be a string or one string per prompt ({len(s.prompts)}).")
    if source.needs_text:
        raise ValueError(f"`prompt` is for the generation modes, not for mode {s.mode!r}.")
    if source.conditions_on_prompt and pipe.conditional_prior is None:
        raise ValueError(f"`mode={s.mode!r}` with a `prompt` needs a `conditional_prior` component.")


def _check_lengths(pipe, s: GenerationSettings) -> int:
    """Prompt, suffix and span fit the demasker's positions; returns the longest row's tokens after BOS."""
    limit, used = pipe.max_gen_length, 0
    if s.prompts is not None:
        ids = pipe.text_canvas.ids
        prompts, suffixes = pipe.model_context(s)
        used = max(len(ids(p)) for p in prompts) + max(len(ids(x)) for x in suffixes or [""])
        used += s.suffixes is not None  # the slot before a healed suffix
        if used + s.gen_length > limit:
            raise ValueError(
                f"prompt and suffix ({used} tokens) + `gen_length` ({s.gen_length}) exceed the {limit} positions "
                "the demasker allows; shorten the prompt or the span."
            )
    if s.gen_length > limit:
        raise ValueError(
            f"`gen_length` ({s.gen_length}) must be <= {limit}: the demasker's max_sequence_length "
            f"({pipe.demasker.config.max_sequence_length}) minus the BOS prefix."
        )
    return used + s.gen_length


def _check_schedule(s: GenerationSettings) -> None:
    """Blocks, steps and the discrete step's options."""
    if not isinstance(s.block_length, int) or s.block_length < 1 or s.gen_length % s.block_length != 0:
        raise ValueError(
            f"`block_length` ({s.block_length}) must be a positive divisor of `gen_length` ({s.gen_length})."
        )
    if not isinstance(s.steps, int) or s.steps < 1 or s.steps % s.num_blocks != 0:
        raise ValueError(
            f"`steps` ({s.steps}) must be a positive multiple of the number of blocks ({s.num_blocks} = "
            f"gen_length / block_length)."
        )
    if s.steps > s.gen_length:
        raise ValueError(f"`steps` ({s.steps}) must be <= `gen_length` ({s.gen_length}): a step commits >= 1 token.")
    check_number("`temperature`", s.temperature, minimum=0)
    check_number("`eos_penalty`", s.eos_penalty, minimum=0)
    if s.remasking not in REMASKING:
        raise ValueError(f"`remasking` must be one of {REMASKING}, got {s.remasking!r}.")
    check_number("`threshold`", s.threshold, minimum=0, maximum=1, exclusive_minimum=True, allow_none=True)


def _check_generators(s: GenerationSettings) -> None:
    generators = s.generator if isinstance(s.generator, list) else [s.generator]
    if not all(g is None or isinstance(g, torch.Generator) for g in generators):
        raise ValueError("`generator` must be a torch.Generator or a list of them (one per sample).")
    if isinstance(s.generator, list) and len(s.generator) != s.num_samples:
        raise ValueError(f"got {len(s.generator)} generators for {s.num_samples} samples; pass one per sample.")


def _check_callback(pipe, s: GenerationSettings) -> None:
    if s.callback_tensor_inputs is not None:
        unknown = set(s.callback_tensor_inputs) - set(pipe._callback_tensor_inputs)
        if unknown:
            raise ValueError(
                f"`callback_on_step_end_tensor_inputs` {sorted(unknown)} not in {pipe._callback_tensor_inputs}."
            )


def check_registers(registers, num_samples: int, num_registers: int, register_dim: int) -> None:
    """Registers passed by the caller: a finite floating tensor of shape `(num_samples, >= k, d)`."""
    d = register_dim
    if not isinstance(registers, torch.Tensor) or not registers.is_floating_point():
        kind = registers.dtype if isinstance(registers, torch.Tensor) else type(registers).__name__
        raise ValueError(f"`registers` must be a floating-point tensor, got {kind}.")
    if registers.dim() != 3 or registers.shape[0] != num_samples or registers.shape[1] < num_registers:
        raise ValueError(
            f"`registers` must have shape ({num_samples}, >= {num_registers}, {d}), got {tuple(registers.shape)}."
        )
    if registers.shape[2] != d:
        raise ValueError(f"`registers` must have width d = {d}, got {tuple(registers.shape)}.")
    if registers.is_meta:
        raise ValueError("`registers` are on the meta device (a shape without values); pass registers with values.")
    if not bool(torch.isfinite(registers).all()):
        raise ValueError("`registers` contain NaN or infinite values; expected finite registers (norm √d).")


__all__ = ["check_call", "check_registers"]
