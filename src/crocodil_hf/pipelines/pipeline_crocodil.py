"""CrocodilPipeline: ConThenDisc, ConWithinDisc, autoencoding, plain MDM and interpolation (paper §4, Alg. 2, 3, 6).

One `DiffusionPipeline` holds the guided demasker f_θ, the register encoder h_φ, the register prior g_ψ, an optional
conditional prior (ConWithinDisc), optional few-step distilled students of both priors, the sampler of the priors
(DDIM, DPM-Solver++ or UniPC), the discrete `MaskedDiffusionScheduler` and the tokenizer(s).

A call reads like a diffusers pipeline: `check_inputs` (every check, on frozen `GenerationSettings`), prepare the
canvas (`TextCanvas`), prepare z₀ (the mode of `modes.py`, drawing from a `priors.RegisterSampler`), the discrete
loop (`denoise`), decode. Every mode runs the same loop; the modes differ only in where the registers come from: none
(`"mdm"`), the encoder (`"autoencode"`), the prior (`"con_then_disc"`), or the prior refreshed from the conditional
prior on h_φ of the visible tokens (`"con_within_disc"`).
"""

import inspect
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from diffusers import DiffusionPipeline
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput, logging

if __package__.startswith("crocodil_hf"):  # the installed package
    from crocodil_hf.modeling.modeling_guided_llada import GuidedLLaDAForMaskedLM
    from crocodil_hf.modeling.modeling_register_encoder import RegisterEncoderModel, normalize_registers
    from crocodil_hf.modeling.modeling_register_prior import RegisterPriorTransformer
    from crocodil_hf.schedulers.scheduling_masked_diffusion import MaskedDiffusionScheduler
    from crocodil_hf.schedulers.scheduling_register_prior import check_sampling_scheduler
    from crocodil_hf.utils.numbers import check_number
else:  # a pipeline's remote code (pipelines/remote_code.py): the package's files side by side in one folder. diffusers copies
    # only the files this module imports, so it imports every one of them (`remote_code.pipeline_files()`)
    from .configuration_crocodil import GuidedLLaDAConfig  # noqa: F401
    from .configuration_llada import LLaDAConfig  # noqa: F401
    from .locate import locate_pipeline  # noqa: F401
    from .modeling_guided_llada import GuidedLLaDAForMaskedLM
    from .modeling_llada import LLaDAModelLM  # noqa: F401
    from .modeling_register_encoder import RegisterEncoderModel, normalize_registers
    from .modeling_register_prior import RegisterPriorTransformer
    from .names import REMASKING  # noqa: F401
    from .numbers import check_number
    from .scheduling_masked_diffusion import MaskedDiffusionScheduler
    from .scheduling_register_prior import check_sampling_scheduler
from .accounting import NFEBreakdown, forward_flops
from .caching import DemaskerCalls
from .canvas import CanvasLayout, TextCanvas
from .checks import check_call
from .components import check_components, check_texts
from .loading import PipelineLoading
from .modes import MODES
from .priors import RegisterPriors, RegisterSampler
from .settings import GenerationSettings, LoopState

logger = logging.get_logger(__name__)


@dataclass
class CrocodilPipelineOutput(BaseOutput):
    """Output of `CrocodilPipeline.__call__`.

    Args:
        texts: Decoded programs, cut at the first EOS.
        sequences: `(B, gen_length)` generated token ids (the canvas after BOS).
        registers: `(B, K, d)` the registers that guided the final steps (`None` in `"mdm"` mode).
        nfe: Function-evaluation breakdown (`NFEBreakdown.to_dict()`).
        wall_time: Seconds spent in the call.
        full_texts: With `prompt=`: prompt + generated span + suffix, per sample (`texts` holds the span alone).
    """

    texts: list[str]
    sequences: torch.LongTensor
    registers: torch.Tensor | None
    nfe: dict
    wall_time: float
    full_texts: list[str] | None = None


class CrocodilPipeline(PipelineLoading, DiffusionPipeline):
    r"""CRoCoDiL text generation with a register-guided LLaDA demasker.

    Components:
        demasker ([`GuidedLLaDAForMaskedLM`]): f_θ(x_t, z).
        encoder ([`RegisterEncoderModel`]): h_φ(x).
        prior ([`RegisterPriorTransformer`]): unconditional register prior (ConThenDisc).
        scheduler: sampler of the priors, one of `PRIOR_SOLVERS` (`DDIMScheduler`, `DPMSolverMultistepScheduler`,
            `UniPCMultistepScheduler`) with `prediction_type="sample"`; swap it like any diffusers scheduler
            (`pipe.scheduler = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config)`) and it is saved.
        tokenizer: The demasker's tokenizer (needs BOS/EOS/PAD and `mask_token_id` of the demasker).
        conditional_prior ([`RegisterPriorTransformer`], optional): conditional prior for ConWithinDisc.
        encoder_tokenizer (optional): The encoder's tokenizer when it differs from the demasker's.
        mask_scheduler ([`MaskedDiffusionScheduler`], optional): the discrete step; built from the demasker's
            `mask_token_id` when omitted.
        distilled_prior ([`RegisterPriorTransformer`], optional): few-step student of `prior`
            (`crocodil train prior-distill`); used by default when present, at its `distilled_steps`.
        distilled_conditional_prior ([`RegisterPriorTransformer`], optional): few-step student of
            `conditional_prior` (`crocodil train conditional-prior-distill`).
        mdm_demasker ([`GuidedLLaDAForMaskedLM`], optional): the plain-MDM baseline, a demasker trained as long
            without registers (`crocodil train mdm`, `crocodil assemble --mdm-demasker`); `mode="mdm"` runs it
            instead of the guided demasker whenever present, so that mode compares methods at the same training
            budget.
        default_prior_steps: Steps of the (teacher) priors when a call gives no `prior_steps` (saved in
            `model_index.json`).
        default_conditional_prior_steps: Steps of the (teacher) conditional prior when a call gives neither
            `conditional_prior_steps` nor `prior_steps` (saved; default: `default_prior_steps`). The paper samples its
            conditional prior with fewer steps than the unconditional one (32 against 128, §5, Fig. 6).
    """

    model_cpu_offload_seq = (
        "encoder->conditional_prior->distilled_conditional_prior->prior->distilled_prior->demasker->mdm_demasker"
    )
    _optional_components = [
        "conditional_prior", "encoder_tokenizer", "mask_scheduler", "distilled_prior", "distilled_conditional_prior",
        "mdm_demasker",
    ]  # fmt: skip
    _callback_tensor_inputs = ["sequences", "registers"]

    def __init__(
        self,
        demasker: GuidedLLaDAForMaskedLM,
        encoder: RegisterEncoderModel,
        prior: RegisterPriorTransformer,
        scheduler: SchedulerMixin,
        tokenizer,
        *,
        conditional_prior: RegisterPriorTransformer | None = None,
        encoder_tokenizer=None,
        mask_scheduler: MaskedDiffusionScheduler | None = None,
        distilled_prior: RegisterPriorTransformer | None = None,
        distilled_conditional_prior: RegisterPriorTransformer | None = None,
        default_prior_steps: int = 50,
        mdm_demasker: GuidedLLaDAForMaskedLM | None = None,
        default_conditional_prior_steps: int | None = None,
        default_num_registers: int | None = None,
    ):
        super().__init__()
        check_components(
            demasker, encoder, prior, conditional_prior=conditional_prior, mask_scheduler=mask_scheduler,
            distilled_prior=distilled_prior, distilled_conditional_prior=distilled_conditional_prior,
            mdm_demasker=mdm_demasker, default_num_registers=default_num_registers,
        )  # fmt: skip
        check_sampling_scheduler(scheduler, prior)
        check_number("`default_prior_steps`", default_prior_steps, minimum=1, integer=True)
        check_number(
            "`default_conditional_prior_steps`", default_conditional_prior_steps, minimum=1, integer=True,
            allow_none=True,
        )  # fmt: skip
        if mask_scheduler is None:
            mask_scheduler = MaskedDiffusionScheduler(mask_token_id=demasker.config.mask_token_id)
        self.register_modules(
            demasker=demasker,
            encoder=encoder,
            prior=prior,
            scheduler=scheduler,
            tokenizer=tokenizer,
            conditional_prior=conditional_prior,
            encoder_tokenizer=encoder_tokenizer,
            mask_scheduler=mask_scheduler,
            distilled_prior=distilled_prior,
            distilled_conditional_prior=distilled_conditional_prior,
            mdm_demasker=mdm_demasker,
        )
        self.register_to_config(
            default_prior_steps=default_prior_steps,
            default_conditional_prior_steps=default_conditional_prior_steps,
            default_num_registers=default_num_registers,
        )

    def validate(self, mode: str = "con_within_disc", **kwargs) -> GenerationSettings:
        """Check the arguments of a call `pipe(mode, **kwargs)` as the call would (`check_inputs`), without running
        it; returns its settings. Works on `from_configs` pipelines (no weights loaded)."""
        bound = inspect.signature(type(self).__call__).bind(self, mode, **kwargs)
        bound.apply_defaults()
        arguments = {k: v for k, v in bound.arguments.items() if k not in ("self", "mode", "return_dict")}
        settings = self.build_settings(mode, **arguments)
        self.check_inputs(settings)
        return settings

    # ------------------------------------------------------------------ parts and properties

    @property
    def priors(self) -> RegisterPriors:
        """The register priors as one part (teachers, distilled students, sampler, step defaults)."""
        steps = getattr(self.config, "default_conditional_prior_steps", None)
        return RegisterPriors(
            prior=self.prior,
            scheduler=self.scheduler,
            default_prior_steps=self.config.default_prior_steps,
            default_conditional_prior_steps=self.config.default_prior_steps if steps is None else steps,
            conditional_prior=self.conditional_prior,
            distilled_prior=self.distilled_prior,
            distilled_conditional_prior=self.distilled_conditional_prior,
        )

    @property
    def text_canvas(self) -> TextCanvas:
        """Tokenization around the canvas: prompts in, encoder inputs, decoded text out."""
        return TextCanvas(
            self.tokenizer,
            self.mask_token_id,
            self.demasker.config.eos_token_id,
            encoder_tokenizer=self.encoder_tokenizer,
            device=self._execution_device,
        )

    @property
    def conditional_prior_default_steps(self) -> int:
        """The teacher conditional prior's steps when a call gives none: `default_conditional_prior_steps`, else
        `default_prior_steps` (pipelines saved before the former existed have only the latter)."""
        return self.priors.default_conditional_prior_steps

    @property
    def num_registers_max(self) -> int:
        """K, the registers of the demasker."""
        return self.demasker.config.num_registers

    @property
    def prior_num_registers(self) -> int:
        """How many registers the priors sample: K, or the k of prefix priors."""
        return self.priors.num_registers

    @property
    def sampled_num_registers_default(self) -> int:
        """k shown to the demasker when a call gives none and z₀ is sampled from a prior: `default_num_registers`
        (chosen by measurement, docs/results.md "Registers for generation"), else K. Encoded or given registers use K."""
        k = getattr(self.config, "default_num_registers", None)
        return self.num_registers_max if k is None else k

    @property
    def trained_gen_length(self) -> int | None:
        """L, the generation length the pipeline was trained for (`max_length - 1` of the autoencoder stage, recorded
        as the demasker's `default_gen_length` by `crocodil assemble`); `None` when not recorded."""
        return self.demasker.config.default_gen_length

    @property
    def max_gen_length(self) -> int:
        """The longest `gen_length` the demasker accepts: its `max_sequence_length` minus the BOS prefix."""
        return int(self.demasker.config.max_sequence_length) - (self.text_canvas.bos is not None)

    @property
    def mask_token_id(self) -> int:
        return self.demasker.config.mask_token_id

    def decode_sequences(self, sequences: torch.LongTensor) -> list[str]:
        """Token ids → text, dropping everything from the first EOS on."""
        return self.text_canvas.decode(sequences)

    @torch.no_grad()
    def encode(self, texts: str | Sequence[str]) -> torch.Tensor:
        """z₀ = h_φ(x₀) for texts: `(B, K, d)` registers of norm √d (paper §4.2).

        Example:
            ```python
            >>> z = pipe.encode(["print('hi')"])
            ```
        """
        texts = [texts] if isinstance(texts, str) else texts
        check_texts("texts", texts)
        return self.encoder(**self.text_canvas.encoder_inputs(texts)).registers

    # ------------------------------------------------------------------ a call, step by step

    def build_settings(self, mode: str, **kwargs) -> GenerationSettings:
        """The call's settings with every default filled in (see `__call__`); nothing is checked here, so a bad
        value reaches `check_inputs` as it was given."""
        return GenerationSettings.from_call(self, mode, **kwargs)

    def check_inputs(self, settings: GenerationSettings) -> None:
        """Every setting of a call bounded, finite and typed, before any compute (`checks.check_call`); warns when
        `gen_length` is past the length the pipeline was trained for."""
        check_call(self, settings)

    def prepare_canvas(self, settings: GenerationSettings) -> tuple[torch.Tensor, CanvasLayout]:
        """`[BOS] [MASK × gen_length]`, or `[PAD…] [BOS] prompt [MASK × gen_length] suffix [PAD…]` with `prompt=`."""
        if settings.prompts is None:
            return self.text_canvas.blank(settings.num_samples, settings.gen_length)
        prompts, suffixes = self.model_context(settings)
        return self.text_canvas.prompted(prompts, suffixes, settings.gen_length, heal=settings.heal)

    def model_context(self, settings: GenerationSettings) -> tuple[list[str], list[str] | None]:
        """The prompts and suffixes the model sees: with `fit_context`, the lines nearest the span that fit the
        length the pipeline was trained on (`TextCanvas.fit_context`); else all of them."""
        prompts, suffixes = list(settings.prompts), settings.suffixes
        trained = self.trained_gen_length
        if not settings.fit_context or not trained:
            return prompts, list(suffixes) if suffixes is not None else None
        budget = trained - settings.gen_length - (suffixes is not None)  # the slot before a healed suffix
        fitted = [
            self.text_canvas.fit_context(p, x, budget) for p, x in zip(prompts, suffixes or [None] * len(prompts))
        ]
        return [p for p, _ in fitted], [x for _, x in fitted] if suffixes is not None else None

    def unguided_demasker(self, settings: GenerationSettings) -> GuidedLLaDAForMaskedLM:
        """The model of the unguided (`mdm`) steps: the `mdm_demasker` baseline when the pipeline has one, unless
        `use_mdm_demasker=False`; else the guided demasker without registers."""
        baseline = self.mdm_demasker is not None and settings.use_mdm_demasker is not False
        return self.mdm_demasker if baseline else self.demasker

    def denoise(
        self, settings: GenerationSettings, state: LoopState, sampler: RegisterSampler, layout: CanvasLayout
    ) -> None:
        """Semi-autoregressive blocks; within a block, one demasker call per timestep of the mask scheduler until the
        block is unmasked (Alg. 2/3/6 "x̂₀ ~ f_θ(x_t, t, z₀); x_t = Forward(x̂₀, t)"). Before each call the mode may
        renew z₀ (ConWithinDisc's refresh points). With `threshold` the number of calls adapts (each commits >= 1
        token per row): the scheduler is given `block_length` timesteps, an upper bound."""
        source = MODES[settings.mode]
        source.start(settings, state)
        unguided = self.unguided_demasker(settings)
        calls = DemaskerCalls(settings.kv_cache, settings.kv_cache_refresh, offset=layout.offset)
        total = settings.steps if settings.threshold is None else settings.gen_length
        with self.progress_bar(total=total) as progress:
            for block in range(settings.num_blocks):
                lo = layout.offset + block * settings.block_length
                hi = lo + settings.block_length
                if block == settings.num_blocks - 1 and layout.healed_end:
                    hi += 1  # the slot before a healed suffix is committed with the last block
                self.mask_scheduler.set_timesteps(
                    settings.steps_per_block,
                    block_mask=state.canvas[:, lo:hi] == self.mask_token_id,
                    device=state.canvas.device,
                )
                for step, _ in enumerate(self.mask_scheduler.timesteps):
                    active = (state.canvas[:, lo:hi] == self.mask_token_id).any(dim=1)
                    if not bool(active.any()):
                        break
                    if state.registers is not None:
                        state.registers = source.refresh(sampler, settings, state)
                    logits = self._demasker_logits(
                        state, settings, layout, block=(lo, hi), active=active, calls=calls, unguided=unguided
                    )
                    self._step(logits, step, state, settings, layout, block=(lo, hi), active=active)
                    self._callback(settings, state, layout, block)
                    progress.update()
        state.nfe.demasker_flops = calls.flops

    def _demasker_logits(self, state, settings, layout, *, block, active, calls, unguided) -> torch.Tensor:
        """`(N, V)` logits of the N still-masked positions of the current block in active rows: the output head (and
        the scheduler's softmax) skip committed positions, on average half of a block over a trajectory. `calls`
        runs the call (`DemaskerCalls`: with `kv_cache`, on the block's positions against cached keys/values)."""
        lo, hi = block
        canvas = state.canvas
        keep = torch.zeros_like(canvas, dtype=torch.bool)
        keep[:, lo:hi] = (canvas[:, lo:hi] == self.mask_token_id) & active[:, None]
        padded = layout.demasker_inputs()
        state.nfe.demasker_calls += 1
        if state.registers is None:
            logits = calls(unguided, canvas, keep, block=block, padded=padded)
        else:
            registers = state.registers[:, : settings.num_registers].to(self.demasker.dtype)
            logits = calls(self.demasker, canvas, keep, block=block, registers=registers, padded=padded)
        return self._constrained(logits, keep, layout)

    @staticmethod
    def _constrained(logits: torch.Tensor, keep: torch.Tensor, layout: CanvasLayout) -> torch.Tensor:
        """Healed boundaries: at the span's first position and the slot before the suffix only the tokens that carry
        the healed text may be sampled (`TextCanvas.heal`); `logits` are those of `keep`'s positions, row-major."""
        if not layout.allowed:
            return logits
        index = keep.flatten().cumsum(0) - 1  # canvas position -> its row of `logits`
        for (row, column), allowed in layout.allowed.items():
            if keep[row, column]:
                i = int(index[row * keep.shape[1] + column])
                logits[i] = logits[i].masked_fill(~allowed, float("-inf"))
        return logits

    def _step(self, logits, step, state, settings, layout, *, block, active) -> None:
        """Commit this step's tokens of the block (the mask scheduler), then EOS after a row's first EOS."""
        lo, hi = block
        out = self.mask_scheduler.step(
            logits, step, state.canvas[:, lo:hi], temperature=settings.temperature, remasking=settings.remasking,
            threshold=settings.threshold, generator=settings.generator, active=active,
            eos_penalty=settings.eos_penalty, eos_token_id=self.text_canvas.eos,
        )  # fmt: skip
        canvas = state.canvas.clone()
        canvas[:, lo:hi] = out.prev_sample
        if settings.eos_fill:
            canvas = self.text_canvas.fill_after_eos(canvas, layout)
        state.canvas = canvas
        state.calls += 1

    def _callback(self, settings, state, layout, block) -> None:
        """`callback_on_step_end(pipe, step, block, {"sequences", "registers"})`; it may replace either."""
        callback = settings.callback_on_step_end
        if callback is None:
            return
        names = settings.callback_tensor_inputs or tuple(self._callback_tensor_inputs)
        tensors = {"sequences": state.canvas[:, layout.span], "registers": state.registers}
        updates = callback(self, state.calls, block, {k: tensors[k] for k in names}) or {}
        if "sequences" in updates:
            state.canvas = state.canvas.clone()
            state.canvas[:, layout.span] = updates["sequences"].to(state.canvas)
        if "registers" in updates:
            state.registers = updates["registers"]

    def account(self, settings: GenerationSettings, state: LoopState) -> NFEBreakdown:
        """Fill in `total` and `prior_total`: prior and encoder calls in demasker-forward equivalents by FLOPs."""
        nfe, canvas_len = state.nfe, state.canvas.shape[1]
        num_registers = settings.num_registers if state.registers is not None else None
        prefix = (num_registers + 2) if num_registers else 0
        demasker = forward_flops(self.demasker, canvas_len + prefix)
        unguided = self.unguided_demasker(settings)
        if num_registers is None and unguided is not self.demasker:  # the mdm baseline, maybe larger
            nfe.total = nfe.demasker_calls * forward_flops(unguided, canvas_len) / demasker
            return nfe
        encoder = forward_flops(self.encoder, canvas_len + self.encoder.config.num_registers - 1)
        nfe.prior_total = nfe.prior_flops / demasker
        nfe.total = nfe.demasker_calls + nfe.prior_total + nfe.encoder_calls * encoder / demasker
        return nfe

    # ------------------------------------------------------------------ main call

    @torch.no_grad()
    def __call__(
        self,
        mode: str = "con_within_disc",
        *,
        text: str | list[str] | None = None,
        num_samples: int = 1,
        gen_length: int | None = None,
        block_length: int | None = None,
        steps: int | None = None,
        temperature: float = 0.0,
        remasking: str = "low_confidence",
        threshold: float | None = None,
        num_registers: int | None = None,
        prior_steps: int | None = None,
        conditional_prior_steps: int | None = None,
        eta: float = 0.0,
        refresh_at: Sequence[float] = (0.5,),
        registers: torch.Tensor | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        return_dict: bool = True,
        callback_on_step_end: Callable | None = None,
        callback_on_step_end_tensor_inputs: list[str] | None = None,
        prompt: str | list[str] | None = None,
        suffix: str | list[str] | None = None,
        eos_fill: bool | None = None,
        eos_penalty: float = 0.0,
        prior_scheduler: str | SchedulerMixin | None = None,
        use_distilled_prior: bool | None = None,
        use_mdm_demasker: bool | None = None,
        heal: bool = True,
        fit_context: bool = True,
        kv_cache: str | None = None,
        kv_cache_refresh: str = "block",
    ) -> "CrocodilPipelineOutput | tuple":
        r"""Generate (or reconstruct) programs.

        Args:
            mode: `"con_within_disc"` (Alg. 3 as run in the paper), `"con_then_disc"` (Alg. 2), `"autoencode"`
                (Alg. 6, needs `text`), or `"mdm"` (the same demasker with no guidance, the speed baseline).
            text: Program(s) to autoencode.
            num_samples: Number of programs to generate (ignored by `"autoencode"`, which uses `len(text)`).
            gen_length: Generated tokens after BOS (default 128; for `"autoencode"` the longest input + EOS).
            block_length: Semi-autoregressive block length (default `gen_length`: one block, as in the paper).
            steps: Demasker calls over the whole sequence (default `gen_length`); must divide into blocks.
            temperature: Gumbel-max temperature in float64 (0 = greedy).
            remasking: `"low_confidence"` or `"random"`.
            threshold: Confidence threshold in (0, 1] for Fast-dLLM-style parallel decoding (adaptive calls).
            num_registers: k ≤ K registers shown to the demasker (nested dropout trains every prefix). Default: the
                pipeline's `default_num_registers` when z₀ is sampled from a prior (`"con_then_disc"`,
                `"con_within_disc"` without `registers=`), K when it is encoded (`"autoencode"`) or given.
            prior_steps: Sampling steps of the unconditional prior (default: the distilled prior's `distilled_steps`
                when it is used, else the pipeline's `default_prior_steps`).
            conditional_prior_steps: Steps of the conditional prior (default `prior_steps` when given, else the
                distilled student's `distilled_steps` when it is used, else the pipeline's
                `default_conditional_prior_steps`).
            eta: DDIM η of the priors (DDIM only).
            refresh_at: Fractions of the MDM trajectory at which ConWithinDisc resamples z₀ from the conditional prior
                on h_φ of the visible tokens (paper: `[0.5]`).
            registers: Use these registers `(B, ≥k, d)` instead of sampling/encoding them (e.g. `decode`).
            generator: A generator, or one per sample (each sample is then reproducible alone or in a batch).
            return_dict: Return a `CrocodilPipelineOutput` (else a tuple).
            callback_on_step_end: `fn(pipe, step, block, callback_kwargs) -> dict` called after every demasker step;
                it may replace `"sequences"` or `"registers"`.
            callback_on_step_end_tensor_inputs: Names passed in `callback_kwargs` (subset of
                `_callback_tensor_inputs`).
            prompt: Prompted completion (paper App. H): the canvas is `[BOS] prompt [MASK × gen_length] suffix`;
                prompt and suffix never change and `texts` holds the generated span (`full_texts` the whole
                program). A string, or one per sample. The prior-based modes draw z₀ from the conditional prior on
                h_φ of the prompt (and suffix). Prompts of different lengths are padded so that each sample equals
                its result alone.
            suffix: Fill-in-the-middle: text after the span (needs `prompt`, which may be a single newline).
            eos_fill: After the first committed EOS of a sample, fill the rest of its span with EOS (nothing is
                written after the end; the call stops once every sample has ended). Default: on with `prompt`.
            eos_penalty: Lower the EOS logit by this much at every step (its probability × e^−penalty), against
                the degenerate greedy output of a weak demasker that is all EOS (an empty program). 0 = off.
            prior_scheduler: The priors' sampler for this call: a `PRIOR_SOLVERS` name (`"ddim"`, `"dpmsolver++"`,
                `"unipc"`, built on `self.scheduler`'s schedule) or a scheduler; default `self.scheduler`.
            use_distilled_prior: Sample z₀ with the distilled students (`distilled_prior`,
                `distilled_conditional_prior`) instead of their teachers; default: whenever the pipeline has them.
            use_mdm_demasker: In `"mdm"` mode, run the `mdm_demasker` baseline (trained without registers) instead
                of the guided demasker without registers; default: whenever the pipeline has one.
            heal: With `prompt=`: heal the token boundaries of prompt and suffix cut anywhere (at a line start,
                mid-word), so the model sees the tokens the whole program would have (`TextCanvas.heal`); `texts`
                and `full_texts` are unchanged in meaning (span; prompt + span + suffix). `False`: tokenize prompt
                and suffix as given.
            fit_context: With `prompt=`, when prompt + span + suffix is longer than the length the pipeline was
                trained on: show the model only the lines nearest the span that fit (`TextCanvas.fit_context`), as
                it saw programs in training; `full_texts` still holds the whole prompt and suffix. `False`: the
                whole prompt and suffix (a warning says when they are longer than the trained length).
            kv_cache: An approximate key/value cache within semi-autoregressive blocks (Fast-dLLM; `caching.py`):
                `"dual"` runs each block's later calls on the block's positions only, reading every other
                position's keys/values from the block's first call; `"prefix"` caches only what lies before the
                block. Refilled at each block, whenever z₀ changes and whenever a position outside the block changed.
                Faster with several blocks (`block_length` < `gen_length`) or a long prompt/suffix; tokens may
                differ slightly from `None` (exact: recompute every position at every call).
            kv_cache_refresh: `"block"` (default), or `"step"`: refill the cache before every call, then compute the
                window from it — slower than no cache, but the same tokens: a check that the cache is read right.

        Examples:
            ```python
            >>> from crocodil_hf import CrocodilPipeline
            >>> pipe = CrocodilPipeline.from_pretrained("crocodil-python-tiny")
            >>> out = pipe(mode="con_within_disc", num_samples=4, gen_length=64, steps=16)
            >>> print(out.texts[0], out.nfe)
            >>> rec = pipe(mode="autoencode", text=["def add(a, b):\n    return a + b\n"], steps=16)
            ```
        """
        start = time.perf_counter()
        # 1. Settings, checked once
        settings = self.build_settings(
            mode, text=text, num_samples=num_samples, gen_length=gen_length, block_length=block_length, steps=steps,
            temperature=temperature, remasking=remasking, threshold=threshold, num_registers=num_registers,
            prior_steps=prior_steps, conditional_prior_steps=conditional_prior_steps, eta=eta, refresh_at=refresh_at,
            registers=registers, generator=generator, callback_on_step_end=callback_on_step_end,
            callback_on_step_end_tensor_inputs=callback_on_step_end_tensor_inputs, prompt=prompt, suffix=suffix,
            eos_fill=eos_fill, eos_penalty=eos_penalty, prior_scheduler=prior_scheduler,
            use_distilled_prior=use_distilled_prior, use_mdm_demasker=use_mdm_demasker, heal=heal,
            fit_context=fit_context, kv_cache=kv_cache, kv_cache_refresh=kv_cache_refresh,
        )  # fmt: skip
        self.check_inputs(settings)

        # 2. Prepare the canvas
        canvas, layout = self.prepare_canvas(settings)
        state = LoopState(canvas=canvas, refresh_steps=set(), refresh_fractions=[])

        # 3. Prepare the registers z₀: the mode says where they come from (`modes.py`)
        sampler = RegisterSampler(
            self.priors.plan(settings), self.encoder, self.text_canvas, layout, state.nfe, generator=generator
        )
        if registers is not None:
            state.registers = registers.to(canvas.device)
        else:
            state.registers = MODES[mode].initial_registers(sampler, settings, state)

        # 4. The discrete denoising loop
        self.denoise(settings, state, sampler, layout)

        # 5. Decode and account
        sequences = state.canvas[:, layout.span]
        texts = self.decode_sequences(sequences)
        full_texts = None
        if settings.prompts is not None:
            texts = self.text_canvas.healed_texts(state.canvas, layout, texts)
            suffixes = settings.suffixes or ("",) * len(texts)
            full_texts = [p + t + s for p, t, s in zip(settings.prompts, texts, suffixes)]
        nfe = self.account(settings, state)
        self.maybe_free_model_hooks()
        out = CrocodilPipelineOutput(
            texts=texts,
            sequences=sequences,
            registers=state.registers,
            nfe=nfe.to_dict(),
            wall_time=time.perf_counter() - start,
            full_texts=full_texts,
        )
        return out if return_dict else out.to_tuple()

    # ------------------------------------------------------------------ register-space utilities

    @torch.no_grad()
    def decode(self, registers: torch.Tensor, **kwargs) -> CrocodilPipelineOutput:
        """Decode register banks `(B, K', d)` to text with the guided MDM (the decoder half of Alg. 6).

        Keyword arguments are those of `__call__` (`gen_length`, `steps`, `block_length`, `num_registers`, ...).
        """
        if not isinstance(registers, torch.Tensor) or registers.dim() != 3:
            raise ValueError("`registers` must be a `(B, K', d)` tensor of register banks.")
        kwargs.setdefault("num_registers", min(registers.shape[1], self.num_registers_max))
        return self(mode="con_then_disc", registers=registers, num_samples=registers.shape[0], **kwargs)

    @torch.no_grad()
    def interpolate(
        self, text_a: str, text_b: str, alphas: Sequence[float] = (0.0, 0.25, 0.5, 0.75, 1.0), **kwargs
    ) -> list[str]:
        """Decode z_α = (1−α)·h_φ(a) + α·h_φ(b), renormalised per register, for each α (App. D, Fig. 8)."""
        if not alphas or not all(isinstance(a, (int, float)) and math.isfinite(a) for a in alphas):
            raise ValueError(f"`alphas` must be a non-empty list of finite numbers, got {list(alphas)}.")
        z = self.encode([text_a, text_b])
        mixed = torch.stack([(1 - a) * z[0] + a * z[1] for a in alphas])
        if "gen_length" not in kwargs:
            lengths = [len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in (text_a, text_b)]
            kwargs["gen_length"] = max(lengths) + 1
        return self.decode(normalize_registers(mixed), **kwargs).texts


__all__ = ["CrocodilPipeline", "CrocodilPipelineOutput"]
