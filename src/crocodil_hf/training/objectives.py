"""Training objectives as `nn.Module`s whose `forward` returns the loss.

Each stage trains exactly one of these. Because the loss is computed inside `forward`, the wrapper that accelerate puts
around the module (DDP, FSDP2, DeepSpeed) sees every parameter in forward and backward: gradients are all-reduced
(DDP), parameters gathered and re-sharded (FSDP2, ZeRO-3) as they must be. Nothing outside reads `.module` or
`.config` of the wrapped object.

`row_seeds` (one int64 per example, made by `CrocodilTrainer`) seed the per-example noise (`RowGenerators`); without
them the global RNG is used.

Example:
    ```python
    >>> objective = MaskedDiffusionObjective(demasker)
    >>> objective(input_ids=batch)["loss"].backward()
    ```
"""

import torch
from torch import nn
from transformers import PreTrainedModel

from ..modeling.modeling_register_encoder import RegisterEncoderModel
from ..modeling.modeling_register_prior import RegisterPriorTransformer
from ..schedulers.scheduling_register_prior import (
    check_sampling_scheduler,
    make_noise_scheduler,
    offset_grid,
    sample_registers,
)
from .losses import (
    RowGenerators,
    autoencoder_loss,
    draw_spans,
    forward_mask,
    integers,
    mdm_loss,
    normal,
    pad_spans,
    prompt_layout,
    span_pad_token,
    uniform,
)
from .prior_loss import register_prior_loss, sample_base_timesteps


def _generators(row_seeds: torch.Tensor | None) -> RowGenerators | None:
    return RowGenerators.from_seeds(row_seeds) if row_seeds is not None else None


class TrainingObjective(nn.Module):
    """Base: checkpointing switches and FSDP wrap units gathered from the trained components."""

    # Whether some trainable parameter gets no gradient (DDP must then search for unused parameters every step).
    has_unused_parameters = False

    def components(self) -> dict[str, nn.Module]:
        """The trained models by name (their weights are saved under `<name>.` in the objective's state dict)."""
        raise NotImplementedError

    @property
    def _no_split_modules(self) -> list[str]:
        """Union of the components' `_no_split_modules`: accelerate's FSDP auto-wrap policy reads this attribute."""
        names: list[str] = []
        for module in self.modules():
            if module is self or isinstance(module, TrainingObjective):
                continue
            for name in getattr(module, "_no_split_modules", None) or []:
                if name not in names:
                    names.append(name)
        return names

    def _checkpointable(self):
        for component in self.components().values():
            base = component.get_base_model() if hasattr(component, "get_base_model") else component
            if any(p.requires_grad for p in base.parameters()):
                yield base

    def activation_checkpointing_enable(
        self, activation_checkpointing_kwargs=None, every_n_layers: int = 1, offload: bool = False
    ) -> None:
        """What `Trainer` calls for `gradient_checkpointing: true`: every trained component checkpoints its blocks
        (transformers models with transformers' options, the diffusers prior with its own switch)."""
        for model in self._checkpointable():
            if isinstance(model, PreTrainedModel):
                model.activation_checkpointing_enable(
                    activation_checkpointing_kwargs=activation_checkpointing_kwargs or {"use_reentrant": False},
                    every_n_layers=every_n_layers,
                    offload=offload,
                )
                if hasattr(model, "enable_input_require_grads") and not any(
                    p.requires_grad for p in model.get_input_embeddings().parameters()
                ):
                    model.enable_input_require_grads()  # LoRA: a frozen embedding must still feed a checkpoint
            else:
                model.enable_gradient_checkpointing()

    def activation_checkpointing_disable(self) -> None:
        for model in self._checkpointable():
            if isinstance(model, PreTrainedModel):
                model.activation_checkpointing_disable()
            else:
                model.disable_gradient_checkpointing()

    gradient_checkpointing_enable = activation_checkpointing_enable
    gradient_checkpointing_disable = activation_checkpointing_disable


class MaskedDiffusionObjective(TrainingObjective):
    """Stage 0, base masked diffusion: LLaDA's loss (Eq. 5 without z; t ~ U[0, 1], 1/t weighting); with
    `prompt_prob` > 0, prompt-aware (`prompt_spans`), as LLaDA's SFT keeps the prompt unmasked."""

    def __init__(self, demasker: nn.Module, prompt_prob: float = 0.0, suffix_prob: float = 0.0, span_pad: int = 0):
        super().__init__()
        self.demasker = demasker
        self.mask_token_id = demasker.config.mask_token_id
        self.prompt_prob, self.suffix_prob, self.span_pad = prompt_prob, suffix_prob, span_pad

    def components(self):
        return {"demasker": self.demasker}

    def forward(self, input_ids, encoder_attention_mask=None, row_seeds=None) -> dict[str, torch.Tensor]:
        generator = _generators(row_seeds)
        eos = self.demasker.config.eos_token_id
        input_ids, maskable = prompt_layout(
            input_ids, eos, self.prompt_prob, self.suffix_prob, generator,
            span_pad=self.span_pad, pad_token_id=span_pad_token(self.demasker),
        )  # fmt: skip
        x_t, masked, p_mask = forward_mask(input_ids, self.mask_token_id, generator=generator, maskable=maskable)
        logits = self.demasker(input_ids=x_t).logits
        return {"loss": mdm_loss(logits, input_ids, masked, p_mask)}


class AutoencoderObjective(TrainingObjective):
    """Stage 1, encoder h_φ + guided demasker f_θ (Alg. 1, App. C).

    Eq. 5 conditioned on z₀ + e (CS = `register_noise_cs`), nested dropout over k, all-mask rows with probability
    `all_mask_prob`; `clean=True` (the trainer's clean warm-up) gives the dense clean signal instead: x_t fully
    masked, no register noise, every k = K. `prompt_prob` / `suffix_prob`: prompt-aware training (App. H), x_t keeps
    a prompt (and suffix) of the program visible (`prompt_spans`); the clean warm-up ignores them.
    """

    # A backbone's parts the registers never read: a LLaDA backbone's output head, a BERT pooler.
    has_unused_parameters = True

    def __init__(
        self,
        encoder: RegisterEncoderModel,
        demasker: nn.Module,
        *,
        register_noise_cs: float = 0.8,
        all_mask_prob: float = 0.25,
        nested_dropout: bool = True,
        prompt_prob: float = 0.0,
        suffix_prob: float = 0.0,
        span_pad: int = 0,
    ):
        super().__init__()
        self.encoder = encoder
        self.demasker = demasker
        self.span_pad = span_pad
        self.register_noise_cs = register_noise_cs
        self.all_mask_prob = all_mask_prob
        self.nested_dropout = nested_dropout
        self.prompt_prob, self.suffix_prob = prompt_prob, suffix_prob

    def components(self):
        return {"encoder": self.encoder, "demasker": self.demasker}

    def forward(
        self,
        input_ids,
        encoder_attention_mask=None,
        encoder_input_ids=None,
        row_seeds=None,
        clean: bool = False,
    ) -> dict[str, torch.Tensor]:
        encoder_inputs = None
        if encoder_input_ids is not None:
            encoder_inputs = {"input_ids": encoder_input_ids, "attention_mask": encoder_attention_mask}
            encoder_attention_mask = None
        loss, _ = autoencoder_loss(
            self.encoder,
            self.demasker,
            input_ids,
            attention_mask=encoder_attention_mask,
            encoder_inputs=encoder_inputs,
            cosine_similarity=1.0 if clean else self.register_noise_cs,
            all_mask_prob=1.0 if clean else self.all_mask_prob,
            nested=not clean and self.nested_dropout,
            generator=_generators(row_seeds),
            prompt_prob=0.0 if clean else self.prompt_prob,
            suffix_prob=self.suffix_prob,
            span_pad=self.span_pad,
        )
        return {"loss": loss}


class RegisterPriorObjective(TrainingObjective):
    """Stages 2 and 3, the register prior: L_cont = E‖g_ψ(z_t, t [| c]) − z₀‖² with block-wise offsets (Alg. 5).

    With an `encoder` (the conditional prior, Alg. 4 as in App. E) the condition is h_φ(x⁽ʳ⁾): the frozen encoder in
    visible-only mode on x₀ with a fraction r ~ U[0, 1] of its tokens hidden, read through cross-attention. With
    `prompt_prob` > 0 (prompt-aware, App. H), that fraction of examples is conditioned on a visible prompt (and,
    with `suffix_prob`, a suffix) instead: h_φ of the program with a contiguous span hidden (`prompt_spans`), as
    `pipe(prompt=, suffix=)` conditions.
    """

    def __init__(
        self,
        prior: RegisterPriorTransformer,
        encoder: RegisterEncoderModel | None = None,
        prompt_prob: float = 0.0,
        suffix_prob: float = 0.0,
        span_pad: int = 0,
    ):
        super().__init__()
        self.prior = prior
        self.encoder = encoder.eval().requires_grad_(False) if encoder is not None else None
        self.prompt_prob, self.suffix_prob, self.span_pad = prompt_prob, suffix_prob, span_pad
        self.noise_scheduler = make_noise_scheduler(prior.config.num_train_timesteps)

    def components(self):
        return {"prior": self.prior}

    def train(self, mode: bool = True):
        super().train(mode)
        if self.encoder is not None:
            self.encoder.eval()  # frozen: no dropout
        return self

    def condition(self, input_ids, valid, generator) -> torch.Tensor:
        batch_size = input_ids.shape[0]
        r = uniform((batch_size, 1), generator, input_ids.device)
        hidden = (uniform(tuple(input_ids.shape), generator, input_ids.device) < r) & valid
        if self.prompt_prob > 0:
            # prompted rows: the span after the prompt (before the suffix) is hidden, the rest of the program visible
            lengths = valid.sum(dim=1)  # the collator's mask: 1 up to and including the first EOS
            draw = draw_spans(lengths, self.prompt_prob, self.suffix_prob, generator)
            if self.span_pad > 0:  # hidden span + padding, as the pipeline hides its whole `gen_length` slot
                end = draw.end
                draw, pads = draw.padded(self.span_pad, generator)
                input_ids = pad_spans(input_ids, end, pads, 0)
                valid = pad_spans(valid.long(), end, pads, 1).bool()
                hidden = pad_spans(hidden.long(), end, pads, 1).bool()
            spans = draw.mask(valid.shape[1])
            hidden = torch.where(draw.prompted[:, None], spans & valid, hidden)
        with torch.no_grad():
            return self.encoder(
                input_ids=input_ids, attention_mask=valid.long(), visible_mask=(~hidden).long()
            ).registers

    def batch_condition(self, input_ids, encoder_attention_mask, generator) -> torch.Tensor | None:
        """The condition of a batch: None for the unconditional prior, else `condition` of its programs."""
        if self.encoder is None:
            return None
        if input_ids is None:
            raise ValueError("the conditional prior needs the programs' `input_ids` next to their registers.")
        return self.condition(input_ids, encoder_attention_mask.bool(), generator)

    def forward(
        self, registers, input_ids=None, encoder_attention_mask=None, row_seeds=None
    ) -> dict[str, torch.Tensor]:
        generator = _generators(row_seeds)
        condition = self.batch_condition(input_ids, encoder_attention_mask, generator)
        registers = registers[:, : self.prior.config.num_registers]  # a prefix prior models the first k of K
        loss = register_prior_loss(
            self.prior, self.noise_scheduler, registers, encoder_hidden_states=condition, generator=generator
        )
        return {"loss": loss}


class PriorDistillObjective(RegisterPriorObjective):
    """`crocodil train prior-distill` / `conditional-prior-distill`: a few-step student of a trained register prior.

    Reflow-style distillation on teacher couplings (Luhman & Luhman 2021; Liu et al. 2023): for noise ε the frozen
    teacher samples z₀* = Φ(ε [| c]) with `teacher_steps` steps of `teacher_scheduler` (its deterministic ODE map).
    Every point of the line z_t = √ᾱ_t z₀* + √(1−ᾱ_t) ε̂, ε̂ = (ε − √ᾱ_{T−1} z₀*)/√(1−ᾱ_{T−1}), has z_T ≈ ε and
    target z₀*; the student g(z_t, t [| c]) is trained on it with the prior's own x₀ loss, block offsets included.
    A sampler whose x₀-predictions are exactly z₀* stays on that line (DDIM and DPM-Solver++ both), so one step from
    pure noise already lands on the teacher's sample. Half of the base times are drawn from the student's own
    `distilled_steps` grid (the points it is evaluated at), half uniformly (so it stays usable at other step counts).
    The condition of a conditional prior is drawn as in `RegisterPriorObjective`.
    """

    def __init__(
        self,
        student: RegisterPriorTransformer,
        teacher: RegisterPriorTransformer,
        teacher_scheduler,
        teacher_steps: int,
        encoder: RegisterEncoderModel | None = None,
        grid_fraction: float = 0.5,
    ):
        super().__init__(student, encoder)
        check_sampling_scheduler(teacher_scheduler, teacher)
        if student.config.distilled_steps is None:
            raise ValueError(
                "the student prior needs `distilled_steps` in its config (the steps it is distilled for)."
            )
        self.teacher = teacher.eval().requires_grad_(False)
        self.teacher_scheduler, self.teacher_steps, self.grid_fraction = (
            teacher_scheduler,
            teacher_steps,
            grid_fraction,
        )
        grid, _ = offset_grid(teacher_scheduler, student.config.distilled_steps, student, "cpu")
        self.register_buffer("student_grid", torch.tensor(grid, dtype=torch.long), persistent=False)

    def train(self, mode: bool = True):
        super().train(mode)
        self.teacher.eval()
        return self

    def forward(
        self, registers, input_ids=None, encoder_attention_mask=None, row_seeds=None
    ) -> dict[str, torch.Tensor]:
        generator = _generators(row_seeds)
        condition = self.batch_condition(input_ids, encoder_attention_mask, generator)
        batch_size, device = registers.shape[0], registers.device
        shape = (batch_size, self.prior.config.num_registers, registers.shape[2])  # k of K for a prefix prior
        noise = normal(shape, generator, device).to(registers.dtype)
        with torch.no_grad():
            target = sample_registers(
                self.teacher, self.teacher_scheduler, batch_size, num_inference_steps=self.teacher_steps,
                latents=noise, encoder_hidden_states=condition, renormalize=False,
            ).registers  # fmt: skip
        alpha_end = self.noise_scheduler.alphas_cumprod[-1].to(device)
        line_noise = (noise - alpha_end**0.5 * target) / (1 - alpha_end) ** 0.5
        uniform_times = sample_base_timesteps(self.prior, batch_size, generator=generator, device=device)
        grid = self.student_grid.to(device)
        grid_times = grid[integers(0, len(grid), (batch_size,), generator, device)]
        on_grid = uniform((batch_size,), generator, device) < self.grid_fraction
        loss = register_prior_loss(
            self.prior, self.noise_scheduler, target, encoder_hidden_states=condition, generator=generator,
            noise=line_noise, base_timesteps=torch.where(on_grid, grid_times, uniform_times),
        )  # fmt: skip
        return {"loss": loss}


__all__ = [
    "AutoencoderObjective",
    "MaskedDiffusionObjective",
    "PriorDistillObjective",
    "RegisterPriorObjective",
    "TrainingObjective",
]
