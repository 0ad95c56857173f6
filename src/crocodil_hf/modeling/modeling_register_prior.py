"""Register prior g_ψ: a PixArt-α style 1-D DiT over register banks, x₀-prediction (paper App. E, Alg. 4–5).

The K registers of width d are the tokens. Input projection d → D, fixed 1-D sin-cos positions over the register
index, blocks with adaLN-single timestep modulation (diffusers' `AdaLayerNormSingle` embeds the timestep, its
`Attention` and `FeedForward` do the work), optional cross-attention to a conditioning sequence (ConWithinDisc's
conditional prior), output projection back to d. Every register may carry its own timestep: this is how the
block-wise timestep offsets of App. E reach the network (`BasicTransformerBlock`'s adaLN-single takes one timestep
per example, so the block is written here with per-token modulation).

References:
    Chen et al. 2023, PixArt-α (adaLN-single); diffusers `PixArtTransformer2DModel`; Peebles & Xie 2023 (DiT).
"""

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.models.attention import FeedForward
from diffusers.models.attention_processor import Attention
from diffusers.models.embeddings import get_1d_sincos_pos_embed_from_grid
from diffusers.models.modeling_utils import ModelMixin
from diffusers.models.normalization import AdaLayerNormSingle
from diffusers.utils import BaseOutput
from torch import nn


def register_blocks(num_registers: int) -> list[int]:
    """Geometric register blocks (1, 2, 4, 8, …) covering K registers; the last block is truncated (App. E).

    Example:
        ```python
        >>> register_blocks(10)
        [1, 2, 4, 3]
        ```
    """
    if num_registers < 1:
        raise ValueError(f"`num_registers` must be >= 1, got {num_registers}.")
    sizes, size, total = [], 1, 0
    while total < num_registers:
        sizes.append(min(size, num_registers - total))
        total += sizes[-1]
        size *= 2
    return sizes


def block_timesteps(
    base_timesteps: torch.Tensor, offsets: list[float] | None, num_registers: int, num_train_timesteps: int
) -> torch.LongTensor:
    """Per-register timesteps `(B, K)`: block b at clip(t + Δ_b·T, 0, T−1) (App. E).

    Args:
        base_timesteps: `(B,)` integer base timesteps; may be negative (down to −max Δ·T) so that every block is
            trained, and sampled, over its full range of times.
        offsets: Δ_b per block, fractions of `num_train_timesteps`; `None` means no offsets.
        num_registers: K.
        num_train_timesteps: T.
    """
    base = base_timesteps.long().view(-1, 1)
    if not offsets:
        return base.expand(-1, num_registers).clamp(0, num_train_timesteps - 1)
    sizes = register_blocks(num_registers)
    if len(offsets) != len(sizes):
        raise ValueError(f"`offsets` has {len(offsets)} entries but K={num_registers} has {len(sizes)} blocks.")
    per_register = torch.repeat_interleave(
        torch.tensor(offsets, dtype=torch.float64), torch.tensor(sizes), output_size=num_registers
    )
    shift = torch.round(per_register * num_train_timesteps).long().to(base.device)  # (K,)
    return (base + shift[None, :]).clamp(0, num_train_timesteps - 1)


@dataclass
class RegisterPriorOutput(BaseOutput):
    """Output of the register prior.

    Args:
        sample: `(B, K, d)` the predicted clean register bank ẑ₀ = g_ψ(z_t, t).
    """

    sample: torch.Tensor


class RegisterPriorBlock(nn.Module):
    """PixArt-α block with per-token adaLN-single modulation and optional cross-attention."""

    def __init__(
        self, dim: int, num_heads: int, head_dim: int, cross_attention: bool, mlp_ratio: float, dropout: float
    ):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.attn1 = Attention(query_dim=dim, heads=num_heads, dim_head=head_dim, bias=True, dropout=dropout)
        self.norm2 = nn.LayerNorm(dim, elementwise_affine=True, eps=1e-6) if cross_attention else None
        self.attn2 = (
            Attention(query_dim=dim, cross_attention_dim=dim, heads=num_heads, dim_head=head_dim, bias=True)
            if cross_attention
            else None
        )
        self.norm3 = nn.LayerNorm(dim, elementwise_affine=False, eps=1e-6)
        self.ff = FeedForward(dim, mult=mlp_ratio, activation_fn="gelu-approximate", dropout=dropout)
        self.scale_shift_table = nn.Parameter(torch.randn(6, dim) / dim**0.5)

    def forward(
        self,
        hidden_states: torch.Tensor,
        modulation: torch.Tensor,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_bias: torch.Tensor | None = None,
    ) -> torch.Tensor:
        batch_size, num_tokens, dim = hidden_states.shape
        mod = self.scale_shift_table[None, None] + modulation.view(batch_size, num_tokens, 6, dim)
        shift_msa, scale_msa, gate_msa, shift_mlp, scale_mlp, gate_mlp = mod.unbind(dim=2)

        # Self Attention
        normed = self.norm1(hidden_states) * (1 + scale_msa) + shift_msa
        hidden_states = hidden_states + gate_msa * self.attn1(normed)

        # Cross Attention
        if self.attn2 is not None and encoder_hidden_states is not None:
            hidden_states = hidden_states + self.attn2(
                self.norm2(hidden_states),
                encoder_hidden_states=encoder_hidden_states,
                attention_mask=encoder_attention_bias,
            )

        # Fully Connected
        normed = self.norm3(hidden_states) * (1 + scale_mlp) + shift_mlp
        return hidden_states + gate_mlp * self.ff(normed)


class RegisterPriorTransformer(ModelMixin, ConfigMixin):
    r"""1-D DiT over register banks with x₀-prediction; unconditional, or conditional through cross-attention.

    Args:
        num_registers: K, the number of register tokens.
        register_dim: d, the width of each register.
        hidden_size: D, the DiT width.
        num_layers: Number of DiT blocks.
        num_attention_heads: Heads per attention layer (`hidden_size` must be divisible by it).
        mlp_ratio: Width multiplier of the feed-forward layers.
        cross_attention_dim: Width of the conditioning sequence (ConWithinDisc conditions on h_φ(x⁽ʳ⁾), so this is
            the encoder's d); `None` for the unconditional prior.
        timestep_offsets: Δ_b per geometric register block as fractions of the diffusion time (App. E); `None` or
            all zeros switches them off. Used identically by training and sampling.
        num_train_timesteps: T of the DDPM schedule the offsets are expressed against.
        dropout: Dropout in attention and feed-forward layers.
        distilled_steps: For a few-step student of `crocodil train prior-distill`, its default number of sampling
            steps in the pipeline: the steps it was distilled for, unless `crocodil assemble --distilled-steps` set
            another by measurement; `None` for a prior trained by denoising.

    Example:
        ```python
        >>> import torch
        >>> from crocodil_hf import RegisterPriorTransformer
        >>> prior = RegisterPriorTransformer(num_registers=4, register_dim=16, hidden_size=32, num_layers=2,
        ...                                  num_attention_heads=4)
        >>> prior(torch.randn(2, 4, 16), torch.tensor([10, 500])).sample.shape
        torch.Size([2, 4, 16])
        ```
    """

    _supports_gradient_checkpointing = True
    _no_split_modules = ["RegisterPriorBlock"]

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *args, strict: bool = True, **kwargs):
        """`ModelMixin.from_pretrained` that raises when a weight is missing, unexpected or mis-shaped (a trained prior
        is never silently random or half-initialised); `strict=False` keeps diffusers' warn-only behaviour."""
        want_info = kwargs.pop("output_loading_info", False)
        model, info = super().from_pretrained(pretrained_model_name_or_path, *args, output_loading_info=True, **kwargs)
        problems = {k: info.get(k) for k in ("missing_keys", "unexpected_keys", "mismatched_keys") if info.get(k)}
        if strict and problems:
            where = str(pretrained_model_name_or_path)
            if kwargs.get("subfolder"):
                where += f" (subfolder {kwargs['subfolder']})"
            found = "; ".join(f"{k.replace('_', ' ')} {sorted(map(str, v))}" for k, v in problems.items())
            raise ValueError(
                f"{cls.__name__}.from_pretrained({where}): the checkpoint does not match the model: {found} "
                "(pass strict=False to initialise or drop them instead)."
            )
        return (model, info) if want_info else model

    @register_to_config
    def __init__(
        self,
        num_registers: int = 8,
        register_dim: int = 1024,
        *,
        hidden_size: int = 1152,
        num_layers: int = 28,
        num_attention_heads: int = 16,
        mlp_ratio: float = 4.0,
        cross_attention_dim: int | None = None,
        timestep_offsets: list[float] | None = None,
        num_train_timesteps: int = 1000,
        dropout: float = 0.0,
        distilled_steps: int | None = None,
    ):
        super().__init__()
        for name, value in (
            ("num_registers", num_registers),
            ("register_dim", register_dim),
            ("hidden_size", hidden_size),
            ("num_layers", num_layers),
            ("num_attention_heads", num_attention_heads),
            ("num_train_timesteps", num_train_timesteps),
        ):
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"`{name}` must be a positive integer, got {value!r}.")
        if hidden_size % num_attention_heads != 0:
            raise ValueError(
                f"`hidden_size` ({hidden_size}) must be divisible by `num_attention_heads` ({num_attention_heads})."
            )
        if cross_attention_dim is not None and cross_attention_dim < 1:
            raise ValueError(f"`cross_attention_dim` must be a positive integer or None, got {cross_attention_dim}.")
        if timestep_offsets is not None:
            num_blocks = len(register_blocks(num_registers))
            if len(timestep_offsets) != num_blocks:
                raise ValueError(
                    f"`timestep_offsets` needs one offset per register block: K={num_registers} has {num_blocks} "
                    f"blocks {register_blocks(num_registers)}, got {len(timestep_offsets)} offsets."
                )
            if any(b < a for a, b in zip(timestep_offsets, timestep_offsets[1:])):
                raise ValueError(f"`timestep_offsets` must be non-decreasing (Δ₁ ≤ Δ₂ ≤ …), got {timestep_offsets}.")
            if any(not 0.0 <= o < 1.0 for o in timestep_offsets):
                raise ValueError(f"`timestep_offsets` must lie in [0, 1), got {timestep_offsets}.")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"`dropout` must lie in [0, 1), got {dropout}.")
        if distilled_steps is not None and (not isinstance(distilled_steps, int) or distilled_steps < 1):
            raise ValueError(f"`distilled_steps` must be a positive integer or None, got {distilled_steps!r}.")

        self.proj_in = nn.Linear(register_dim, hidden_size)
        pos = get_1d_sincos_pos_embed_from_grid(hidden_size, torch.arange(num_registers), output_type="pt")
        self.register_buffer("pos_embed", pos.float()[None], persistent=False)  # (1, K, D)
        self.adaln_single = AdaLayerNormSingle(hidden_size)
        self.cond_proj = (
            nn.Sequential(
                nn.Linear(cross_attention_dim, hidden_size),
                nn.GELU(approximate="tanh"),
                nn.Linear(hidden_size, hidden_size),
            )
            if cross_attention_dim is not None
            else None
        )
        head_dim = hidden_size // num_attention_heads
        self.blocks = nn.ModuleList(
            RegisterPriorBlock(
                hidden_size, num_attention_heads, head_dim, cross_attention_dim is not None, mlp_ratio, dropout
            )
            for _ in range(num_layers)
        )
        self.norm_out = nn.LayerNorm(hidden_size, elementwise_affine=False, eps=1e-6)
        self.scale_shift_table = nn.Parameter(torch.randn(2, hidden_size) / hidden_size**0.5)
        self.proj_out = nn.Linear(hidden_size, register_dim)
        self.gradient_checkpointing = False
        self._initialize()

    def _initialize(self) -> None:
        # DiT / PixArt: xavier linears, zeroed adaLN output and output projection so each block starts as identity.
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
        nn.init.normal_(self.adaln_single.emb.timestep_embedder.linear_1.weight, std=0.02)
        nn.init.normal_(self.adaln_single.emb.timestep_embedder.linear_2.weight, std=0.02)
        nn.init.zeros_(self.adaln_single.linear.weight)
        nn.init.zeros_(self.adaln_single.linear.bias)
        nn.init.zeros_(self.proj_out.weight)
        nn.init.zeros_(self.proj_out.bias)

    @property
    def is_conditional(self) -> bool:
        return self.config.cross_attention_dim is not None

    @property
    def offsets(self) -> list[float] | None:
        offsets = self.config.timestep_offsets
        return list(offsets) if offsets and any(o > 0 for o in offsets) else None

    def register_timesteps(self, base_timesteps: torch.Tensor) -> torch.LongTensor:
        """Per-register timesteps `(B, K)` for base timesteps `(B,)`, applying this prior's block offsets."""
        return block_timesteps(
            base_timesteps, self.offsets, self.config.num_registers, self.config.num_train_timesteps
        )

    def forward(
        self,
        sample: torch.Tensor,
        timestep: torch.Tensor | int,
        encoder_hidden_states: torch.Tensor | None = None,
        encoder_attention_mask: torch.Tensor | None = None,
        return_dict: bool = True,
    ) -> RegisterPriorOutput | tuple:
        """Predict the clean register bank from a noisy one.

        Args:
            sample: `(B, K, d)` noisy registers z_t.
            timestep: an int, `(B,)` (one timestep per bank; block offsets are *not* applied here, use
                `register_timesteps` first) or `(B, K)` (one per register).
            encoder_hidden_states: `(B, L, cross_attention_dim)` conditioning sequence (ConWithinDisc: h_φ(x⁽ʳ⁾)).
            encoder_attention_mask: `(B, L)` with 1 for valid conditioning tokens.
        """
        config = self.config
        if sample.dim() != 3 or tuple(sample.shape[1:]) != (config.num_registers, config.register_dim):
            raise ValueError(
                f"`sample` must have shape (batch, {config.num_registers}, {config.register_dim}), "
                f"got {tuple(sample.shape)}."
            )
        batch_size, num_registers = sample.shape[:2]
        if encoder_hidden_states is not None:
            if not self.is_conditional:
                raise ValueError(
                    "`encoder_hidden_states` was passed but this prior has no cross-attention "
                    "(`cross_attention_dim` is None)."
                )
            if (
                encoder_hidden_states.dim() != 3
                or encoder_hidden_states.shape[0] != batch_size
                or encoder_hidden_states.shape[2] != config.cross_attention_dim
            ):
                raise ValueError(
                    f"`encoder_hidden_states` must have shape ({batch_size}, L, {config.cross_attention_dim}), "
                    f"got {tuple(encoder_hidden_states.shape)}."
                )
        timestep = torch.as_tensor(timestep, device=sample.device)
        if timestep.dim() == 0:
            timestep = timestep.expand(batch_size)
        if timestep.dim() == 1:
            timestep = timestep[:, None].expand(-1, num_registers)
        if tuple(timestep.shape) != (batch_size, num_registers):
            raise ValueError(
                f"`timestep` must be an int, ({batch_size},) or ({batch_size}, {num_registers}), "
                f"got {tuple(timestep.shape)}."
            )

        hidden_states = self.proj_in(sample) + self.pos_embed.to(sample.dtype)  # (B, K, D)
        modulation, embedded_timestep = self.adaln_single(
            timestep.reshape(-1), batch_size=batch_size * num_registers, hidden_dtype=hidden_states.dtype
        )
        modulation = modulation.view(batch_size, num_registers, -1)  # (B, K, 6D)
        embedded_timestep = embedded_timestep.view(batch_size, num_registers, -1)  # (B, K, D)

        encoder_bias = None
        if encoder_hidden_states is not None:
            encoder_hidden_states = self.cond_proj(encoder_hidden_states.to(hidden_states.dtype))
            if encoder_attention_mask is not None:
                # (B, L) keep-mask -> (B, 1, L) additive bias, as diffusers' PixArt does.
                encoder_bias = (1 - encoder_attention_mask.to(hidden_states.dtype)) * -10000.0
                encoder_bias = encoder_bias[:, None, :]

        for block in self.blocks:
            if torch.is_grad_enabled() and self.gradient_checkpointing:
                hidden_states = self._gradient_checkpointing_func(
                    block, hidden_states, modulation, encoder_hidden_states, encoder_bias
                )
            else:
                hidden_states = block(hidden_states, modulation, encoder_hidden_states, encoder_bias)

        # Final layer
        shift, scale = (self.scale_shift_table[None, None] + embedded_timestep[:, :, None]).unbind(dim=2)
        hidden_states = self.norm_out(hidden_states) * (1 + scale) + shift
        output = self.proj_out(hidden_states)
        if not return_dict:
            return (output,)
        return RegisterPriorOutput(sample=output)


__all__ = [
    "RegisterPriorOutput",
    "RegisterPriorTransformer",
    "block_timesteps",
    "register_blocks",
]
