"""Native LLaDA: a bidirectional Llama-style masked-diffusion demasker that loads the official checkpoint unchanged.

Module and parameter names mirror the official `modeling_llada.py` (`model.transformer.blocks.{i}.q_proj`, ...), so the
official safetensors load without key conversion and our checkpoints load in the official code.
Remote-code safe: imports only `torch`, `transformers` and siblings (docs/architecture.md, "Remote code").

References:
    Nie et al. 2025, "Large Language Diffusion Models" (LLaDA), official `GSAI-ML/LLaDA-8B-Base` modeling code;
    transformers `models/llama/modeling_llama.py` (reading order and attention interface).
"""

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.cache_utils import Cache, StaticLayer
from transformers.modeling_layers import GradientCheckpointingLayer
from transformers.modeling_outputs import MaskedLMOutput
from transformers.modeling_utils import ALL_ATTENTION_FUNCTIONS
from transformers.utils import ModelOutput

from .configuration_llada import LLaDAConfig


def check_token_ids(input_ids: torch.Tensor, vocab_size: int) -> None:
    """Raise a `ValueError` naming the vocabulary size when ids are not integers in `[0, vocab_size)` (an embedding
    lookup would fail with a bare `IndexError`, or a device-side assert on GPU)."""
    if input_ids.is_floating_point() or input_ids.is_complex() or input_ids.dtype == torch.bool:
        raise ValueError(f"`input_ids` must be integer token ids, got dtype {input_ids.dtype}.")
    if input_ids.numel() and bool(((input_ids < 0) | (input_ids >= vocab_size)).any()):
        low, high = int(input_ids.min()), int(input_ids.max())
        raise ValueError(
            f"`input_ids` must lie in [0, {vocab_size}) (the vocabulary size), got values in [{low}, {high}]."
        )


class LLaDARMSNorm(nn.Module):
    """RMSNorm with the official numerics: normalise in float32, cast back, then scale."""

    def __init__(self, config: LLaDAConfig):
        super().__init__()
        self.eps = config.rms_norm_eps
        self.weight = nn.Parameter(torch.ones(config.d_model))

    def forward(self, hidden_states: torch.Tensor) -> torch.Tensor:
        input_dtype = hidden_states.dtype
        hidden_states = hidden_states.to(torch.float32)
        variance = hidden_states.pow(2).mean(-1, keepdim=True)
        hidden_states = (hidden_states * torch.rsqrt(variance + self.eps)).to(input_dtype)
        return self.weight * hidden_states


class LLaDARotaryEmbedding(nn.Module):
    """RoPE with LLaDA's half-split convention; angles are computed in float32 from (possibly fractional) positions."""

    def __init__(self, config: LLaDAConfig):
        super().__init__()
        dim = config.head_dim
        inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
        self.inv_freq = nn.Buffer(inv_freq, persistent=False)

    def angles(self, position_ids: torch.Tensor) -> torch.Tensor:
        """Rotation angles `(B, T, head_dim / 2)` for integer positions `(B, T)`."""
        return position_ids.to(torch.float32)[..., None] * self.inv_freq.to(position_ids.device)

    @staticmethod
    def cos_sin(angles: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """`(cos, sin)` of shape `(B, T, head_dim)` from angles `(B, T, head_dim / 2)`."""
        emb = torch.cat((angles, angles), dim=-1)
        return emb.cos(), emb.sin()

    @torch.no_grad()
    def forward(self, position_ids: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.cos_sin(self.angles(position_ids))


def rotate_half(x: torch.Tensor) -> torch.Tensor:
    """Rotate the two halves of the last dimension: `(x1, x2) -> (-x2, x1)`."""
    x1, x2 = x.chunk(2, dim=-1)
    return torch.cat((-x2, x1), dim=-1)


def apply_rotary_pos_emb(
    q: torch.Tensor, k: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor, full_precision: bool = True
) -> tuple[torch.Tensor, torch.Tensor]:
    """Apply RoPE to `q`, `k` of shape `(B, H, T, D)` with `cos`, `sin` of shape `(B, T, D)`."""
    cos, sin = cos[:, None], sin[:, None]
    q_, k_ = (q.float(), k.float()) if full_precision else (q, k)
    cos, sin = cos.to(q_.dtype), sin.to(q_.dtype)
    q_ = q_ * cos + rotate_half(q_) * sin
    k_ = k_ * cos + rotate_half(k_) * sin
    return q_.to(q.dtype), k_.to(k.dtype)


def repeat_kv(hidden_states: torch.Tensor, n_rep: int) -> torch.Tensor:
    """`(B, H_kv, T, D) -> (B, H_kv * n_rep, T, D)`, each kv head repeated for its group of query heads."""
    if n_rep == 1:
        return hidden_states
    batch, num_kv_heads, seq_len, head_dim = hidden_states.shape
    hidden_states = hidden_states[:, :, None].expand(batch, num_kv_heads, n_rep, seq_len, head_dim)
    return hidden_states.reshape(batch, num_kv_heads * n_rep, seq_len, head_dim)


def eager_attention_forward(
    module: nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    scaling: float,
    dropout: float = 0.0,
    **kwargs,
) -> tuple[torch.Tensor, torch.Tensor]:
    key = repeat_kv(key, module.num_key_value_groups)
    value = repeat_kv(value, module.num_key_value_groups)
    attn_weights = torch.matmul(query, key.transpose(2, 3)) * scaling
    if attention_mask is not None:
        attn_weights = attn_weights + attention_mask
    attn_weights = nn.functional.softmax(attn_weights, dim=-1, dtype=torch.float32).to(query.dtype)
    attn_weights = nn.functional.dropout(attn_weights, p=dropout, training=module.training)
    attn_output = torch.matmul(attn_weights, value).transpose(1, 2).contiguous()
    return attn_output, attn_weights


class CanvasCacheLayer(StaticLayer):
    """One layer's keys and values over a whole diffusion canvas (after RoPE). Unlike an autoregressive cache, a
    masked-diffusion canvas is rewritten in place: each call writes the keys/values of the positions it recomputes
    (`cache_kwargs["cache_position"]`, any positions, in any order) and attends to all of them."""

    def update(self, key_states, value_states, cache_kwargs=None, *args, **kwargs):
        if not self.is_initialized:
            self.lazy_initialization(key_states, value_states)
        position = (cache_kwargs or {}).get("cache_position")
        if position is None:
            raise ValueError("a canvas cache is written at explicit positions: pass `cache_position`.")
        self.keys.index_copy_(2, position, key_states.to(self.keys.dtype))
        self.values.index_copy_(2, position, value_states.to(self.values.dtype))
        self.cumulative_length.fill_(self.max_cache_len)
        return self.keys, self.values


class CanvasCache(Cache):
    """The approximate key/value cache of a masked-diffusion sampler (Fast-dLLM's prefix and dual caches): a
    transformers `Cache` of one `CanvasCacheLayer` per block, filled by one full forward over the canvas
    (`cache_position=None`) and then read by calls that recompute only a window of positions (`cache_position` =
    the window's positions). Keys/values outside the window are those of the last full forward: stale by design,
    refreshed when the caller starts a new block or changes the registers.

    Example:
        ```python
        >>> import torch
        >>> from crocodil_hf import LLaDAConfig, LLaDAModelLM
        >>> from crocodil_hf.modeling.modeling_llada import CanvasCache
        >>> model = LLaDAModelLM(LLaDAConfig(d_model=64, n_heads=4, n_layers=2, mlp_hidden_size=128,
        ...                                  vocab_size=100, embedding_size=128, mask_token_id=99))
        >>> ids = torch.tensor([[1, 5, 99, 99, 99, 2]])
        >>> cache = CanvasCache(model.config.n_layers, ids.shape[1])
        >>> full = model(ids, past_key_values=cache).logits  # fills the cache
        >>> window = torch.arange(2, 4)
        >>> part = model(ids[:, window], past_key_values=cache, cache_position=window).logits
        >>> torch.allclose(part, full[:, window], atol=1e-5)
        True
        ```
    """

    def __init__(self, num_layers: int, length: int):
        super().__init__(layers=[CanvasCacheLayer(max_cache_len=length) for _ in range(num_layers)])
        self.length = length

    @property
    def filled(self) -> bool:
        return bool(self.layers) and self.layers[0].is_initialized


def check_cache_call(
    cache: CanvasCache | None, cache_position: torch.LongTensor | None, seq_len: int, device
) -> torch.LongTensor | None:
    """The canvas positions a call writes: all of them when it fills `cache`, else `cache_position` (checked)."""
    if cache is None:
        if cache_position is not None:
            raise ValueError("`cache_position` was given without `past_key_values`.")
        return None
    if not isinstance(cache, CanvasCache):
        raise ValueError(f"`past_key_values` must be a CanvasCache, got {type(cache).__name__}.")
    if cache_position is None:
        if seq_len != cache.length:
            raise ValueError(f"filling a CanvasCache of length {cache.length} needs the whole canvas, got {seq_len}.")
        return torch.arange(seq_len, device=device)
    if not cache.filled:
        raise ValueError("this CanvasCache is empty: fill it with a call over the whole canvas (no `cache_position`).")
    if cache_position.dim() != 1 or cache_position.shape[0] != seq_len:
        raise ValueError(f"`cache_position` must have shape ({seq_len},), got {tuple(cache_position.shape)}.")
    return cache_position


class LLaDABlock(GradientCheckpointingLayer):
    """One LLaDA (Llama-style) block. Parameter names are the official ones; `ff_proj` is the SwiGLU gate."""

    def __init__(self, config: LLaDAConfig, layer_idx: int):
        super().__init__()
        self.config = config
        self.layer_idx = layer_idx
        self.head_dim = config.head_dim
        self.num_key_value_groups = config.n_heads // config.n_kv_heads
        self.scaling = self.head_dim**-0.5
        self.is_causal = False  # masked diffusion: every position sees every position

        self.attn_norm = LLaDARMSNorm(config)
        self.q_proj = nn.Linear(config.d_model, config.n_heads * self.head_dim, bias=False)
        self.k_proj = nn.Linear(config.d_model, config.n_kv_heads * self.head_dim, bias=False)
        self.v_proj = nn.Linear(config.d_model, config.n_kv_heads * self.head_dim, bias=False)
        self.attn_out = nn.Linear(config.d_model, config.d_model, bias=False)

        self.ff_norm = LLaDARMSNorm(config)
        self.ff_proj = nn.Linear(config.d_model, config.mlp_hidden_size, bias=False)
        self.up_proj = nn.Linear(config.d_model, config.mlp_hidden_size, bias=False)
        self.ff_out = nn.Linear(config.mlp_hidden_size, config.d_model, bias=False)
        # residual outputs get a depth-scaled init (see `LLaDAPreTrainedModel._init_weights`)
        self.attn_out._llada_residual_layer = layer_idx
        self.ff_out._llada_residual_layer = layer_idx
        self.dropout = nn.Dropout(config.residual_dropout)

    def attention(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None,
        past_key_values: Cache | None = None,
        cache_position: torch.LongTensor | None = None,
    ) -> torch.Tensor:
        input_shape = hidden_states.shape[:-1]
        hidden_shape = (*input_shape, -1, self.head_dim)
        query = self.q_proj(hidden_states).view(hidden_shape).transpose(1, 2)  # (B, H, T, D)
        key = self.k_proj(hidden_states).view(hidden_shape).transpose(1, 2)  # (B, H_kv, T, D)
        value = self.v_proj(hidden_states).view(hidden_shape).transpose(1, 2)
        cos, sin = position_embeddings
        query, key = apply_rotary_pos_emb(query, key, cos, sin, self.config.rope_full_precision)
        if past_key_values is not None:  # write this call's positions, attend to the whole cached canvas
            key, value = past_key_values.update(key, value, self.layer_idx, {"cache_position": cache_position})

        attention_interface: Callable = ALL_ATTENTION_FUNCTIONS.get_interface(
            self.config._attn_implementation, eager_attention_forward
        )
        attn_output, _ = attention_interface(
            self,
            query,
            key,
            value,
            attention_mask,
            dropout=self.config.attention_dropout if self.training else 0.0,
            scaling=self.scaling,
            is_causal=False,
        )
        return self.attn_out(attn_output.reshape(*input_shape, -1).contiguous())

    def forward(
        self,
        hidden_states: torch.Tensor,
        position_embeddings: tuple[torch.Tensor, torch.Tensor],
        attention_mask: torch.Tensor | None = None,
        past_key_values: Cache | None = None,
        cache_position: torch.LongTensor | None = None,
    ) -> torch.Tensor:
        # Self Attention
        residual = hidden_states
        hidden_states = self.attention(
            self.attn_norm(hidden_states), position_embeddings, attention_mask, past_key_values, cache_position
        )
        hidden_states = residual + self.dropout(hidden_states)

        # Fully Connected
        residual = hidden_states
        hidden_states = self.ff_norm(hidden_states)
        hidden_states = self.ff_out(nn.functional.silu(self.ff_proj(hidden_states)) * self.up_proj(hidden_states))
        return residual + self.dropout(hidden_states)


@dataclass
class LLaDAModelOutput(ModelOutput):
    """Output of the LLaDA trunk: final normed hidden states and, on request, every layer's input."""

    last_hidden_state: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None


def padding_attention_bias(attention_mask: torch.Tensor | None, dtype: torch.dtype) -> torch.Tensor | None:
    """Key-padding mask `(B, T)` of 1/0 -> additive bias `(B, 1, 1, T)`; `None` when nothing is padded."""
    if attention_mask is None or bool(attention_mask.all()):
        return None
    bias = torch.zeros(attention_mask.shape, dtype=dtype, device=attention_mask.device)
    bias = bias.masked_fill(~attention_mask.bool(), torch.finfo(dtype).min)
    return bias[:, None, None, :]


class LLaDAModel(nn.Module):
    """The LLaDA trunk (embedding, blocks, final norm) plus the output head, under the official `transformer` dict."""

    def __init__(self, config: LLaDAConfig):
        super().__init__()
        self.config = config
        modules = {
            "wte": nn.Embedding(config.embedding_size, config.d_model),
            "emb_drop": nn.Dropout(config.embedding_dropout),
            "blocks": nn.ModuleList(LLaDABlock(config, i) for i in range(config.n_layers)),
            "ln_f": LLaDARMSNorm(config),
        }
        if not config.weight_tying:
            modules["ff_out"] = nn.Linear(config.d_model, config.embedding_size, bias=False)
        self.transformer = nn.ModuleDict(modules)
        self.rotary_emb = LLaDARotaryEmbedding(config)

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        attention_mask: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        position_embeddings: tuple[torch.Tensor, torch.Tensor] | None = None,
        output_hidden_states: bool = False,
        past_key_values: CanvasCache | None = None,
        cache_position: torch.LongTensor | None = None,
        **kwargs,
    ) -> LLaDAModelOutput:
        """Run the trunk.

        Args:
            input_ids: `(B, T)` token ids; exclusive with `inputs_embeds`.
            inputs_embeds: `(B, T, d_model)` input embeddings (the guided demasker prepends registers this way).
            attention_mask: `(B, T)` with 1 for real tokens and 0 for padding; padded keys are never attended to.
            position_ids: `(B, T)` RoPE positions; default `0..T-1`.
            position_embeddings: precomputed `(cos, sin)` of shape `(B, T, head_dim)`; overrides `position_ids`.
            past_key_values: a `CanvasCache` of the whole canvas (length C). With `cache_position=None` the inputs
                are the whole canvas (T = C) and fill it; else the inputs are the T canvas positions in
                `cache_position` (`position_ids` default to them), which are recomputed and written, while
                `attention_mask` covers all C keys.
            cache_position: `(T,)` the canvas positions of the inputs, with `past_key_values`.
        """
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of `input_ids` and `inputs_embeds`.")
        if inputs_embeds is None:
            if input_ids.dim() != 2:
                raise ValueError(f"`input_ids` must have shape (batch, seq_len), got {tuple(input_ids.shape)}.")
            check_token_ids(input_ids, self.config.vocab_size)
            inputs_embeds = self.transformer.wte(input_ids)
        elif inputs_embeds.dim() != 3 or inputs_embeds.shape[-1] != self.config.d_model:
            raise ValueError(
                f"`inputs_embeds` must have shape (batch, seq_len, {self.config.d_model}), "
                f"got {tuple(inputs_embeds.shape)}."
            )
        batch_size, seq_len = inputs_embeds.shape[:2]
        cache_position = check_cache_call(past_key_values, cache_position, seq_len, inputs_embeds.device)
        key_len = seq_len if past_key_values is None else past_key_values.length
        if attention_mask is not None and tuple(attention_mask.shape) != (batch_size, key_len):
            raise ValueError(
                f"`attention_mask` must have shape {(batch_size, key_len)}, got {tuple(attention_mask.shape)}."
            )
        if position_embeddings is None:
            if position_ids is None:
                position_ids = (
                    torch.arange(seq_len, device=inputs_embeds.device) if cache_position is None else cache_position
                ).expand(batch_size, seq_len)
            position_embeddings = self.rotary_emb(position_ids)

        hidden_states = self.transformer.emb_drop(inputs_embeds)
        attention_bias = padding_attention_bias(attention_mask, hidden_states.dtype)
        all_hidden_states = () if output_hidden_states else None
        for block in self.transformer.blocks:
            if output_hidden_states:
                all_hidden_states += (hidden_states,)
            hidden_states = block(hidden_states, position_embeddings, attention_bias, past_key_values, cache_position)
        hidden_states = self.transformer.ln_f(hidden_states)
        if output_hidden_states:
            all_hidden_states += (hidden_states,)
        return LLaDAModelOutput(last_hidden_state=hidden_states, hidden_states=all_hidden_states)

    def lm_head(self, hidden_states: torch.Tensor) -> torch.Tensor:
        """Logits `(..., embedding_size)` from final hidden states (official: no slicing to `vocab_size`)."""
        if self.config.weight_tying:
            logits = nn.functional.linear(hidden_states, self.transformer.wte.weight)
        else:
            logits = self.transformer.ff_out(hidden_states)
        if self.config.scale_logits:
            logits = logits * (1 / math.sqrt(self.config.d_model))
        return logits


def strict_from_pretrained(cls, from_pretrained, *args, strict: bool = True, **kwargs):
    """Call transformers' `from_pretrained` and raise when a weight is missing or mismatched: a trained
    component is never silently random-initialised. `strict=False` restores transformers' warn-only behaviour."""
    want_info = kwargs.pop("output_loading_info", False)
    if strict:  # load mismatched shapes as "mismatched" (reported below) rather than transformers' bare RuntimeError
        kwargs.setdefault("ignore_mismatched_sizes", True)
    where = f"{args[0] if args else ''!s}" + (f" (subfolder {kwargs['subfolder']})" if kwargs.get("subfolder") else "")
    try:
        model, info = from_pretrained(*args, output_loading_info=True, **kwargs)
    except Exception as err:
        if type(err).__name__ != "SafetensorError":
            raise
        raise ValueError(
            f"{cls.__name__}.from_pretrained({where}): a weights file is corrupt or truncated ({err}); re-download "
            "or re-save it."
        ) from err
    if strict and (info["missing_keys"] or info["mismatched_keys"] or info["unexpected_keys"]):
        where = f"{args[0] if args else ''!s}" + (
            f" (subfolder {kwargs['subfolder']})" if kwargs.get("subfolder") else ""
        )
        raise ValueError(
            f"{cls.__name__}.from_pretrained({where}): the checkpoint does not match the model; "
            f"missing {sorted(info['missing_keys'])}, unexpected {sorted(info['unexpected_keys'])}, "
            f"mismatched {info['mismatched_keys']} (pass strict=False to initialise or drop them instead)."
        )
    return (model, info) if want_info else model


class LLaDAPreTrainedModel(PreTrainedModel):
    """Capability flags and the official ("mitchell") initialisation for from-scratch models."""

    config_class = LLaDAConfig
    config: LLaDAConfig
    base_model_prefix = "model"
    main_input_name = "input_ids"
    supports_gradient_checkpointing = True
    _no_split_modules = ["LLaDABlock"]
    _supports_sdpa = True
    _supports_flash_attn = False
    _supports_flex_attn = False
    _supports_attention_backend = True

    @classmethod
    def from_pretrained(cls, *args, strict: bool = True, **kwargs):
        """`PreTrainedModel.from_pretrained` that raises on missing or mismatched weights unless `strict=False`."""
        return strict_from_pretrained(cls, super().from_pretrained, *args, strict=strict, **kwargs)

    def canvas_cache(self, length: int) -> CanvasCache:
        """An empty `CanvasCache` of `length` keys per layer for this model (for the guided demasker, `cache_length`:
        register prefix + text)."""
        return CanvasCache(self.config.n_layers, length)

    def get_input_embeddings(self) -> nn.Embedding:
        return self.model.transformer.wte

    def set_input_embeddings(self, value: nn.Embedding) -> None:
        self.model.transformer.wte = value

    def get_output_embeddings(self) -> nn.Module | None:
        return None if self.config.weight_tying else self.model.transformer.ff_out

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        """Official "mitchell" init: N(0, 1/fan_in) truncated at 3 std, residual outputs scaled by 1/sqrt(2(l+1)).

        `init_fn="normal"` uses N(0, init_std) with residual outputs scaled by 1/sqrt(2 n_layers). Runs per leaf
        module (transformers skips parameter-less parents in custom code), so residual outputs carry a tag.
        """
        config = self.config
        mitchell = config.init_fn == "mitchell"
        if isinstance(module, nn.Linear):
            std = 1.0 / math.sqrt(module.in_features) if mitchell else config.init_std
            layer_idx = getattr(module, "_llada_residual_layer", None)
            if layer_idx is not None:
                std = std / math.sqrt(2 * (layer_idx + 1)) if mitchell else std / math.sqrt(2 * config.n_layers)
            self._normal(module.weight, std)
        elif isinstance(module, nn.Embedding):
            self._normal(module.weight, 1.0 / math.sqrt(module.embedding_dim) if mitchell else config.init_std)
        elif isinstance(module, LLaDARMSNorm):
            init.ones_(module.weight)
        elif isinstance(module, LLaDARotaryEmbedding):
            dim = config.head_dim
            inv_freq = 1.0 / (config.rope_theta ** (torch.arange(0, dim, 2, dtype=torch.float) / dim))
            init.copy_(module.inv_freq, inv_freq)

    def _normal(self, weight: torch.Tensor, std: float) -> None:
        if self.config.init_fn == "mitchell":
            init.trunc_normal_(weight, mean=0.0, std=std, a=-3 * std, b=3 * std)
        else:
            init.normal_(weight, mean=0.0, std=std)


class LLaDAModelLM(LLaDAPreTrainedModel):
    """LLaDA masked-diffusion language model: `(input_ids | inputs_embeds) -> logits` over the full embedding rows.

    Example:
        ```python
        >>> import torch
        >>> from crocodil_hf import LLaDAConfig, LLaDAModelLM
        >>> model = LLaDAModelLM(LLaDAConfig(d_model=64, n_heads=4, n_layers=2, mlp_hidden_size=128,
        ...                                  vocab_size=100, embedding_size=128, mask_token_id=99))
        >>> model(torch.tensor([[1, 99, 99, 2]])).logits.shape
        torch.Size([1, 4, 128])
        ```
    """

    def __init__(self, config: LLaDAConfig):
        super().__init__(config)
        self.model = LLaDAModel(config)
        self.post_init()

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        past_key_values: CanvasCache | None = None,
        cache_position: torch.LongTensor | None = None,
        **kwargs,
    ) -> MaskedLMOutput | tuple:
        """Forward pass.

        Args:
            input_ids: `(B, T)` partially masked ids (`config.mask_token_id` at masked positions).
            attention_mask: `(B, T)`, 1 for real tokens, 0 for padding.
            inputs_embeds: `(B, T, d_model)` instead of `input_ids`.
            position_ids: `(B, T)` RoPE positions, default `0..T-1`.
            labels: `(B, T)` targets; positions set to -100 are ignored. The loss is the plain mean cross-entropy;
                masked-diffusion weighting (Eq. 5) lives in the training code.
            past_key_values, cache_position: an approximate key/value cache of the canvas (`CanvasCache`): a call
                without `cache_position` fills it, a call on the positions `cache_position` reads it.
        """
        output_hidden_states = bool(output_hidden_states or self.config.output_hidden_states)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        outputs = self.model(
            input_ids=input_ids,
            inputs_embeds=inputs_embeds,
            attention_mask=attention_mask,
            position_ids=position_ids,
            output_hidden_states=output_hidden_states,
            past_key_values=past_key_values,
            cache_position=cache_position,
        )
        logits = self.model.lm_head(outputs.last_hidden_state)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
            )
        if not return_dict:
            output = (logits, outputs.hidden_states)
            return ((loss,) + output) if loss is not None else output
        return MaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states)


__all__ = ["CanvasCache", "LLaDAModel", "LLaDAModelLM", "LLaDAPreTrainedModel"]
