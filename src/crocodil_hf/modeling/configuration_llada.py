"""LLaDA configuration, field-compatible with the official `GSAI-ML/LLaDA-8B-Base` `config.json` (OLMo style).

Remote-code safe: imports only `transformers` (docs/architecture.md, "Remote code").

References:
    Nie et al. 2025, "Large Language Diffusion Models" (LLaDA); the official `configuration_llada.py` / `config.json`.
"""

from transformers import PreTrainedConfig

_SUPPORTED = {
    "block_type": ("llama",),
    "layer_norm_type": ("rms",),
    "activation_type": ("silu",),
    "init_fn": ("mitchell", "normal"),
}


class LLaDAConfig(PreTrainedConfig):
    r"""Configuration of a bidirectional LLaDA demasker.

    Field names follow the official checkpoint so that its `config.json` loads unchanged; the usual transformers names
    (`hidden_size`, `num_attention_heads`, ...) are aliases. Defaults are those of LLaDA-8B-Base.

    Args:
        d_model: Width of the residual stream.
        n_heads: Number of query heads.
        n_kv_heads: Number of key/value heads (GQA when smaller than `n_heads`); `None` means `n_heads`.
        n_layers: Number of transformer blocks.
        mlp_hidden_size: Width of the SwiGLU MLP; `None` means `mlp_ratio * d_model`.
        mlp_ratio: Used only when `mlp_hidden_size` is `None`.
        vocab_size: Number of real tokens.
        embedding_size: Rows of the embedding matrix (>= `vocab_size`, padded for efficiency); `None` means `vocab_size`.
        rope_theta: RoPE base.
        rms_norm_eps: RMSNorm epsilon.
        max_sequence_length: Longest sequence the model was trained on (informative; RoPE is computed on the fly).
        weight_tying: Tie the output head to the input embedding.
        mask_token_id: Id of the `[MASK]` token used by masked diffusion.
        init_fn: `"mitchell"` (official) or `"normal"` initialisation for from-scratch models.
        init_std: Standard deviation for `init_fn="normal"`.

    Example:
        ```python
        >>> from crocodil_hf import LLaDAConfig, LLaDAModelLM
        >>> config = LLaDAConfig(d_model=64, n_heads=4, n_layers=2, mlp_hidden_size=128, vocab_size=100,
        ...                      embedding_size=128, mask_token_id=99, eos_token_id=98, pad_token_id=98)
        >>> model = LLaDAModelLM(config)
        ```
    """

    model_type = "llada"
    attribute_map = {
        "hidden_size": "d_model",
        "num_attention_heads": "n_heads",
        "num_key_value_heads": "n_kv_heads",
        "num_hidden_layers": "n_layers",
        "intermediate_size": "mlp_hidden_size",
        "max_position_embeddings": "max_sequence_length",
        "tie_word_embeddings": "weight_tying",
    }

    d_model: int = 4096
    n_heads: int = 32
    n_kv_heads: int | None = None
    n_layers: int = 32
    mlp_hidden_size: int | None = 12288
    mlp_ratio: int = 4
    vocab_size: int = 126464
    embedding_size: int | None = 126464
    rope_theta: float = 500000.0
    rms_norm_eps: float = 1e-5
    max_sequence_length: int = 4096
    weight_tying: bool = False
    include_bias: bool = False
    include_qkv_bias: bool = False
    activation_type: str = "silu"
    block_type: str = "llama"
    layer_norm_type: str = "rms"
    layer_norm_with_affine: bool = True
    rope: bool = True
    rope_full_precision: bool = True
    scale_logits: bool = False
    input_emb_norm: bool = False
    alibi: bool = False
    attention_layer_norm: bool = False
    multi_query_attention: bool | None = None
    attention_dropout: float = 0.0
    residual_dropout: float = 0.0
    embedding_dropout: float = 0.0
    init_fn: str = "mitchell"
    init_std: float = 0.02
    mask_token_id: int = 126336
    pad_token_id: int | None = 126081
    eos_token_id: int | None = 126081
    bos_token_id: int | None = 126080
    use_cache: bool = False

    def __post_init__(self, **kwargs):
        if self.n_kv_heads is None:
            self.n_kv_heads = 1 if self.multi_query_attention else self.n_heads
        if self.mlp_hidden_size is None:
            self.mlp_hidden_size = self.mlp_ratio * self.d_model
        if self.embedding_size is None:
            self.embedding_size = self.vocab_size
        super().__post_init__(**kwargs)
        self.validate_architecture()

    def validate_architecture(self):
        """Raise `ValueError` (naming the field) for values the native implementation cannot honour."""
        for name in ("d_model", "n_heads", "n_kv_heads", "n_layers", "mlp_hidden_size", "vocab_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if self.d_model % self.n_heads != 0:
            raise ValueError(f"`d_model` ({self.d_model}) must be divisible by `n_heads` ({self.n_heads}).")
        if (self.d_model // self.n_heads) % 2 != 0:
            raise ValueError(f"the head dimension `d_model / n_heads` ({self.d_model // self.n_heads}) must be even.")
        if self.n_heads % self.n_kv_heads != 0:
            raise ValueError(f"`n_heads` ({self.n_heads}) must be divisible by `n_kv_heads` ({self.n_kv_heads}).")
        if self.embedding_size < self.vocab_size:
            raise ValueError(f"`embedding_size` ({self.embedding_size}) must be >= `vocab_size` ({self.vocab_size}).")
        if not 0 <= self.mask_token_id < self.embedding_size:
            raise ValueError(f"`mask_token_id` ({self.mask_token_id}) must lie in [0, embedding_size).")
        if self.rope_theta <= 0:
            raise ValueError(f"`rope_theta` must be positive, got {self.rope_theta}.")
        if self.rms_norm_eps <= 0:
            raise ValueError(f"`rms_norm_eps` must be positive, got {self.rms_norm_eps}.")
        for name in ("attention_dropout", "residual_dropout", "embedding_dropout"):
            value = getattr(self, name)
            if not 0.0 <= value < 1.0:
                raise ValueError(f"`{name}` must lie in [0, 1), got {value}.")
        for name, allowed in _SUPPORTED.items():
            if getattr(self, name) not in allowed:
                raise ValueError(f"`{name}={getattr(self, name)!r}` is not supported; expected one of {allowed}.")
        if not self.rope or self.alibi or self.attention_layer_norm or self.include_bias or self.include_qkv_bias:
            raise ValueError(
                "only the LLaDA-8B architecture is implemented: `rope=True`, `alibi=False`, "
                "`attention_layer_norm=False`, `include_bias=False`, `include_qkv_bias=False`."
            )

    @property
    def head_dim(self) -> int:
        return self.d_model // self.n_heads


__all__ = ["LLaDAConfig"]
