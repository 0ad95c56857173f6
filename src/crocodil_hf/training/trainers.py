"""`transformers.Trainer` subclasses for the four CRoCoDiL stages, and their data collators.

Each trainer only defines its loss (named after the paper); logging, checkpointing, resume, distributed training
(DDP / FSDP / DeepSpeed through accelerate) and progress bars are the Trainer's own.
"""

import torch
from torch import nn
from transformers import Trainer

from ..modeling.modeling_register_encoder import RegisterEncoderModel
from ..pipelines.prior_sampling import make_noise_scheduler
from .losses import autoencoder_loss, forward_mask, mdm_loss
from .prior_loss import register_prior_loss


class ProgramCollator:
    """Pad `[BOS] program [EOS]` to `max_length` with EOS, as LLaDA pads (the padding EOS are targets too).

    Returns `input_ids` `(B, max_length)` and `encoder_attention_mask` (1 up to and including the first EOS). With an
    `encoder_tokenizer`, also `encoder_input_ids` / `encoder_attention_mask` from the `text` column.
    """

    def __init__(self, eos_token_id: int, max_length: int, encoder_tokenizer=None, encoder_max_length: int = 512):
        self.eos_token_id = eos_token_id
        self.max_length = max_length
        self.encoder_tokenizer = encoder_tokenizer
        self.encoder_max_length = encoder_max_length

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        batch = torch.full((len(features), self.max_length), self.eos_token_id, dtype=torch.long)
        enc_mask = torch.zeros((len(features), self.max_length), dtype=torch.long)
        for i, feature in enumerate(features):
            ids = list(feature["input_ids"])[: self.max_length]
            batch[i, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            enc_mask[i, : len(ids)] = 1
        out = {"input_ids": batch, "encoder_attention_mask": enc_mask}
        if self.encoder_tokenizer is not None:
            encoded = self.encoder_tokenizer(
                [f["text"] for f in features],
                padding=True,
                truncation=True,
                max_length=self.encoder_max_length,
                return_tensors="pt",
            )
            out["encoder_input_ids"] = encoded["input_ids"]
            out["encoder_attention_mask"] = encoded["attention_mask"]
        return out


class RegisterCollator:
    """Stack `registers` `(K, d)`; keep padded program ids for the conditional prior's h_φ(x⁽ʳ⁾)."""

    def __init__(self, eos_token_id: int | None = None, max_length: int | None = None):
        self.programs = ProgramCollator(eos_token_id, max_length) if max_length is not None else None

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        out = {"registers": torch.stack([torch.as_tensor(f["registers"], dtype=torch.float32) for f in features])}
        if self.programs is not None and "input_ids" in features[0]:
            programs = self.programs([{"input_ids": f["input_ids"]} for f in features])
            out["input_ids"] = programs["input_ids"]
            out["encoder_attention_mask"] = programs["encoder_attention_mask"]
        return out


class MDMTrainer(Trainer):
    """Stage 0, base masked diffusion: LLaDA's loss (Eq. 5 without z; t ~ U[0, 1], 1/t weighting)."""

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        input_ids = inputs["input_ids"]
        x_t, masked, p_mask = forward_mask(input_ids, model.config.mask_token_id)
        logits = model(input_ids=x_t).logits
        loss = mdm_loss(logits, input_ids, masked, p_mask)
        return (loss, {"logits": logits}) if return_outputs else loss


class CrocodilAutoencoder(nn.Module):
    """Holds h_φ and f_θ so that one Trainer optimises, checkpoints and resumes both."""

    def __init__(self, encoder: RegisterEncoderModel, demasker: nn.Module):
        super().__init__()
        self.encoder = encoder
        self.demasker = demasker

    @property
    def config(self):
        return self.demasker.config

    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs=None):
        self.encoder.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gradient_checkpointing_kwargs)
        self.demasker.gradient_checkpointing_enable(gradient_checkpointing_kwargs=gradient_checkpointing_kwargs)


class AutoencoderTrainer(Trainer):
    """Stage 1, encoder + guided demasker (Alg. 1, App. C).

    Loss: Eq. 5 conditioned on z₀ + e (CS = `register_noise_cs`), nested dropout over k, all-mask rows with
    probability `all_mask_prob`. The first `clean_warmup_steps` use the dense clean signal (x_t fully masked, no
    register noise, every k = K) that DESIGN §7 found to teach the registers far faster; during the first
    `encoder_warmup_steps` only h_φ is updated (the demasker's gradients are dropped before the optimiser step).
    """

    def __init__(
        self,
        *args,
        register_noise_cs: float = 0.8,
        all_mask_prob: float = 0.25,
        nested_dropout: bool = True,
        encoder_warmup_steps: int = 0,
        clean_warmup_steps: int = 0,
        **kwargs,
    ):
        super().__init__(*args, **kwargs)
        self.register_noise_cs = register_noise_cs
        self.all_mask_prob = all_mask_prob
        self.nested_dropout = nested_dropout
        self.encoder_warmup_steps = encoder_warmup_steps
        self.clean_warmup_steps = clean_warmup_steps

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        module = model.module if hasattr(model, "module") else model
        clean = self.state.global_step < self.clean_warmup_steps
        encoder_inputs = None
        if "encoder_input_ids" in inputs:
            encoder_inputs = {
                "input_ids": inputs["encoder_input_ids"],
                "attention_mask": inputs["encoder_attention_mask"],
            }
        loss, _ = autoencoder_loss(
            module.encoder,
            module.demasker,
            inputs["input_ids"],
            attention_mask=inputs.get("encoder_attention_mask"),
            encoder_inputs=encoder_inputs,
            cosine_similarity=1.0 if clean else self.register_noise_cs,
            all_mask_prob=1.0 if clean else self.all_mask_prob,
            nested=not clean and self.nested_dropout,
        )
        return loss

    def training_step(self, model, inputs, num_items_in_batch=None):
        loss = super().training_step(model, inputs, num_items_in_batch)
        if self.state.global_step < self.encoder_warmup_steps:
            module = model.module if hasattr(model, "module") else model
            for param in module.demasker.parameters():
                param.grad = None  # AdamW skips parameters without gradients: the demasker stays frozen
        return loss


class PriorTrainer(Trainer):
    """Stage 2, unconditional register prior (Alg. 5): L_cont = E‖g_ψ(z_t, t) − z₀‖², block-wise offsets."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        module = self.model
        self.noise_scheduler = make_noise_scheduler(module.config.num_train_timesteps)

    def condition(self, inputs) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        return None, None

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        module = model.module if hasattr(model, "module") else model
        condition, condition_mask = self.condition(inputs)
        loss = register_prior_loss(
            module,
            self.noise_scheduler,
            inputs["registers"],
            encoder_hidden_states=condition,
            encoder_attention_mask=condition_mask,
        )
        return loss


class ConditionalPriorTrainer(PriorTrainer):
    """Stage 3, conditional prior (Alg. 4 as in App. E): condition on h_φ(x⁽ʳ⁾) of the visible tokens of x₀ with a
    fraction r ~ U[0, 1] masked (the frozen encoder in visible-only mode), through cross-attention."""

    def __init__(self, *args, encoder: RegisterEncoderModel, **kwargs):
        super().__init__(*args, **kwargs)
        self.encoder = encoder.eval().requires_grad_(False)

    def condition(self, inputs):
        input_ids = inputs["input_ids"]
        valid = inputs["encoder_attention_mask"].bool()
        r = torch.rand(input_ids.shape[0], 1, device=input_ids.device)
        hidden = (torch.rand(input_ids.shape, device=input_ids.device) < r) & valid
        self.encoder.to(input_ids.device)
        with torch.no_grad():
            condition = self.encoder(
                input_ids=input_ids, attention_mask=valid.long(), visible_mask=(~hidden).long()
            ).registers
        return condition, None


__all__ = [
    "AutoencoderTrainer",
    "ConditionalPriorTrainer",
    "CrocodilAutoencoder",
    "MDMTrainer",
    "PriorTrainer",
    "ProgramCollator",
    "RegisterCollator",
]
