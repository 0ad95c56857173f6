"""The discrete masked-diffusion step, shared by every mode of the pipeline (LLaDA's reference sampler).

`MaskedDiffusionScheduler` is a diffusers scheduler (`SchedulerMixin` + `ConfigMixin`, saved in `model_index.json`).
Per semi-autoregressive block it fixes how many tokens each step commits (LLaDA's `get_num_transfer_tokens`: the
masked count split evenly, the remainder going to the first steps), samples candidates with Gumbel-max in float64
(LLaDA's `add_gumbel_noise`), ranks them by confidence (`"low_confidence"`) or at random (`"random"`), and commits the
top ones. With `threshold` it commits every masked token whose confidence exceeds the threshold (at least one), as
Fast-dLLM does, so the number of demasker calls adapts to the model's certainty.

Why not diffusers' `BlockRefinementScheduler` (LLaDA2): it samples with `torch.multinomial` from one generator for
the whole batch, always applies its confidence threshold, and spreads a fixed `block_length` over the steps; LLaDA's
reference sampler needs float64 Gumbel-max, `"random"` remasking, per-example transfer counts and per-sample
generators (so that a sample is reproducible alone or in a batch).

References:
    Nie et al. 2025 (LLaDA, `generate.py`); Wu et al. 2025 (Fast-dLLM, confidence-threshold parallel decoding).
"""

from dataclasses import dataclass

import torch
from diffusers.configuration_utils import ConfigMixin, register_to_config
from diffusers.schedulers.scheduling_utils import SchedulerMixin
from diffusers.utils import BaseOutput

from .names import REMASKING


def get_num_transfer_tokens(mask_index: torch.Tensor, steps: int) -> torch.LongTensor:
    """Tokens to commit at each of `steps` steps for each example (LLaDA): `(B, block) bool -> (B, steps)`."""
    mask_num = mask_index.sum(dim=1, keepdim=True)
    base = mask_num // steps
    remainder = mask_num % steps
    num = base.expand(-1, steps).clone()
    num += (torch.arange(steps, device=mask_index.device)[None, :] < remainder).long()
    return num


def _uniform(shape: tuple[int, ...], generator, batch_rows: list[int], device) -> torch.Tensor:
    """float64 U(0,1) noise of `shape` (rows = examples); with a list of generators row b uses `generator[b]` only."""
    if isinstance(generator, list):
        rows = [torch.rand(shape[1:], generator=generator[b], dtype=torch.float64) for b in batch_rows]
        return torch.stack(rows).to(device)
    return torch.rand(shape, generator=generator, dtype=torch.float64).to(device)


def add_gumbel_noise(
    logits: torch.Tensor,
    temperature: float,
    generator=None,
    batch_rows: list[int] | None = None,
    noise: torch.Tensor | None = None,
) -> torch.Tensor:
    """LLaDA's Gumbel-max in float64: argmax(exp(l) / (−log u)^τ) samples softmax(l / τ); τ = 0 is greedy.

    `noise` supplies the float64 uniforms u (same shape as `logits`); otherwise they are drawn from `generator`.
    """
    if temperature == 0:
        return logits
    logits = logits.to(torch.float64)
    if noise is None:
        rows = list(range(logits.shape[0])) if batch_rows is None else batch_rows
        noise = _uniform(tuple(logits.shape), generator, rows, logits.device)
    gumbel_noise = (-torch.log(noise)) ** temperature
    return logits.exp() / gumbel_noise


@dataclass
class MaskedDiffusionSchedulerOutput(BaseOutput):
    """One MDM step.

    Args:
        prev_sample: `(B, L)` the block after committing tokens.
        transfer_index: `(B, L)` positions committed at this step.
        pred_original_sample: `(B, L)` x̂₀, the sampled candidate for every position.
        confidence: `(B, L)` confidence of each candidate (−inf where nothing could be committed).
    """

    prev_sample: torch.LongTensor
    transfer_index: torch.BoolTensor
    pred_original_sample: torch.LongTensor
    confidence: torch.Tensor


class MaskedDiffusionScheduler(SchedulerMixin, ConfigMixin):
    """LLaDA's discrete sampler as a diffusers scheduler.

    Args:
        mask_token_id: The demasker's `[MASK]` id.
        remasking: Default `"low_confidence"` (commit the most confident candidates) or `"random"`.
        temperature: Default Gumbel temperature (0 = greedy).
        threshold: Default confidence threshold for parallel decoding; `None` = fixed steps.

    Example:
        ```python
        >>> scheduler = MaskedDiffusionScheduler(mask_token_id=99)
        >>> scheduler.set_timesteps(4, block_mask=torch.ones(1, 8, dtype=torch.bool))
        >>> scheduler.num_transfer_tokens.tolist()
        [[2, 2, 2, 2]]
        ```
    """

    order = 1

    @register_to_config
    def __init__(
        self,
        mask_token_id: int = 126336,
        remasking: str = "low_confidence",
        temperature: float = 0.0,
        threshold: float | None = None,
    ):
        if remasking not in REMASKING:
            raise ValueError(f"`remasking` must be one of {REMASKING}, got {remasking!r}.")
        self.num_inference_steps: int | None = None
        self.timesteps = torch.zeros(0, dtype=torch.long)
        self.num_transfer_tokens: torch.LongTensor | None = None

    def set_timesteps(self, num_inference_steps: int, block_mask: torch.Tensor, device=None) -> None:
        """Prepare one block: `block_mask` `(B, L)` marks masked positions; sets the per-step commit counts."""
        if num_inference_steps < 1:
            raise ValueError(f"`num_inference_steps` must be >= 1, got {num_inference_steps}.")
        self.num_inference_steps = num_inference_steps
        self.timesteps = torch.arange(num_inference_steps - 1, -1, -1, device=device, dtype=torch.long)
        self.num_transfer_tokens = get_num_transfer_tokens(block_mask.bool(), num_inference_steps)

    def _select(
        self, confidence: torch.Tensor, mask_index: torch.Tensor, step_index: int, threshold: float | None
    ) -> torch.Tensor:
        """Positions to commit, for all rows at once: the top-`n_b` confidences of row b (LLaDA's per-step count),
        or with a threshold every masked candidate above it (at least the most confident one of a masked row)."""
        num_masked = mask_index.sum(dim=1)
        if threshold is not None:
            chosen = (confidence > threshold) & mask_index
            best = torch.zeros_like(chosen).scatter_(1, confidence.argmax(dim=1, keepdim=True), True)
            fallback = (~chosen.any(dim=1) & (num_masked > 0))[:, None]
            return chosen | (best & fallback & mask_index)
        column = min(step_index, self.num_transfer_tokens.shape[1] - 1)
        counts = torch.minimum(self.num_transfer_tokens[:, column].to(num_masked.device).clamp(min=0), num_masked)
        k_max = int(counts.max()) if counts.numel() else 0
        transfer = torch.zeros_like(mask_index)
        if k_max > 0:
            top = torch.topk(confidence, k=k_max, dim=1).indices  # (B, k_max), most confident first
            keep = torch.arange(k_max, device=top.device)[None, :] < counts[:, None]
            transfer.scatter_(1, top, keep)
        return transfer & mask_index

    def step(
        self,
        model_output: torch.Tensor,
        step_index: int,
        sample: torch.LongTensor,
        *,
        temperature: float | None = None,
        remasking: str | None = None,
        threshold: float | None = None,
        generator: torch.Generator | list[torch.Generator] | None = None,
        active: torch.Tensor | None = None,
        return_dict: bool = True,
        eos_penalty: float = 0.0,
        eos_token_id: int | None = None,
    ) -> MaskedDiffusionSchedulerOutput | tuple:
        """Commit tokens in the current block.

        Args:
            model_output: `(B, L, V)` demasker logits for the block's positions, or `(N, V)` logits of just the N
                masked positions of the active rows in row-major order (what the pipeline computes: the output
                head and this step then skip every position that can no longer change).
            step_index: Index of this step within the block (0-based); ignored with a threshold.
            sample: `(B, L)` current block ids (`mask_token_id` where still masked).
            temperature: Gumbel temperature (default: config).
            remasking: `"low_confidence"` or `"random"` (default: config).
            threshold: Confidence threshold in (0, 1]; commits all masked candidates above it, at least one.
            generator: One generator, or one per example (each example's draws then depend only on its own).
            active: `(B,)` bool; inactive examples (block finished) are left unchanged and draw no random numbers.
            eos_penalty: Subtracted from the EOS logit before candidates and confidences are computed (EOS's
                probability × e^−penalty; Dream-Coder's PAD penalty): against the degenerate greedy output of a
                weak demasker, every position EOS. 0 leaves the logits untouched.
            eos_token_id: The EOS id `eos_penalty` applies to.
        """
        temperature = self.config.temperature if temperature is None else temperature
        remasking = self.config.remasking if remasking is None else remasking
        threshold = self.config.threshold if threshold is None else threshold
        if remasking not in REMASKING:
            raise ValueError(f"`remasking` must be one of {REMASKING}, got {remasking!r}.")
        batch_size = sample.shape[0]
        if active is None:
            active = torch.ones(batch_size, dtype=torch.bool, device=sample.device)
        mask_index = (sample == self.config.mask_token_id) & active[:, None]
        num_candidates = int(mask_index.sum())
        if model_output.dim() == 3:
            if tuple(model_output.shape[:2]) != tuple(sample.shape):
                raise ValueError(
                    f"`model_output` {tuple(model_output.shape)} does not match `sample` {tuple(sample.shape)}."
                )
            logits = model_output[mask_index]  # (N, V): only the positions that can be committed
        elif model_output.dim() == 2 and model_output.shape[0] == num_candidates:
            logits = model_output
        else:
            raise ValueError(
                f"`model_output` must be (B, L, V) or ({num_candidates}, V) for the masked positions of active rows, "
                f"got {tuple(model_output.shape)}."
            )
        if eos_penalty and eos_token_id is None:
            raise ValueError("`eos_penalty` needs `eos_token_id`.")
        mask_id = self.config.mask_token_id
        if eos_penalty or (logits.shape[-1] > mask_id and num_candidates):
            logits = logits.clone()
            if eos_penalty:
                logits[:, eos_token_id] -= eos_penalty
            # the mask token is never a candidate: committing it would leave a masked position in a finished block
            if logits.shape[-1] > mask_id:
                logits[:, mask_id] = float("-inf")

        x0 = sample.clone()
        confidence = torch.full(sample.shape, float("-inf"), device=sample.device)
        transfer_index = torch.zeros_like(mask_index)
        if num_candidates:
            rows = [b for b in range(batch_size) if bool(active[b])]
            gen = [generator[b] for b in rows] if isinstance(generator, list) else generator
            local_rows = list(range(len(rows)))
            row_mask = mask_index[rows]
            if temperature == 0:
                candidates = logits.argmax(dim=-1)  # greedy: no noise, no float64 copy of the logits
            else:
                # draws for every position of the active rows, exactly as before packing (reproducible per sample)
                shape = (len(rows), sample.shape[1], logits.shape[-1])
                noise = _uniform(shape, gen, local_rows, sample.device)[row_mask]
                candidates = add_gumbel_noise(logits, temperature, noise=noise).argmax(dim=-1)
            if remasking == "low_confidence":
                # p(candidate) = exp(l_c − logsumexp(l)) in the logits' precision (float32 at least), as LLaDA's
                # softmax in the model dtype; the float64 softmax over the vocabulary was a quarter of a CPU step.
                work = logits if logits.dtype in (torch.float32, torch.float64) else logits.float()
                chosen_logit = torch.gather(work, -1, candidates[:, None]).squeeze(-1)
                cand_conf = torch.exp(chosen_logit - torch.logsumexp(work, dim=-1))
            else:
                cand_conf = _uniform((len(rows), sample.shape[1]), gen, local_rows, sample.device)[row_mask]
            x0[mask_index] = candidates.to(x0.dtype)
            confidence = confidence.to(cand_conf.dtype)
            confidence[mask_index] = cand_conf
            transfer_index = self._select(confidence, mask_index, step_index, threshold)
        prev_sample = torch.where(transfer_index, x0, sample)
        if not return_dict:
            return prev_sample, transfer_index, x0, confidence
        return MaskedDiffusionSchedulerOutput(
            prev_sample=prev_sample, transfer_index=transfer_index, pred_original_sample=x0, confidence=confidence
        )


__all__ = [
    "MaskedDiffusionScheduler",
    "MaskedDiffusionSchedulerOutput",
    "add_gumbel_noise",
    "get_num_transfer_tokens",
]
