"""CrocodilPipeline: ConThenDisc, ConWithinDisc, autoencoding, plain MDM and interpolation (paper §4, Alg. 2, 3, 6).

One `DiffusionPipeline` holds the guided demasker f_θ, the register encoder h_φ, the register prior g_ψ, an optional
conditional prior (ConWithinDisc), optional few-step distilled students of both priors, the sampler of the priors
(DDIM, DPM-Solver++ or UniPC), the discrete `MaskedDiffusionScheduler` and the tokenizer(s). Every mode runs the
same discrete loop (`_denoise`); the modes differ only in where the registers come from: none (`"mdm"`), the encoder
(`"autoencode"`), the prior (`"con_then_disc"`), or the prior refreshed from the conditional prior on h_φ of the
visible tokens (`"con_within_disc"`).
"""

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import torch
from diffusers import DiffusionPipeline
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput, logging
from torch.nn.utils.rnn import pad_sequence

from ..checks import check_number, check_pipeline_source, looks_local, resolve_shipped
from ..modeling.modeling_guided_llada import GuidedLLaDAForMaskedLM
from ..modeling.modeling_register_encoder import RegisterEncoderModel, normalize_registers
from ..modeling.modeling_register_prior import RegisterPriorTransformer
from ..schedulers import REMASKING
from ..schedulers.scheduling_masked_diffusion import MaskedDiffusionScheduler
from ..schedulers.scheduling_register_prior import (
    PRIOR_SOLVERS,
    check_sampling_scheduler,
    make_prior_scheduler,
    sample_registers,
    solver_name,
)
from .modes import MODES, GenerationRun

logger = logging.get_logger(__name__)


def forward_flops(module: torch.nn.Module, num_tokens: int) -> float:
    """Approximate forward FLOPs: 2·(linear parameters)·tokens + 4·layers·tokens²·width for attention."""
    linear = sum(m.weight.numel() for m in module.modules() if isinstance(m, torch.nn.Linear))
    config = getattr(module, "config", None)
    width = getattr(config, "d_model", None) or getattr(config, "hidden_size", None) or 0
    layers = getattr(config, "n_layers", None) or getattr(config, "num_layers", None) or 0
    if isinstance(module, RegisterEncoderModel):
        backbone = module.config.backbone_config
        width = getattr(backbone, "hidden_size", 0)
        layers = getattr(backbone, "num_hidden_layers", None) or getattr(backbone, "n_layers", 0)
    return 2.0 * linear * num_tokens + 4.0 * layers * num_tokens**2 * width


def check_prior_registers(K: int, priors: dict[str, int], num_registers: int | None, option: str) -> int:
    """The register counts of prefix priors (`crocodil train prior --prior_num_registers k`), in one place for
    `CrocodilPipeline` and `crocodil assemble` (which applies them to the components' configs before it claims its
    output directory): every prior models the same k <= K registers, and `num_registers` (the k a pipeline shows the
    demasker by default, spelled `option` in the errors) is at most K and at most k, and is required when k < K.

    `priors` maps each prior's name to its k. Returns k (K when there is no prior).

    Example:
        ```python
        >>> check_prior_registers(16, {"prior": 2, "conditional_prior": 2}, 2, "`default_num_registers`")
        2
        ```
    """
    sampled = set(priors.values())
    if len(sampled) > 1:
        listed = ", ".join(f"{name} has K={k}" for name, k in priors.items())
        raise ValueError(f"the priors model different numbers of registers: {listed}; train them with one k.")
    k = sampled.pop() if sampled else K
    if k < K and num_registers is None:
        raise ValueError(f"the priors model the first {k} of K={K} registers (prefix priors); pass {option} <= {k}.")
    for k_max, what in ((K, "the demasker's K = {}"), (k, "the k = {} registers the priors sample")):
        if num_registers is not None and num_registers > k_max:
            raise ValueError(f"{option} {num_registers} is more than {what.format(k_max)}.")
    return k


def check_components(
    demasker, encoder, prior, conditional_prior=None, mask_scheduler=None, distilled_prior=None,
    distilled_conditional_prior=None, mdm_demasker=None, default_num_registers=None,
) -> None:  # fmt: skip
    """K (registers) and d (register width) are the demasker's; every other component must agree (a clear error
    naming the components that do not, instead of a shape error mid-generation). A prior may model a prefix k <= K of
    the registers (`crocodil train prior --prior_num_registers k`); all of a pipeline's priors model the same k, and
    `default_num_registers` fits it (`check_prior_registers`)."""
    k, d = demasker.config.num_registers, demasker.config.register_dim
    found = {"encoder": (encoder.config.num_registers, encoder.config.register_dim)}
    priors = {
        "prior": (prior, False),
        "conditional_prior": (conditional_prior, True),
        "distilled_prior": (distilled_prior, False),
        "distilled_conditional_prior": (distilled_conditional_prior, True),
    }
    for name, (model, _) in priors.items():
        if model is not None:
            found[name] = (model.config.num_registers, model.config.register_dim)
    prefix = {name: kd for name, kd in found.items() if name != "encoder" and kd[1] == d and kd[0] <= k}
    wrong = {name: kd for name, kd in found.items() if kd != (k, d) and name not in prefix}
    if wrong:
        listed = ", ".join(f"{name} has K={kd[0]}, d={kd[1]}" for name, kd in wrong.items())
        raise ValueError(f"components disagree on the registers: the demasker has K={k}, d={d}; {listed}.")
    check_number("`default_num_registers`", default_num_registers, minimum=1, integer=True, allow_none=True)
    check_prior_registers(
        k, {name: kd[0] for name, kd in prefix.items()}, default_num_registers, "`default_num_registers`"
    )
    for name, (model, conditional) in priors.items():
        if model is not None and model.is_conditional != conditional:
            kind = "a conditional" if model.is_conditional else "an unconditional"
            raise ValueError(f"`{name}` is {kind} prior; it must be {'conditional' if conditional else 'not'}.")
    for name in ("distilled_prior", "distilled_conditional_prior"):
        if priors[name][0] is not None and priors[name][0].config.distilled_steps is None:
            raise ValueError(f"`{name}` is not a distilled student (its config has no `distilled_steps`).")
    for name, model in (
        ("conditional_prior", conditional_prior),
        ("distilled_conditional_prior", distilled_conditional_prior),
    ):
        if model is not None and model.config.cross_attention_dim != encoder.config.register_dim:
            raise ValueError(
                f"`{name}` attends to width {model.config.cross_attention_dim}, but the encoder's registers have "
                f"d={encoder.config.register_dim}."
            )
    if mdm_demasker is not None:
        fields = ("vocab_size", "mask_token_id", "eos_token_id")
        differ = [f for f in fields if getattr(mdm_demasker.config, f) != getattr(demasker.config, f)]
        if differ:
            raise ValueError(
                "`mdm_demasker` must share the demasker's vocabulary and special tokens; they differ in "
                + ", ".join(
                    f"{f} ({getattr(mdm_demasker.config, f)} vs {getattr(demasker.config, f)})" for f in differ
                )
                + "."
            )
    if mask_scheduler is not None and mask_scheduler.config.mask_token_id != demasker.config.mask_token_id:
        raise ValueError(
            f"the mask scheduler's mask_token_id {mask_scheduler.config.mask_token_id} is not the demasker's "
            f"({demasker.config.mask_token_id})."
        )


def check_texts(name: str, texts) -> None:
    """Input programs: `None`, or a non-empty list of non-empty strings."""
    if texts is not None and (
        not isinstance(texts, (list, tuple)) or not texts or not all(isinstance(t, str) and t.strip() for t in texts)
    ):
        raise ValueError(f"`{name}` must be a non-empty string or a non-empty list of non-empty strings.")


@dataclass
class NFEBreakdown:
    """Function evaluations of one call (paper footnote 4).

    Args:
        demasker_calls: Forward passes of the demasker (each over the whole batch).
        prior_calls: Forward passes of the unconditional and conditional priors.
        encoder_calls: Forward passes of the register encoder.
        total: Everything in demasker-forward equivalents by FLOPs.
        prior_total: The priors' part of `total` (`prior_total / total` is their share of a sample's FLOPs), each
            call counted at the FLOPs of the prior that made it (the conditional prior, with its cross-attention, is
            larger than the unconditional one).
    """

    demasker_calls: int = 0
    prior_calls: int = 0
    encoder_calls: int = 0
    total: float = 0.0
    prior_total: float = 0.0
    prior_flops: float = field(default=0.0, repr=False)  # summed by `count_prior_calls`, in FLOPs

    def count_prior_calls(self, prior: torch.nn.Module, calls: int, condition_tokens: int | None = None) -> None:
        """Add `calls` forward passes of `prior` (a `RegisterPriorTransformer`) to the count and to the FLOPs; a
        conditional prior's cross-attention projects its `condition_tokens` keys and values in every call."""
        self.prior_calls += calls
        tokens = prior.config.num_registers
        flops = forward_flops(prior, tokens)
        if condition_tokens is not None:  # `forward_flops` ran the key / value projections over the query tokens
            kv = sum(
                block.attn2.to_k.weight.numel() + block.attn2.to_v.weight.numel()
                for block in prior.blocks
                if block.attn2 is not None
            )
            flops += 2.0 * kv * (condition_tokens - tokens)
        self.prior_flops += calls * flops

    def to_dict(self) -> dict:
        return {
            "demasker_calls": self.demasker_calls,
            "prior_calls": self.prior_calls,
            "encoder_calls": self.encoder_calls,
            "total": self.total,
            "prior_total": self.prior_total,
        }


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


class CrocodilPipeline(DiffusionPipeline):
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
            demasker, encoder, prior, conditional_prior, mask_scheduler, distilled_prior, distilled_conditional_prior,
            mdm_demasker, default_num_registers,
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

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, **kwargs) -> "CrocodilPipeline":
        """Load a saved pipeline (a directory, a Hub id or a shipped name). Importing this module registered
        crocodil_hf's models, which diffusers needs to resolve the `crocodil_hf` library named in `model_index.json`."""
        source = resolve_shipped(pretrained_model_name_or_path)
        name = str(source)
        if Path(name).expanduser().exists() or looks_local(name):
            source = check_pipeline_source(name)  # a local path: an existing pipeline directory
            cls.check_model_index(source)
        try:
            return super().from_pretrained(source, **kwargs)
        except Exception as err:
            if type(err).__name__ != "SafetensorError" or not Path(source).is_dir():
                raise
            from safetensors import safe_open

            for path in sorted(Path(source).rglob("*.safetensors")):
                try:
                    with safe_open(str(path), "pt"):
                        pass
                except Exception:  # noqa: BLE001  (any failure to open is the answer)
                    raise ValueError(f"{path} is corrupt or truncated ({err}); re-download or re-save it.") from err
            raise

    # component -> the classes it may be (by name: `model_index.json` records names)
    _component_classes = {
        "demasker": ("GuidedLLaDAForMaskedLM",),
        "encoder": ("RegisterEncoderModel",),
        "prior": ("RegisterPriorTransformer",),
        "conditional_prior": ("RegisterPriorTransformer",),
        "distilled_prior": ("RegisterPriorTransformer",),
        "mdm_demasker": ("GuidedLLaDAForMaskedLM",),
        "distilled_conditional_prior": ("RegisterPriorTransformer",),
        "mask_scheduler": ("MaskedDiffusionScheduler",),
        "scheduler": tuple(cls.__name__ for cls, _ in PRIOR_SOLVERS.values()),
    }

    @classmethod
    def check_model_index(cls, directory) -> None:
        """Check a saved pipeline's `model_index.json` before loading: every required component present, each named
        with a class it can be, and its folder there; errors name the component."""
        import json

        index_path = Path(directory, "model_index.json")
        try:
            index = json.loads(index_path.read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"{index_path} is not a readable JSON file ({err}); re-save the pipeline.") from None
        for component in ("demasker", "encoder", "prior", "scheduler", "tokenizer"):
            if not isinstance(index.get(component), list) or index[component][1] is None:
                raise ValueError(f"{index_path}: the required component `{component}` is missing.")
        for component, spec in index.items():
            if component.startswith("_") or not isinstance(spec, list) or len(spec) != 2 or spec[1] is None:
                continue
            allowed = cls._component_classes.get(component)
            if allowed and spec[1] not in allowed:
                raise ValueError(
                    f"{index_path}: component `{component}` names class {spec[1]!r}; expected {' or '.join(allowed)}."
                )
            if not Path(directory, component).is_dir():
                raise ValueError(f"{directory}: the folder of component `{component}` is missing.")

    def save_pretrained(self, save_directory, *args, **kwargs):
        """`DiffusionPipeline.save_pretrained`, plus a copy of the models' remote-code files at the top level.

        transformers looks for the remote code of `AutoModel.from_pretrained(repo, subfolder=..., trust_remote_code=
        True)` at the repository root, not in the subfolder; the copies make each component loadable alone.
        """
        import shutil

        super().save_pretrained(save_directory, *args, **kwargs)
        for name in ("demasker", "encoder"):
            for source in sorted(Path(save_directory, name).glob("*.py")):
                shutil.copy2(source, Path(save_directory, source.name))

    # ------------------------------------------------------------------ helpers

    @property
    def conditional_prior_default_steps(self) -> int:
        """The teacher conditional prior's steps when a call gives none: `default_conditional_prior_steps`, else
        `default_prior_steps` (pipelines saved before the former existed have only the latter)."""
        steps = getattr(self.config, "default_conditional_prior_steps", None)
        return self.config.default_prior_steps if steps is None else steps

    @property
    def num_registers_max(self) -> int:
        return self.demasker.config.num_registers

    @property
    def prior_num_registers(self) -> int:
        """How many registers the priors sample: K, or the k of prefix priors."""
        return self.prior.config.num_registers

    @property
    def sampled_num_registers_default(self) -> int:
        """k shown to the demasker when a call gives none and z₀ is sampled from a prior: `default_num_registers`
        (chosen by measurement, README "Registers for generation"), else K. Encoded or given registers use K."""
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
        bos, _ = self._special_ids()
        return int(self.demasker.config.max_sequence_length) - (bos is not None)

    def _default_num_registers(self, source, registers) -> int:
        # `source` is None for an unknown mode, which `check_inputs` refuses next
        sampled = getattr(source, "samples_from_prior", False) and registers is None
        return self.sampled_num_registers_default if sampled else self.num_registers_max

    def check_registers(self, registers, num_samples: int, num_registers: int) -> None:
        """Registers passed by the caller: a finite floating tensor of shape `(num_samples, >= k, d)`."""
        d = self.demasker.config.register_dim
        if not isinstance(registers, torch.Tensor) or not registers.is_floating_point():
            kind = registers.dtype if isinstance(registers, torch.Tensor) else type(registers).__name__
            raise ValueError(f"`registers` must be a floating-point tensor, got {kind}.")
        if registers.dim() != 3 or registers.shape[0] != num_samples or registers.shape[1] < num_registers:
            raise ValueError(
                f"`registers` must have shape ({num_samples}, >= {num_registers}, {d}), got {tuple(registers.shape)}."
            )
        if registers.shape[2] != d:
            raise ValueError(f"`registers` must have width d = {d}, got {tuple(registers.shape)}.")
        if not bool(torch.isfinite(registers).all()):
            raise ValueError("`registers` contain NaN or infinite values; expected finite registers (norm √d).")

    @property
    def mask_token_id(self) -> int:
        return self.demasker.config.mask_token_id

    def _special_ids(self) -> tuple[int | None, int | None]:
        bos = getattr(self.tokenizer, "bos_token_id", None)
        eos = getattr(self.tokenizer, "eos_token_id", None)
        if eos is None:
            eos = self.demasker.config.eos_token_id
        return bos, eos

    def encoder_inputs(self, texts: Sequence[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Tokenise texts for the encoder: the encoder's own tokenizer, or the demasker's as `[BOS] text [EOS]`."""
        device = self._execution_device
        if self.encoder_tokenizer is not None:
            batch = self.encoder_tokenizer(
                list(texts),
                padding=True,
                truncation=max_length is not None,
                max_length=max_length,
                return_tensors="pt",
            )
            return {"input_ids": batch["input_ids"].to(device), "attention_mask": batch["attention_mask"].to(device)}
        bos, eos = self._special_ids()
        rows = []
        for text in texts:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            ids = ([bos] if bos is not None else []) + ids + [eos]
            rows.append(ids[:max_length] if max_length else ids)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos
        tensors = [torch.tensor(r, dtype=torch.long) for r in rows]
        input_ids = pad_sequence(tensors, batch_first=True, padding_value=pad)  # right padding
        attention_mask = pad_sequence([torch.ones_like(t) for t in tensors], batch_first=True, padding_value=0)
        return {"input_ids": input_ids.to(device), "attention_mask": attention_mask.to(device)}

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
        return self.encoder(**self.encoder_inputs(texts)).registers

    def _visible_condition(self, canvas: torch.Tensor, run: GenerationRun | None = None) -> dict[str, torch.Tensor]:
        """Encoder inputs for h_φ(x_t): only the visible (unmasked) tokens count (App. E)."""
        if self.encoder_tokenizer is None and run is not None and run.left_pad is not None:
            # prompted batch: shift each row left past its padding (the encoder reads right-padded rows)
            n = canvas.shape[1]
            columns = torch.arange(n, device=canvas.device)[None, :]
            canvas = canvas.gather(1, (columns + run.left_pad[:, None]).clamp(max=n - 1))
            attention = columns < run.attention_mask.sum(dim=1, keepdim=True)
            visible = (canvas != self.mask_token_id) & attention
            return {
                "input_ids": torch.where(visible, canvas, 0),
                "attention_mask": attention.long(),
                "visible_mask": visible.long(),
            }
        visible = canvas != self.mask_token_id
        if self.encoder_tokenizer is None:
            return {"input_ids": torch.where(visible, canvas, 0), "visible_mask": visible.long()}
        # Different tokenizers: decode visible spans; masked spans become the encoder's mask token when it has one.
        enc_mask = getattr(self.encoder_tokenizer, "mask_token", None) or ""
        texts = []
        for row, vis in zip(canvas.tolist(), visible.tolist()):
            pieces, span = [], []
            for token, seen in zip(row, vis):
                if seen:
                    span.append(token)
                else:
                    if span:
                        pieces.append(self.tokenizer.decode(span, skip_special_tokens=True))
                        span = []
                    if not pieces or pieces[-1] != enc_mask:
                        pieces.append(enc_mask)
            if span:
                pieces.append(self.tokenizer.decode(span, skip_special_tokens=True))
            texts.append("".join(pieces))
        inputs = self.encoder_inputs(texts)
        mask_id = getattr(self.encoder_tokenizer, "mask_token_id", None)
        if mask_id is not None:
            inputs["visible_mask"] = (inputs["input_ids"] != mask_id).long()
        return inputs

    def decode_sequences(self, sequences: torch.LongTensor) -> list[str]:
        """Token ids → text, dropping everything from the first EOS on."""
        _, eos = self._special_ids()
        texts = []
        for row in sequences.tolist():
            if eos is not None and eos in row:
                row = row[: row.index(eos)]
            row = [t for t in row if t != self.mask_token_id]
            texts.append(self.tokenizer.decode(row, skip_special_tokens=True))
        return texts

    # ------------------------------------------------------------------ validation

    def check_inputs(self, mode: str, run: GenerationRun, callback_on_step_end_tensor_inputs=None) -> None:
        """Every argument of a call bounded, finite and typed, before any compute."""
        text, num_samples, gen_length = run.text, run.num_samples, run.gen_length
        block_length, steps, generator, refresh_at = run.block_length, run.steps, run.generator, run.refresh_at
        if mode not in MODES:
            raise ValueError(f"unknown `mode` {mode!r}; expected one of {tuple(MODES)}.")
        source = MODES[mode]
        if source.needs_text and not text:
            raise ValueError(f"`mode={mode!r}` needs `text=` (a string or a list of strings).")
        if not source.needs_text and text is not None:
            raise ValueError(f"`text` is only used by modes that read it, not by mode {mode!r}.")
        check_texts("text", text)
        check_number("`num_samples`", num_samples, minimum=1, integer=True)
        check_number("`gen_length`", gen_length, minimum=1, integer=True)
        limit = self.max_gen_length
        if run.prompts is not None:
            if source.needs_text:
                raise ValueError(f"`prompt` is for the generation modes, not for mode {mode!r}.")
            if source.conditions_on_prompt and self.conditional_prior is None:
                raise ValueError(f"`mode={mode!r}` with a `prompt` needs a `conditional_prior` component.")
            used = max(len(self.tokenizer(p, add_special_tokens=False)["input_ids"]) for p in run.prompts)
            used += max(len(self.tokenizer(x, add_special_tokens=False)["input_ids"]) for x in run.suffixes or [""])
            if used + gen_length > limit:
                raise ValueError(
                    f"prompt and suffix ({used} tokens) + `gen_length` ({gen_length}) exceed the {limit} positions "
                    "the demasker allows; shorten the prompt or the span."
                )
        if gen_length > limit:
            raise ValueError(
                f"`gen_length` ({gen_length}) must be <= {limit}: the demasker's max_sequence_length "
                f"({self.demasker.config.max_sequence_length}) minus the BOS prefix."
            )
        if not isinstance(block_length, int) or block_length < 1 or gen_length % block_length != 0:
            raise ValueError(
                f"`block_length` ({block_length}) must be a positive divisor of `gen_length` ({gen_length})."
            )
        num_blocks = gen_length // block_length
        if not isinstance(steps, int) or steps < 1 or steps % num_blocks != 0:
            raise ValueError(
                f"`steps` ({steps}) must be a positive multiple of the number of blocks ({num_blocks} = "
                f"gen_length / block_length)."
            )
        if steps > gen_length:
            raise ValueError(f"`steps` ({steps}) must be <= `gen_length` ({gen_length}): a step commits >= 1 token.")
        check_number("`temperature`", run.temperature, minimum=0)
        check_number("`eos_penalty`", run.eos_penalty, minimum=0)
        if run.remasking not in REMASKING:
            raise ValueError(f"`remasking` must be one of {REMASKING}, got {run.remasking!r}.")
        check_number("`threshold`", run.threshold, minimum=0, maximum=1, exclusive_minimum=True, allow_none=True)
        check_number("`num_registers`", run.num_registers, minimum=1, maximum=self.num_registers_max, integer=True)
        check_number("`eta`", run.eta, minimum=0)
        self._resolve_priors(run)
        self._resolve_unguided(run)
        if not isinstance(refresh_at, (list, tuple)) or any(
            isinstance(f, bool) or not isinstance(f, (int, float)) or not 0 < f < 1 for f in refresh_at
        ):
            raise ValueError(f"`refresh_at` must be a list of fractions in (0, 1), got {refresh_at!r}.")
        if source.needs_conditional_prior and self.conditional_prior is None:
            raise ValueError(f"`mode={mode!r}` needs a `conditional_prior` component; this pipeline has none.")
        generators = generator if isinstance(generator, list) else [generator]
        if not all(g is None or isinstance(g, torch.Generator) for g in generators):
            raise ValueError("`generator` must be a torch.Generator or a list of them (one per sample).")
        if isinstance(generator, list) and len(generator) != num_samples:
            raise ValueError(f"got {len(generator)} generators for {num_samples} samples; pass one per sample.")
        if callback_on_step_end_tensor_inputs is not None:
            unknown = set(callback_on_step_end_tensor_inputs) - set(self._callback_tensor_inputs)
            if unknown:
                raise ValueError(
                    f"`callback_on_step_end_tensor_inputs` {sorted(unknown)} not in {self._callback_tensor_inputs}."
                )

    def _resolve_unguided(self, run: GenerationRun) -> None:
        """The model of the unguided (`mdm`) steps: the `mdm_demasker` baseline when the pipeline has one, unless
        `use_mdm_demasker=False`; else the guided demasker without registers."""
        if run.use_mdm_demasker not in (None, True, False):
            raise ValueError(f"`use_mdm_demasker` must be True, False or None, got {run.use_mdm_demasker!r}.")
        if run.use_mdm_demasker and self.mdm_demasker is None:
            raise ValueError("`use_mdm_demasker=True` but this pipeline has no `mdm_demasker` component.")
        baseline = self.mdm_demasker is not None and run.use_mdm_demasker is not False
        run.unguided_demasker = self.mdm_demasker if baseline else self.demasker

    def _resolve_priors(self, run: GenerationRun) -> None:
        """Fill `run` with the priors, their sampler and step counts this call uses (teachers or distilled
        students), checking each: `prior_scheduler` a known solver, steps positive integers, `eta` DDIM's only."""
        check_number("`prior_steps`", run.prior_steps, minimum=1, integer=True, allow_none=True)
        check_number(
            "`conditional_prior_steps`", run.conditional_prior_steps, minimum=1, integer=True, allow_none=True
        )
        if run.use_distilled_prior not in (None, True, False):
            raise ValueError(f"`use_distilled_prior` must be True, False or None, got {run.use_distilled_prior!r}.")
        students = (self.distilled_prior, self.distilled_conditional_prior)
        if run.use_distilled_prior and all(student is None for student in students):
            raise ValueError("`use_distilled_prior=True` but this pipeline has no distilled prior component.")
        distilled = run.use_distilled_prior is not False

        def pick(teacher, student, steps, default):
            if distilled and student is not None:
                return student, student.config.distilled_steps if steps is None else steps
            return teacher, default if steps is None else steps

        defaults = self.config.default_prior_steps, self.conditional_prior_default_steps
        run.prior, run.prior_steps = pick(self.prior, self.distilled_prior, run.prior_steps, defaults[0])
        run.conditional_prior, run.conditional_prior_steps = pick(
            self.conditional_prior, self.distilled_conditional_prior, run.conditional_prior_steps, defaults[1]
        )
        if isinstance(run.prior_scheduler, str) and run.prior_scheduler not in PRIOR_SOLVERS:
            raise ValueError(
                f"unknown `prior_scheduler` {run.prior_scheduler!r}; choose one of {', '.join(PRIOR_SOLVERS)}."
            )
        run.prior_scheduler = make_prior_scheduler(run.prior_scheduler, self.scheduler.config)
        check_sampling_scheduler(run.prior_scheduler, self.prior)
        if run.eta > 0 and solver_name(run.prior_scheduler) != "ddim":
            raise ValueError("`eta` is DDIM's stochasticity; with another `prior_scheduler` pass eta=0.")

    # ------------------------------------------------------------------ main call

    @torch.no_grad()
    def __call__(
        self,
        mode: str = "con_within_disc",
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
    ) -> CrocodilPipelineOutput | tuple:
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
        texts_in = [text] if isinstance(text, str) else text
        check_texts("text", texts_in)
        prompts, suffixes, num_samples = self._prompt_inputs(prompt, suffix, num_samples)
        source = MODES.get(mode)
        reconstructs = source is not None and source.one_sample_per_text and bool(texts_in)
        if reconstructs:
            num_samples = len(texts_in)
        if gen_length is None:
            if reconstructs:
                gen_length = max(len(self.tokenizer(t, add_special_tokens=False)["input_ids"]) for t in texts_in) + 1
            else:
                gen_length = self.trained_gen_length or 128
        run = GenerationRun(
            num_samples=num_samples,
            text=texts_in,
            gen_length=gen_length,
            block_length=gen_length if block_length is None else block_length,
            steps=gen_length if steps is None else steps,
            temperature=temperature,
            remasking=remasking,
            threshold=threshold,
            num_registers=self._default_num_registers(source, registers) if num_registers is None else num_registers,
            prior_steps=prior_steps,
            conditional_prior_steps=prior_steps if conditional_prior_steps is None else conditional_prior_steps,
            eta=eta,
            prior_scheduler=self.scheduler if prior_scheduler is None else prior_scheduler,
            use_distilled_prior=use_distilled_prior,
            use_mdm_demasker=use_mdm_demasker,
            refresh_at=refresh_at,
            generator=generator,
            nfe=NFEBreakdown(),
            prompts=prompts,
            suffixes=suffixes,
            eos_fill=prompts is not None if eos_fill is None else bool(eos_fill),
            eos_penalty=eos_penalty,
        )
        tensor_inputs = callback_on_step_end_tensor_inputs or list(self._callback_tensor_inputs)

        # 1. Check inputs
        self.check_inputs(mode, run, callback_on_step_end_tensor_inputs)
        run.refresh_at = sorted(run.refresh_at) if source.uses_refresh_at else []
        if registers is not None:
            self.check_registers(registers, run.num_samples, run.num_registers)
        elif source.samples_from_prior and run.num_registers > self.prior_num_registers:
            raise ValueError(
                f"`num_registers` {run.num_registers} is more than the {self.prior_num_registers} registers this "
                "pipeline's priors sample."
            )
        if self.trained_gen_length and gen_length > self.trained_gen_length:
            logger.warning(
                "gen_length %d is longer than the %d tokens this pipeline was trained on; expect degraded text.",
                gen_length,
                self.trained_gen_length,
            )
        device = self._execution_device

        # 2. Prepare the canvas: [BOS] + gen_length masks, or [BOS] prompt [MASK × gen_length] suffix
        if run.prompts is None:
            bos, _ = self._special_ids()
            prefix = [bos] if bos is not None else []
            canvas = torch.full(
                (run.num_samples, len(prefix) + gen_length), self.mask_token_id, dtype=torch.long, device=device
            )
            if prefix:
                canvas[:, 0] = bos
            run.offset = len(prefix)
        else:
            canvas = self._prompted_canvas(run, device)
        run.canvas = canvas

        # 3. Prepare the registers z₀: the mode says where they come from (`modes.py`)
        z0 = registers.to(device) if registers is not None else source.initial_registers(self, run)

        # 4. Discrete denoising loop (Alg. 2/3/6 lines "x̂₀ ~ f_θ(x_t, t, z₀); x_t = Forward(x̂₀, t)")
        canvas, z0 = self._denoise(canvas, z0, run, source, callback_on_step_end, tensor_inputs)

        # 5. Decode and account
        sequences = canvas[:, run.offset : run.offset + gen_length]
        texts = self.decode_sequences(sequences)
        full_texts = None
        if run.prompts is not None:
            full_texts = [p + t + s for p, t, s in zip(run.prompts, texts, run.suffixes or [""] * len(texts))]
        self._account_flops(run, canvas.shape[1], run.num_registers if z0 is not None else None)
        self.maybe_free_model_hooks()
        out = CrocodilPipelineOutput(
            texts=texts,
            sequences=sequences,
            registers=z0,
            nfe=run.nfe.to_dict(),
            wall_time=time.perf_counter() - start,
            full_texts=full_texts,
        )
        return out if return_dict else out.to_tuple()

    def _prompt_inputs(self, prompt, suffix, num_samples):
        """Prompts and suffixes as lists of one per sample (a string is repeated); `num_samples` from a list."""
        if prompt is None:
            if suffix is not None:
                raise ValueError("`suffix` needs a `prompt` (use prompt='\\n' to fill the start of a file).")
            return None, None, num_samples
        prompts = [prompt] * num_samples if isinstance(prompt, str) else prompt
        check_texts("prompt", prompts)
        prompts = list(prompts)
        if not isinstance(prompt, str) and num_samples not in (1, len(prompts)):
            raise ValueError(f"got {len(prompts)} prompts for num_samples={num_samples}; give one per sample.")
        suffixes = None
        if suffix is not None:
            suffixes = [suffix] * len(prompts) if isinstance(suffix, str) else list(suffix)
            if len(suffixes) != len(prompts) or not all(isinstance(x, str) for x in suffixes):
                raise ValueError(f"`suffix` must be a string or one string per prompt ({len(prompts)}).")
        return prompts, suffixes, len(prompts)

    def _prompted_canvas(self, run: GenerationRun, device) -> torch.Tensor:
        """`[PAD…] [BOS] prompt [MASK × gen_length] suffix [PAD…]` per row: the left padding aligns the spans, the
        attention mask hides the padding and the position ids are those of each row alone."""
        bos, eos = self._special_ids()
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else eos

        def ids(text: str) -> list[int]:
            return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

        heads = [([bos] if bos is not None else []) + ids(p) for p in run.prompts]
        tails = [ids(x) for x in run.suffixes] if run.suffixes is not None else [[] for _ in heads]
        width_head, width_tail = max(map(len, heads)), max(map(len, tails))
        rows, mask, left = [], [], []
        for head, tail in zip(heads, tails):
            pad_left, pad_right = width_head - len(head), width_tail - len(tail)
            rows.append([pad] * pad_left + head + [self.mask_token_id] * run.gen_length + tail + [pad] * pad_right)
            mask.append([0] * pad_left + [1] * (len(head) + run.gen_length + len(tail)) + [0] * pad_right)
            left.append(pad_left)
        canvas = torch.tensor(rows, dtype=torch.long, device=device)
        run.attention_mask = torch.tensor(mask, dtype=torch.long, device=device)
        run.left_pad = torch.tensor(left, dtype=torch.long, device=device)
        positions = torch.arange(canvas.shape[1], device=device)[None, :] - run.left_pad[:, None]
        run.position_ids = positions.clamp(min=0)
        run.offset = width_head
        return canvas

    def _denoise(self, canvas, z0, run: GenerationRun, source, callback, tensor_inputs):
        """Semi-autoregressive blocks; within a block, one demasker call per timestep of the mask scheduler until the
        block is unmasked. With `threshold` the number of calls adapts (each commits >= 1 token per row): the
        scheduler is given `block_length` timesteps, an upper bound, and the loop ends once nothing is masked."""
        num_blocks = run.gen_length // run.block_length
        steps_per_block = run.steps // num_blocks if run.threshold is None else run.block_length
        source.start(run)
        calls = 0
        with self.progress_bar(total=run.steps if run.threshold is None else run.gen_length) as progress:
            for block in range(num_blocks):
                lo, hi = run.offset + block * run.block_length, run.offset + (block + 1) * run.block_length
                self.mask_scheduler.set_timesteps(
                    steps_per_block, block_mask=canvas[:, lo:hi] == self.mask_token_id, device=canvas.device
                )
                for step, _ in enumerate(self.mask_scheduler.timesteps):
                    active = (canvas[:, lo:hi] == self.mask_token_id).any(dim=1)
                    if not bool(active.any()):
                        break
                    if z0 is not None:  # ConWithinDisc renews z₀ at its refresh points
                        z0 = source.refresh(self, canvas, calls, z0, run)
                    logits = self._demasker_logits(canvas, z0, run, lo, hi, active)
                    run.nfe.demasker_calls += 1
                    out = self.mask_scheduler.step(
                        logits,
                        step,
                        canvas[:, lo:hi],
                        temperature=run.temperature,
                        remasking=run.remasking,
                        threshold=run.threshold,
                        generator=run.generator,
                        active=active,
                        eos_penalty=run.eos_penalty,
                        eos_token_id=self._special_ids()[1],
                    )
                    canvas = canvas.clone()
                    canvas[:, lo:hi] = out.prev_sample
                    if run.eos_fill:
                        canvas = self._fill_after_eos(canvas, run)
                    calls += 1
                    if callback is not None:
                        span = slice(run.offset, run.offset + run.gen_length)
                        state = {"sequences": canvas[:, span], "registers": z0}
                        updates = callback(self, calls, block, {k: state[k] for k in tensor_inputs}) or {}
                        if "sequences" in updates:
                            canvas = canvas.clone()
                            canvas[:, span] = updates["sequences"].to(canvas)
                        if "registers" in updates:
                            z0 = updates["registers"]
                    progress.update()
        return canvas, z0

    def conditional_registers(self, canvas, run: GenerationRun) -> torch.Tensor:
        """z₀ ~ P(z | h_φ(x_t)): the conditional prior on the registers of the visible tokens (App. E)."""
        condition = self.encoder(**self._visible_condition(canvas, run)).registers  # h_φ(x_t), visible tokens only
        run.nfe.encoder_calls += 1
        sampled = sample_registers(
            run.conditional_prior,
            run.prior_scheduler,
            canvas.shape[0],
            num_inference_steps=run.conditional_prior_steps,
            eta=run.eta,
            generator=run.generator,
            encoder_hidden_states=condition,
        )
        run.nfe.count_prior_calls(run.conditional_prior, sampled.num_prior_calls, condition_tokens=condition.shape[1])
        return sampled.registers

    def _fill_after_eos(self, canvas: torch.Tensor, run: GenerationRun) -> torch.Tensor:
        """Every position of a row's span after its first committed EOS becomes EOS (committed: not computed again)."""
        _, eos = self._special_ids()
        lo, hi = run.offset, run.offset + run.gen_length
        is_eos = canvas[:, lo:hi] == eos
        if eos is None or not bool(is_eos.any()):
            return canvas
        first = torch.where(is_eos.any(dim=1), is_eos.long().argmax(dim=1), run.gen_length)
        after = torch.arange(run.gen_length, device=canvas.device)[None, :] > first[:, None]
        canvas[:, lo:hi] = torch.where(after, eos, canvas[:, lo:hi])
        return canvas

    def _demasker_logits(self, canvas, z0, run: GenerationRun, lo, hi, active) -> torch.Tensor:
        """`(N, V)` logits of the N still-masked positions of the current block in active rows: the output head (and
        the scheduler's softmax) skip committed positions, on average half of a block over a trajectory."""
        keep = torch.zeros_like(canvas, dtype=torch.bool)
        keep[:, lo:hi] = (canvas[:, lo:hi] == self.mask_token_id) & active[:, None]
        padded = (
            {}
            if run.attention_mask is None
            else {"attention_mask": run.attention_mask, "position_ids": run.position_ids}
        )
        if z0 is None:
            return run.unguided_demasker(canvas, logits_to_keep=keep, **padded).logits
        registers = z0[:, : run.num_registers].to(self.demasker.dtype)
        return self.demasker(canvas, registers=registers, logits_to_keep=keep, **padded).logits

    def _account_flops(self, run: GenerationRun, canvas_len: int, num_registers: int | None) -> None:
        nfe = run.nfe
        prefix = (num_registers + 2) if num_registers else 0
        demasker = forward_flops(self.demasker, canvas_len + prefix)
        if num_registers is None and run.unguided_demasker is not self.demasker:  # the mdm baseline, maybe larger
            nfe.total = nfe.demasker_calls * forward_flops(run.unguided_demasker, canvas_len) / demasker
            return
        encoder = forward_flops(self.encoder, canvas_len + self.encoder.config.num_registers - 1)
        nfe.prior_total = nfe.prior_flops / demasker
        nfe.total = nfe.demasker_calls + nfe.prior_total + nfe.encoder_calls * encoder / demasker

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


__all__ = ["CrocodilPipeline", "CrocodilPipelineOutput", "NFEBreakdown", "forward_flops"]
