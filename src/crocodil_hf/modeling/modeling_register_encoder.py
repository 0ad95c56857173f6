"""Register encoder h_φ: text → a bank of K registers z ∈ R^{K×d}, each of norm √d (paper App. C).

A backbone reads `[text, r₂ … r_K]` (K−1 learned suffix registers placed right after each example's last valid
token). z⁽¹⁾ is the output at the final valid token (last-token pooling, as Qwen embedders do), z⁽ʲ⁾ for j ≥ 2 the
output at register r_j. Positions are given explicitly, so an example's registers do not depend on how much padding
its batch has. Visible-only mode (ConWithinDisc conditioning, Alg. 3/4) blocks masked positions as attention keys, so
the registers depend only on visible tokens.
Remote-code safe: imports only `torch`, `transformers` and siblings.
"""

import math
from dataclasses import dataclass

import torch
from torch import nn
from transformers import AutoModel, PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .configuration_crocodil import RegisterEncoderConfig
from .configuration_llada import LLaDAConfig
from .modeling_llada import LLaDAModelLM, check_token_ids, strict_from_pretrained


def nested_dropout(
    batch_size: int,
    num_registers: int,
    generator: torch.Generator | None = None,
    device: torch.device | str | None = None,
    min_registers: int = 1,
) -> torch.LongTensor:
    """Nested dropout over registers (paper App. C; Bachmann et al. 2025): k ~ U{min_registers, …, K} per example.

    The demasker then sees only the first k registers, which makes the bank progressively ordered.

    Args:
        batch_size: Number of examples.
        num_registers: K.
        generator: Optional `torch.Generator` for reproducibility.
        device: Device of the returned tensor.
        min_registers: Smallest k drawn (default 1).

    Returns:
        `(batch_size,)` LongTensor of k values.

    Example:
        ```python
        >>> k = nested_dropout(4, 8, generator=torch.Generator().manual_seed(0))
        >>> bool(((k >= 1) & (k <= 8)).all())
        True
        ```
    """
    if num_registers < 1:
        raise ValueError(f"`num_registers` must be >= 1, got {num_registers}.")
    if not 1 <= min_registers <= num_registers:
        raise ValueError(f"`min_registers` must lie in [1, {num_registers}], got {min_registers}.")
    k = torch.randint(min_registers, num_registers + 1, (batch_size,), generator=generator)
    return k.to(device) if device is not None else k


def normalize_registers(registers: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """z⁽ʲ⁾ ← √d · z⁽ʲ⁾ / ‖z⁽ʲ⁾‖ for every register (paper App. C). Works on any `(..., d)` tensor."""
    d = registers.shape[-1]
    norm = registers.float().norm(dim=-1, keepdim=True).clamp_min(eps)
    return (registers.float() * (math.sqrt(d) / norm)).to(registers.dtype)


@dataclass
class RegisterEncoderOutput(ModelOutput):
    """Output of the register encoder.

    Args:
        registers: `(B, K, d)` register bank z₀ (normalised to √d per register unless disabled).
        last_hidden_state: `(B, n + K − 1, d)` backbone outputs over `[text, suffix registers]`.
    """

    registers: torch.Tensor | None = None
    last_hidden_state: torch.Tensor | None = None


def _build_backbone(config) -> PreTrainedModel:
    # LLaDA is built directly so that remote-code users need no registration; anything else through AutoModel.
    # Compare model types, not classes: remote code may load the config and the model from two module copies.
    if config.model_type == LLaDAConfig.model_type:
        return LLaDAModelLM(config)
    return AutoModel.from_config(config)


class RegisterEncoderModel(PreTrainedModel):
    """Register encoder h_φ with any transformers backbone (Qwen3, BERT, LLaDA, ...).

    Example:
        ```python
        >>> import torch
        >>> from crocodil_hf import RegisterEncoderConfig, RegisterEncoderModel
        >>> config = RegisterEncoderConfig(
        ...     backbone_config={"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1,
        ...                      "num_attention_heads": 2, "intermediate_size": 64, "vocab_size": 100},
        ...     num_registers=4)
        >>> encoder = RegisterEncoderModel(config)
        >>> encoder(torch.tensor([[5, 6, 7]])).registers.shape
        torch.Size([1, 4, 32])
        ```
    """

    config_class = RegisterEncoderConfig
    config: RegisterEncoderConfig
    base_model_prefix = "encoder"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    # Parameters with no pretrained value (a backbone checkpoint never holds them): trained in full under LoRA.
    _new_parameter_names = ("suffix_registers",)

    def __init__(self, config: RegisterEncoderConfig):
        super().__init__(config)
        self.backbone = _build_backbone(config.backbone_config)
        self.suffix_registers = nn.Parameter(torch.zeros(config.num_registers - 1, config.register_dim))
        self.post_init()

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        # The backbone initialises itself (it is a PreTrainedModel); only the suffix registers are ours.
        if isinstance(module, RegisterEncoderModel):
            std = getattr(self.config.backbone_config, "initializer_range", None) or 0.02
            init.normal_(module.suffix_registers, mean=0.0, std=std)

    @classmethod
    def from_pretrained(cls, *args, strict: bool = True, **kwargs):
        """`PreTrainedModel.from_pretrained` that raises on missing or mismatched weights unless `strict=False`."""
        return strict_from_pretrained(cls, super().from_pretrained, *args, strict=strict, **kwargs)

    @classmethod
    def from_backbone(
        cls, backbone_name_or_path: str, num_registers: int, normalize_registers: bool = True, **kwargs
    ) -> "RegisterEncoderModel":
        """Build an encoder around pretrained backbone weights (a local directory or a Hub id).

        Example:
            ```python
            >>> encoder = RegisterEncoderModel.from_backbone("Qwen/Qwen3-Embedding-0.6B", num_registers=128)
            ```
        """
        if isinstance(backbone_name_or_path, PreTrainedModel):
            backbone = backbone_name_or_path
            name = backbone.config.name_or_path
        else:
            name = str(backbone_name_or_path)
            backbone = AutoModel.from_pretrained(name, **kwargs)
        config = RegisterEncoderConfig(
            backbone_config=backbone.config,
            num_registers=num_registers,
            normalize_registers=normalize_registers,
            backbone_name_or_path=name,
        )
        model = cls(config)
        model.backbone = backbone
        return model

    def get_input_embeddings(self) -> nn.Module:
        return self.backbone.get_input_embeddings()

    def _trunk(self) -> nn.Module:
        # The module that returns hidden states: BertModel / Qwen3Model are their own trunk, LLaDAModelLM has `.model`.
        return self.backbone.model if self.backbone.config.model_type == LLaDAConfig.model_type else self.backbone

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        visible_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        return_dict: bool | None = None,
        **kwargs,
    ) -> RegisterEncoderOutput | tuple:
        """Encode text into registers.

        Args:
            input_ids: `(B, n)` token ids of the encoder's tokenizer (right padding).
            attention_mask: `(B, n)` 1 for real tokens, 0 for padding.
            visible_mask: `(B, n)` visible-only mode: 1 where the token is visible, 0 where it is masked. Masked
                positions are blocked as attention keys, so the registers depend only on visible tokens; z⁽¹⁾ is read
                at the last visible token (at the last register when nothing is visible).
            inputs_embeds: `(B, n, d)` instead of `input_ids`.
        """
        return_dict = self.config.return_dict if return_dict is None else return_dict
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of `input_ids` and `inputs_embeds`.")
        if inputs_embeds is None:
            if input_ids.dim() != 2:
                raise ValueError(f"`input_ids` must have shape (batch, seq_len), got {tuple(input_ids.shape)}.")
            check_token_ids(input_ids, self.backbone.get_input_embeddings().num_embeddings)
            inputs_embeds = self.backbone.get_input_embeddings()(input_ids)
        elif inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.config.register_dim:
            raise ValueError(
                f"`inputs_embeds` must have shape (batch, seq_len, {self.config.register_dim}), "
                f"got {tuple(inputs_embeds.shape)}."
            )
        batch_size, seq_len = inputs_embeds.shape[:2]
        device = inputs_embeds.device
        if attention_mask is None:
            attention_mask = torch.ones(batch_size, seq_len, dtype=torch.long, device=device)
        for name, mask in (("attention_mask", attention_mask), ("visible_mask", visible_mask)):
            if mask is not None and tuple(mask.shape) != (batch_size, seq_len):
                raise ValueError(f"`{name}` must have shape {(batch_size, seq_len)}, got {tuple(mask.shape)}.")
        valid = attention_mask.bool()
        lengths = valid.long().sum(dim=1)  # (B,) real tokens per example (right padding)
        keys = valid if visible_mask is None else valid & visible_mask.bool()

        num_suffix = self.config.num_registers - 1
        suffix = self.suffix_registers.to(inputs_embeds.dtype).expand(batch_size, -1, -1)
        embeds = torch.cat((inputs_embeds, suffix), dim=1)  # (B, n + K - 1, d)
        text_positions = torch.arange(seq_len, device=device).expand(batch_size, seq_len)
        suffix_positions = lengths[:, None] + torch.arange(num_suffix, device=device)[None, :]
        position_ids = torch.cat((text_positions, suffix_positions), dim=1)
        full_mask = torch.cat((keys, torch.ones(batch_size, num_suffix, dtype=torch.bool, device=device)), dim=1)

        outputs = self._trunk()(
            inputs_embeds=embeds, attention_mask=full_mask.long(), position_ids=position_ids, return_dict=True
        )
        hidden = outputs.last_hidden_state  # (B, n + K - 1, d)

        # z¹: last-token pooling at the final valid (visible) token; the final register if there is none.
        has_key = keys.any(dim=1)
        last_key = seq_len - 1 - keys.flip(dims=[1]).long().argmax(dim=1)
        summary_index = torch.where(has_key, last_key, torch.full_like(last_key, seq_len + num_suffix - 1))
        summary = hidden[torch.arange(batch_size, device=device), summary_index]  # (B, d)
        registers = torch.cat((summary[:, None], hidden[:, seq_len:]), dim=1)  # (B, K, d)
        if self.config.normalize_registers:
            registers = normalize_registers(registers)
        if not return_dict:
            return registers, hidden
        return RegisterEncoderOutput(registers=registers, last_hidden_state=hidden)


__all__ = ["RegisterEncoderModel", "RegisterEncoderOutput", "nested_dropout", "normalize_registers"]
