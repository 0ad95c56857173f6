"""Guided demasker f_θ(x_t, z): LLaDA conditioned on a prefix of continuous registers (paper §4.1, App. C).

Input: `[⟨START⟩, W·z⁽¹⁾ … W·z⁽ᵏ⁾, ⟨END⟩, E(x_t)]` with learned boundary embeddings and a projection W (d → d_model);
logits are returned for the text positions only. Two-axis RoPE: text keeps positions 0…n−1 on every frequency pair, so
an un-prefixed call is exactly the base LLaDA; prefix tokens sit at global positions −(k+2)…−1 and, on the
`prefix_rope_pairs` highest-frequency pairs, at their prefix-local index 0…k+1 (an MRoPE-style second axis).
Remote-code safe: imports only `torch`, `transformers` and siblings.
"""

import math
from contextlib import contextmanager
from dataclasses import dataclass

import torch
from torch import nn
from transformers import PreTrainedModel  # noqa: F401  (diffusers finds a component's load method via its module)
from transformers.utils import ModelOutput, logging

from .configuration_crocodil import GuidedLLaDAConfig
from .configuration_llada import LLaDAConfig
from .modeling_llada import LLaDAModel, LLaDAModelLM, LLaDAPreTrainedModel, check_token_ids


@contextmanager
def load_reports_silenced():
    """transformers logs errors only inside the block: for loads whose missing or unexpected weights (the register
    weights) are expected and checked by the caller."""
    verbosity = logging.get_verbosity()
    logging.set_verbosity_error()
    try:
        yield
    finally:
        logging.set_verbosity(verbosity)


@dataclass
class GuidedMaskedLMOutput(ModelOutput):
    """Output of the guided demasker.

    Args:
        loss: Mean cross-entropy over `labels != -100` when labels are given.
        logits: `(B, n, embedding_size)` logits for the text positions only.
        hidden_states: Per-layer hidden states over the full (prefix + text) sequence, on request.
        num_registers: `(B,)` the k each example was conditioned on (0 without registers).
    """

    loss: torch.Tensor | None = None
    logits: torch.Tensor | None = None
    hidden_states: tuple[torch.Tensor, ...] | None = None
    num_registers: torch.Tensor | None = None


def resolve_num_registers(
    num_registers: int | torch.Tensor | None, batch_size: int, available: int, max_registers: int, device
) -> torch.LongTensor:
    """Validate and broadcast k (int, `(B,)` tensor or `None` = all available) to a `(B,)` LongTensor."""
    if available > max_registers:
        raise ValueError(f"`registers` holds {available} registers but the model accepts at most K={max_registers}.")
    if num_registers is None:
        return torch.full((batch_size,), available, dtype=torch.long, device=device)
    k = torch.as_tensor(num_registers, device=device).long()
    if k.dim() == 0:
        k = k.expand(batch_size)
    if tuple(k.shape) != (batch_size,):
        raise ValueError(f"`num_registers` must be an int or have shape ({batch_size},), got {tuple(k.shape)}.")
    if bool((k > max_registers).any()):
        raise ValueError(f"`num_registers` must be <= K={max_registers}, got {k.max().item()}.")
    if bool((k > available).any()) or bool((k < 1).any()):
        raise ValueError(f"`num_registers` must lie in [1, {available}] (registers passed), got {k.tolist()}.")
    return k


class GuidedLLaDAForMaskedLM(LLaDAPreTrainedModel):
    """LLaDA demasker guided by a register bank z ∈ R^{k×d}, k ≤ K per example.

    Parameter names of the LLaDA trunk are the official ones, so `from_base` loads a base LLaDA checkpoint as is and
    initialises only `register_proj`, `prefix_start` and `prefix_end`.

    Example:
        ```python
        >>> import torch
        >>> from crocodil_hf import GuidedLLaDAConfig, GuidedLLaDAForMaskedLM
        >>> config = GuidedLLaDAConfig(d_model=64, n_heads=4, n_layers=2, mlp_hidden_size=128, vocab_size=100,
        ...                            embedding_size=128, mask_token_id=99, num_registers=4, register_dim=32)
        >>> model = GuidedLLaDAForMaskedLM(config)
        >>> x_t = torch.full((2, 6), 99)
        >>> z = torch.randn(2, 4, 32)
        >>> model(x_t, registers=z, num_registers=torch.tensor([1, 4])).logits.shape
        torch.Size([2, 6, 128])
        ```
    """

    config_class = GuidedLLaDAConfig
    config: GuidedLLaDAConfig

    def __init__(self, config: GuidedLLaDAConfig):
        super().__init__(config)
        self.model = LLaDAModel(config)
        self.register_proj = nn.Linear(config.register_dim, config.d_model, bias=False)
        self.prefix_start = nn.Parameter(torch.zeros(config.d_model))
        self.prefix_end = nn.Parameter(torch.zeros(config.d_model))
        self.post_init()

    # Parameters that exist only in the guided model; `from_base` initialises exactly these.
    _new_parameter_names = ("register_proj.weight", "prefix_start", "prefix_end")

    @torch.no_grad()
    def _init_weights(self, module: nn.Module) -> None:
        if module is self.register_proj:
            # W·z then has the scale of a token embedding (each register has norm √d, i.e. unit RMS per coordinate).
            std = self._embedding_std() / math.sqrt(self.config.register_dim)
            self._normal(module.weight, std)
        elif isinstance(module, GuidedLLaDAForMaskedLM):
            self._normal(module.prefix_start, self._embedding_std())
            self._normal(module.prefix_end, self._embedding_std())
        else:
            super()._init_weights(module)

    def _embedding_std(self) -> float:
        return 1.0 / math.sqrt(self.config.d_model) if self.config.init_fn == "mitchell" else self.config.init_std

    @classmethod
    def from_base(
        cls,
        base_model_name_or_path: str,
        num_registers: int,
        register_dim: int,
        prefix_rope_pairs: int = 4,
        **kwargs,
    ) -> "GuidedLLaDAForMaskedLM":
        """Build a guided demasker from a base LLaDA checkpoint: every base weight is loaded, only the new ones
        (`register_proj`, `prefix_start`, `prefix_end`) are initialised.

        Args:
            base_model_name_or_path: Directory or Hub id of a LLaDA checkpoint (official format accepted).
            num_registers: K.
            register_dim: d, the encoder's register width.
            prefix_rope_pairs: Rotary pairs given to the prefix-local axis.
            **kwargs: Passed to `from_pretrained` (e.g. `dtype`, `revision`).

        Raises:
            ValueError: if the base checkpoint lacks any trunk weight or holds weights the model does not have.
        """
        base_config = LLaDAConfig.from_pretrained(base_model_name_or_path, revision=kwargs.get("revision"))
        fields = base_config.to_dict()
        for key in ("model_type", "architectures", "auto_map", "transformers_version"):
            fields.pop(key, None)
        config = GuidedLLaDAConfig(
            **fields, num_registers=num_registers, register_dim=register_dim, prefix_rope_pairs=prefix_rope_pairs
        )
        model, info = super().from_pretrained(
            base_model_name_or_path, config=config, output_loading_info=True, strict=False, **kwargs
        )
        missing = set(info["missing_keys"]) - set(cls._new_parameter_names)
        if missing or info["unexpected_keys"] or info["mismatched_keys"]:
            raise ValueError(
                f"{base_model_name_or_path} is not a compatible base LLaDA checkpoint: missing {sorted(missing)}, "
                f"unexpected {sorted(info['unexpected_keys'])}, mismatched {info['mismatched_keys']}."
            )
        return model

    @classmethod
    def load_as_base(cls, model_name_or_path: str, **kwargs) -> LLaDAModelLM:
        """The reverse of `from_base`: a guided checkpoint as a plain `LLaDAModelLM`, every trunk weight loaded and
        only the register weights (`register_proj`, `prefix_start`, `prefix_end`) dropped. It is how a pipeline's
        plain-MDM baseline (`mdm_demasker`, stored in this class) is trained further with LLaDA's loss.

        Raises:
            ValueError: if the checkpoint lacks a trunk weight or holds weights neither model has.
        """
        config = GuidedLLaDAConfig.from_pretrained(model_name_or_path, revision=kwargs.get("revision"))
        fields = config.to_dict()
        for key in ("model_type", "architectures", "auto_map", "transformers_version", "num_registers",
                    "register_dim", "prefix_rope_pairs", "default_gen_length"):  # fmt: skip
            fields.pop(key, None)
        with load_reports_silenced():  # the dropped register weights are expected: no load report about them
            model, info = LLaDAModelLM.from_pretrained(
                model_name_or_path, config=LLaDAConfig(**fields), output_loading_info=True, strict=False, **kwargs
            )
        unexpected = set(info["unexpected_keys"]) - set(cls._new_parameter_names)
        if info["missing_keys"] or unexpected or info["mismatched_keys"]:
            raise ValueError(
                f"{model_name_or_path} is not a guided LLaDA checkpoint: missing {sorted(info['missing_keys'])}, "
                f"unexpected {sorted(unexpected)}, mismatched {info['mismatched_keys']}."
            )
        return model

    def cache_length(self, seq_len: int, registers: torch.Tensor | None = None, num_registers=None) -> int:
        """Length of the `CanvasCache` for a text of `seq_len` tokens: the register prefix (k_max + 2) included."""
        if registers is None:
            return seq_len
        k = resolve_num_registers(
            num_registers, registers.shape[0], registers.shape[1], self.config.num_registers, registers.device
        )
        return seq_len + int(k.max()) + 2

    def prefix_positions(
        self, num_registers: torch.LongTensor, prefix_len: int
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Global positions, prefix-local positions and key validity `(B, prefix_len)` of the prefix slots.

        Slot layout: 0 = START, 1…k_max = registers, k_max+1 = END. Example b uses registers 1…k_b; its END takes
        local index k_b+1 and global −1, START global −(k_b+2), register j global j−(k_b+2); unused slots are masked.
        """
        device = num_registers.device
        slots = torch.arange(prefix_len, device=device)[None, :]  # (1, P)
        k = num_registers[:, None]  # (B, 1)
        is_end = slots == prefix_len - 1
        local = torch.where(is_end, k + 1, slots)  # (B, P)
        global_pos = local - (k + 2)
        valid = (slots <= k) | is_end
        return global_pos, local, valid

    def two_axis_rope(
        self, text_positions: torch.Tensor, prefix_global: torch.Tensor, prefix_local: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(cos, sin)` for `[prefix, text]`: text on the global axis everywhere; the prefix on the local axis for the
        first `prefix_rope_pairs` (highest-frequency) pairs and on the global axis for the rest."""
        rotary = self.model.rotary_emb
        prefix_angles = rotary.angles(prefix_global)
        r = self.config.prefix_rope_pairs
        if r > 0:
            local_angles = rotary.angles(prefix_local)
            prefix_angles = torch.cat((local_angles[..., :r], prefix_angles[..., r:]), dim=-1)
        angles = torch.cat((prefix_angles, rotary.angles(text_positions)), dim=1)
        return rotary.cos_sin(angles)

    def _guided_hidden(
        self, text_embeds, registers, num_registers, attention_mask, position_ids, output_hidden_states, *, cache=None
    ):
        """Run the base model on `[START, W·z¹ … W·z^k, END] ++ text`; returns the text's hidden states, the base
        model's outputs and each example's k. `cache = (past_key_values, cache_position)`: with a text position
        window, only those text positions are computed; the prefix's keys/values come from the cache."""
        past_key_values, cache_position = cache or (None, None)
        if cache_position is not None:
            return self._cached_window_hidden(
                text_embeds, registers, num_registers, attention_mask, position_ids, cache=past_key_values,
                where=cache_position,
            )  # fmt: skip
        batch_size, seq_len = text_embeds.shape[:2]
        if not registers.is_floating_point():
            raise ValueError(f"`registers` must be a floating-point tensor, got dtype {registers.dtype}.")
        if registers.dim() != 3 or registers.shape[0] != batch_size or registers.shape[2] != self.config.register_dim:
            raise ValueError(
                f"`registers` must have shape ({batch_size}, k, {self.config.register_dim}), "
                f"got {tuple(registers.shape)}."
            )
        if attention_mask is not None and tuple(attention_mask.shape) != (batch_size, seq_len):
            raise ValueError(
                f"`attention_mask` must have shape {(batch_size, seq_len)}, got {tuple(attention_mask.shape)}."
            )
        device = text_embeds.device
        k = resolve_num_registers(num_registers, batch_size, registers.shape[1], self.config.num_registers, device)
        k_max = int(k.max())
        prefix_len = k_max + 2

        # [START, W·z¹ … W·z^k_max, END]; slots past an example's own k are masked out below.
        projected = self.register_proj(registers[:, :k_max].to(self.register_proj.weight.dtype))
        start = self.prefix_start.to(text_embeds.dtype).expand(batch_size, 1, -1)
        end = self.prefix_end.to(text_embeds.dtype).expand(batch_size, 1, -1)
        prefix = torch.cat((start, projected.to(text_embeds.dtype), end), dim=1)  # (B, k_max + 2, D)

        prefix_global, prefix_local, prefix_valid = self.prefix_positions(k, prefix_len)
        if position_ids is None:
            position_ids = torch.arange(seq_len, device=device).expand(batch_size, seq_len)
        cos_sin = self.two_axis_rope(position_ids, prefix_global, prefix_local)
        outputs = self.model(
            inputs_embeds=torch.cat((prefix, text_embeds), dim=1),
            attention_mask=self._key_mask(prefix_valid, attention_mask, seq_len),
            position_embeddings=cos_sin,
            output_hidden_states=output_hidden_states,
            past_key_values=past_key_values,
        )
        hidden = outputs.last_hidden_state[:, prefix_len:]
        return hidden, outputs, k

    def _cached_window_hidden(
        self, text_embeds, registers, num_registers, attention_mask, position_ids, *, cache, where
    ):
        """The text positions `where` `(w,)` of a canvas whose prefix and other positions are in `cache` (filled by a
        full call with the same registers); `attention_mask` covers the whole text."""
        batch_size, width = text_embeds.shape[:2]
        device = text_embeds.device
        k = resolve_num_registers(num_registers, batch_size, registers.shape[1], self.config.num_registers, device)
        prefix_len = int(k.max()) + 2
        seq_len = cache.length - prefix_len
        if attention_mask is not None and tuple(attention_mask.shape) != (batch_size, seq_len):
            raise ValueError(
                f"`attention_mask` must have shape {(batch_size, seq_len)} (the whole text), "
                f"got {tuple(attention_mask.shape)}."
            )
        _, _, prefix_valid = self.prefix_positions(k, prefix_len)
        if position_ids is None:
            position_ids = where.expand(batch_size, width)
        outputs = self.model(
            inputs_embeds=text_embeds,
            attention_mask=self._key_mask(prefix_valid, attention_mask, seq_len),
            position_embeddings=self.model.rotary_emb(position_ids),
            past_key_values=cache,
            cache_position=where + prefix_len,
        )
        return outputs.last_hidden_state, outputs, k

    @staticmethod
    def _key_mask(prefix_valid: torch.Tensor, attention_mask: torch.Tensor | None, seq_len: int) -> torch.LongTensor:
        """`(B, prefix + n)` key mask: the valid prefix slots, then the text's padding mask (all ones when `None`)."""
        if attention_mask is None:
            attention_mask = torch.ones(prefix_valid.shape[0], seq_len, dtype=torch.bool, device=prefix_valid.device)
        return torch.cat((prefix_valid, attention_mask.bool()), dim=1).long()

    @staticmethod
    def _kept_positions(hidden, logits_to_keep, labels):
        """The hidden states the output head runs on (`logits_to_keep`, as documented in `forward`)."""
        if isinstance(logits_to_keep, int) and not logits_to_keep:
            return hidden
        if labels is not None:
            raise ValueError("`labels` cannot be combined with `logits_to_keep`: the loss needs every position.")
        if isinstance(logits_to_keep, int):
            hidden = hidden[:, -logits_to_keep:]
        elif logits_to_keep.dtype == torch.bool:
            if tuple(logits_to_keep.shape) != tuple(hidden.shape[:2]):
                raise ValueError(
                    f"a bool `logits_to_keep` must have shape {tuple(hidden.shape[:2])}, "
                    f"got {tuple(logits_to_keep.shape)}."
                )
            hidden = hidden[logits_to_keep]
        else:
            hidden = hidden[:, logits_to_keep]
        return hidden

    def forward(
        self,
        input_ids: torch.LongTensor | None = None,
        attention_mask: torch.Tensor | None = None,
        inputs_embeds: torch.Tensor | None = None,
        registers: torch.Tensor | None = None,
        num_registers: int | torch.Tensor | None = None,
        position_ids: torch.LongTensor | None = None,
        labels: torch.LongTensor | None = None,
        output_hidden_states: bool | None = None,
        return_dict: bool | None = None,
        logits_to_keep: int | torch.Tensor = 0,
        past_key_values=None,
        cache_position: torch.LongTensor | None = None,
        **kwargs,
    ) -> GuidedMaskedLMOutput | tuple:
        """Demask `x_t` guided by registers.

        Args:
            input_ids: `(B, n)` partially masked ids; exclusive with `inputs_embeds`.
            attention_mask: `(B, n)` text padding mask (1 = real token).
            inputs_embeds: `(B, n, d_model)` text embeddings instead of ids.
            registers: `(B, K', d)` register bank z (K' ≤ K); `None` runs the base LLaDA exactly (no prefix).
            num_registers: k, the number of leading registers each example sees (nested dropout): an int, a `(B,)`
                tensor (mixed k in one batch), or `None` for all K'.
            position_ids: `(B, n)` text positions, default `0..n−1`.
            labels: `(B, n)` targets, -100 ignored.
            logits_to_keep: As in transformers: `0` returns logits for all n text positions, an int `m` for the last
                m, a 1-D tensor for those text positions only. A `(B, n)` bool tensor returns `(N, V)` logits of its
                N true positions in row-major order (a sampler needs logits only where tokens are still masked; the
                output head then runs on those positions alone).
            past_key_values: an approximate key/value cache (`CanvasCache`) of prefix + text, Fast-dLLM style: a call
                without `cache_position` runs the whole canvas and fills it (length = prefix + n; the pipeline's
                `CanvasCache` is sized by `cache_length`); a call with `cache_position` `(w,)` (text positions)
                takes `input_ids` `(B, w)` of those positions only, recomputes them and reads everything else from
                the cache (`attention_mask` and `registers` as for the full canvas; `position_ids` `(B, w)`).
            cache_position: see `past_key_values`.
        """
        output_hidden_states = bool(output_hidden_states or self.config.output_hidden_states)
        return_dict = self.config.return_dict if return_dict is None else return_dict
        if (input_ids is None) == (inputs_embeds is None):
            raise ValueError("pass exactly one of `input_ids` and `inputs_embeds`.")
        if input_ids is not None and input_ids.dim() != 2:
            raise ValueError(f"`input_ids` must have shape (batch, seq_len), got {tuple(input_ids.shape)}.")
        if input_ids is not None:
            check_token_ids(input_ids, self.config.vocab_size)

        if registers is None:
            if num_registers is not None:
                raise ValueError("`num_registers` was given without `registers`.")
            outputs = self.model(
                input_ids=input_ids,
                inputs_embeds=inputs_embeds,
                attention_mask=attention_mask,
                position_ids=position_ids,
                output_hidden_states=output_hidden_states,
                past_key_values=past_key_values,
                cache_position=cache_position,
            )
            hidden = outputs.last_hidden_state
            batch_size = hidden.shape[0]
            k = torch.zeros(batch_size, dtype=torch.long, device=hidden.device)
        else:
            text_embeds = self.model.transformer.wte(input_ids) if inputs_embeds is None else inputs_embeds
            hidden, outputs, k = self._guided_hidden(
                text_embeds, registers, num_registers, attention_mask, position_ids, output_hidden_states,
                cache=(past_key_values, cache_position),
            )  # fmt: skip

        hidden = self._kept_positions(hidden, logits_to_keep, labels)
        logits = self.model.lm_head(hidden)
        loss = None
        if labels is not None:
            loss = nn.functional.cross_entropy(
                logits.float().reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=-100
            )
        if not return_dict:
            output = (logits, outputs.hidden_states, k)
            return ((loss,) + output) if loss is not None else output
        return GuidedMaskedLMOutput(loss=loss, logits=logits, hidden_states=outputs.hidden_states, num_registers=k)


__all__ = ["GuidedLLaDAForMaskedLM", "GuidedMaskedLMOutput", "resolve_num_registers"]
