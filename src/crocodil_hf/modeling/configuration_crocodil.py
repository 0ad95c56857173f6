"""Configurations of the CRoCoDiL transformers models: the register encoder h_φ and the guided demasker f_θ.

Remote-code safe: imports only `transformers` and siblings (docs/architecture.md, "Remote code").
"""

from transformers import AutoConfig, PreTrainedConfig

from .configuration_llada import LLaDAConfig


def _build_backbone_config(backbone_config) -> PreTrainedConfig:
    """Turn a nested backbone config (dict or config) into a config object; LLaDA is known without registration."""
    if isinstance(backbone_config, PreTrainedConfig):
        return backbone_config
    if not isinstance(backbone_config, dict):
        raise TypeError(
            f"`backbone_config` must be a dict or a PreTrainedConfig, got {type(backbone_config).__name__}."
        )
    backbone_config = dict(backbone_config)
    model_type = backbone_config.pop("model_type", None)
    if model_type is None:
        raise ValueError("`backbone_config` must name its `model_type` (e.g. 'qwen3', 'bert', 'llada').")
    if model_type == LLaDAConfig.model_type:
        return LLaDAConfig(**backbone_config)
    try:
        return AutoConfig.for_model(model_type, **backbone_config)
    except ValueError as err:
        raise ValueError(f"unknown backbone type `backbone_config.model_type={model_type!r}`: {err}") from err


class RegisterEncoderConfig(PreTrainedConfig):
    r"""Configuration of the register encoder h_φ (paper App. C).

    A backbone (any transformers encoder or decoder with `inputs_embeds` and `position_ids`) reads the text followed
    by K−1 learned suffix registers. z⁽¹⁾ is the backbone output at the final valid token (last-token pooling, as the
    Qwen embedder does) and z⁽²..ᴷ⁾ the outputs at the register positions; each register is rescaled to norm √d.

    Args:
        backbone_config: Nested config of the backbone (dict with `model_type`, or a config object).
        num_registers: K, the number of registers in the bank (>= 1).
        normalize_registers: Rescale each register to norm √d (paper App. C); turn off only for ablations.
        backbone_name_or_path: Where the backbone's initial weights came from (informative; set by `from_backbone`).

    Example:
        ```python
        >>> from crocodil_hf import RegisterEncoderConfig
        >>> config = RegisterEncoderConfig(
        ...     backbone_config={"model_type": "qwen3", "hidden_size": 64, "num_hidden_layers": 2,
        ...                      "num_attention_heads": 4, "num_key_value_heads": 2, "intermediate_size": 128,
        ...                      "vocab_size": 100, "head_dim": 16},
        ...     num_registers=8)
        >>> config.register_dim
        64
        ```
    """

    model_type = "crocodil_register_encoder"

    backbone_config: dict | PreTrainedConfig | None = None
    num_registers: int = 8
    normalize_registers: bool = True
    backbone_name_or_path: str | None = None

    def __post_init__(self, **kwargs):
        if self.backbone_config is None:
            raise ValueError("`backbone_config` is required (e.g. {'model_type': 'qwen3', ...}).")
        self.backbone_config = _build_backbone_config(self.backbone_config)
        super().__post_init__(**kwargs)
        self.validate_architecture()

    def validate_architecture(self):
        if not isinstance(self.num_registers, int) or isinstance(self.num_registers, bool) or self.num_registers < 1:
            raise ValueError(f"`num_registers` must be a positive integer, got {self.num_registers!r}.")
        if not hasattr(self.backbone_config, "hidden_size"):
            raise ValueError("`backbone_config` must define `hidden_size`.")

    @property
    def register_dim(self) -> int:
        """d, the width of each register (the backbone's hidden size)."""
        return self.backbone_config.hidden_size


class GuidedLLaDAConfig(LLaDAConfig):
    r"""Configuration of the guided demasker f_θ: a LLaDA model plus a register prefix (paper App. C).

    Input layout: `[⟨START⟩, W·z⁽¹⁾ … W·z⁽ᵏ⁾, ⟨END⟩, E(x_t)]`. All LLaDA fields are inherited unchanged.

    Args:
        num_registers: K, the most registers the prefix accepts.
        register_dim: d, the width of each register (the encoder's `register_dim`).
        prefix_rope_pairs: Number of rotary frequency pairs (the highest-frequency ones) on which prefix tokens use
            their prefix-local index instead of the global position (two-axis RoPE); must be < head_dim / 2.
        default_gen_length: L, the generation length the demasker was trained for (the autoencoder stage's
            `max_length` − 1, recorded by `crocodil assemble`); the pipeline's default `gen_length` and the length
            past which it warns. `None` when unknown.
    """

    model_type = "guided_llada"

    num_registers: int = 8
    register_dim: int = 1024
    prefix_rope_pairs: int = 4
    default_gen_length: int | None = None

    def validate_architecture(self):
        super().validate_architecture()
        for name in ("num_registers", "register_dim"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if self.default_gen_length is not None and not 1 <= self.default_gen_length < self.max_sequence_length:
            raise ValueError(
                f"`default_gen_length` must lie in [1, max_sequence_length = {self.max_sequence_length}), "
                f"got {self.default_gen_length}."
            )
        if not 0 <= self.prefix_rope_pairs < self.head_dim // 2:
            raise ValueError(
                f"`prefix_rope_pairs` must lie in [0, head_dim / 2 = {self.head_dim // 2}), got {self.prefix_rope_pairs}."
            )


__all__ = ["GuidedLLaDAConfig", "RegisterEncoderConfig"]
