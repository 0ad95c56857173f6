r"""The generation modes: where the registers z₀ that guide the demasker come from, one small class per mode.

Every mode runs the same discrete loop (`CrocodilPipeline._denoise`); a mode only says how z₀ starts
(`initial_registers`) and whether it is renewed at chosen points of the trajectory (`refresh`). `MODES` is the one
table the pipeline's `check_inputs`, the CLI and the evaluation sweep read. This module imports no torch, so the CLI
lists and checks modes before anything loads.

Adding a mode is one class and one line in `MODES`. For example, a mode that decodes the average register bank of a
few example programs (a "style" prompt):

```python
from crocodil_hf.pipelines.modes import MODES, RegisterSource

class MeanOfExamples(RegisterSource):
    name = "mean_of_examples"
    description = "decode the mean registers of `text`"
    needs_text = True

    def initial_registers(self, pipe, run):
        from crocodil_hf import normalize_registers

        z = pipe.encode(run.text)  # one encoder call
        run.nfe.encoder_calls += 1
        return normalize_registers(z.mean(dim=0, keepdim=True).expand(run.num_samples, -1, -1))

MODES[MeanOfExamples.name] = MeanOfExamples()
pipe(mode="mean_of_examples", text=["def f(x):\n    return x\n", "def g(y):\n    return y\n"], num_samples=4)
```
"""

from dataclasses import dataclass, field


@dataclass
class GenerationRun:
    """The settings of one pipeline call (see `CrocodilPipeline.__call__` for each) and the state a mode sees."""

    num_samples: int
    text: list[str] | None
    gen_length: int
    block_length: int
    steps: int
    temperature: float
    remasking: str
    threshold: float | None
    num_registers: int
    prior_steps: int
    conditional_prior_steps: int
    eta: float
    refresh_at: list[float]
    generator: object
    nfe: object  # NFEBreakdown: a mode adds the prior and encoder calls it makes
    offset: int = 0  # canvas positions before the generated span (BOS, or padding + BOS + prompt)
    canvas: object = None  # the canvas before the first demasker call (prompt and suffix visible)
    prompts: list[str] | None = None  # prompted completion / infilling (App. H): kept fixed around the span
    suffixes: list[str] | None = None
    attention_mask: object = None  # prompted batches: (B, n) 0 on the padding that aligns the spans
    position_ids: object = None  # prompted batches: (B, n) positions each row would have alone
    left_pad: object = None  # prompted batches: (B,) padding tokens before each row's BOS
    eos_fill: bool = False  # after the first committed EOS of a row, the rest of its span is EOS
    prior_scheduler: object = None  # the priors' sampler (a `PRIOR_SOLVERS` name until the call resolves it)
    use_distilled_prior: bool | None = None
    use_mdm_demasker: bool | None = None
    unguided_demasker: object = None  # the model of unguided steps: the `mdm_demasker` baseline or the demasker
    prior: object = None  # the (unconditional, conditional) priors this call samples with: teachers or students
    conditional_prior: object = None
    eos_penalty: float = 0.0  # subtracted from the EOS logit at every step (against all-EOS greedy output)
    _refresh_steps: set[int] = field(default_factory=set)
    _pending: list[float] = field(default_factory=list)


class RegisterSource:
    """Where z₀ comes from in one mode. Subclasses set `name` and override `initial_registers` (and `refresh`)."""

    name: str = ""
    description: str = ""
    needs_text: bool = False  # the mode reads `text=`
    one_sample_per_text: bool = False  # a reconstruction: one output per text (`num_samples` and the default
    # `gen_length` come from the texts)
    needs_conditional_prior: bool = False
    uses_refresh_at: bool = False
    conditions_on_prompt: bool = False  # with `prompt=`, z₀ comes from the conditional prior on h_φ(prompt, suffix)
    samples_from_prior: bool = False  # z₀ is sampled by a prior: the demasker reads its first
    # `default_num_registers` only, unless the call gives `registers=` or `num_registers=`

    def initial_registers(self, pipe, run: GenerationRun):
        """z₀ `(B, K, d)` before the first demasker call, or `None` for an unguided demasker."""
        return None

    def start(self, run: GenerationRun) -> None:
        """Prepare the refresh schedule of a call (modes that refresh)."""

    def refresh(self, pipe, canvas, step: int, z0, run: GenerationRun):
        """z₀ for the next demasker call (`step` counts calls made so far); unchanged by default."""
        return z0


class NoRegisters(RegisterSource):
    name = "mdm"
    description = "the same demasker with no guidance (the plain masked-diffusion baseline)"


class EncodedRegisters(RegisterSource):
    name = "autoencode"
    description = "z₀ = h_φ(text): reconstruct the given programs (Alg. 6)"
    needs_text = True
    one_sample_per_text = True

    def initial_registers(self, pipe, run):
        z0 = pipe.encoder(**pipe.encoder_inputs(run.text)).registers
        run.nfe.encoder_calls += 1
        return z0


class PriorRegisters(RegisterSource):
    name = "con_then_disc"
    description = "z₀ sampled from the unconditional prior, then discrete denoising (Alg. 2)"
    conditions_on_prompt = True
    samples_from_prior = True

    def initial_registers(self, pipe, run):
        from ..schedulers.scheduling_register_prior import sample_registers

        if run.prompts is not None:  # App. H: z₀ ~ P(z | h_φ(what is visible: prompt and suffix))
            return pipe.conditional_registers(run.canvas, run)

        sampled = sample_registers(
            run.prior, run.prior_scheduler, run.num_samples, num_inference_steps=run.prior_steps, eta=run.eta,
            generator=run.generator,
        )  # fmt: skip
        run.nfe.count_prior_calls(run.prior, sampled.num_prior_calls)
        return sampled.registers


class RefreshedPriorRegisters(PriorRegisters):
    name = "con_within_disc"
    description = "ConThenDisc whose z₀ is resampled from the conditional prior on h_φ of the visible tokens (Alg. 3)"
    needs_conditional_prior = True
    uses_refresh_at = True

    def start(self, run):
        # fixed step budgets refresh after round(f · steps) calls; threshold decoding when a fraction f is unmasked
        if run.threshold is None:
            run._refresh_steps = {max(1, round(f * run.steps)) for f in run.refresh_at}
        else:
            run._pending = sorted(run.refresh_at)

    def refresh(self, pipe, canvas, step, z0, run):
        if step in run._refresh_steps:
            run._refresh_steps.discard(step)
        elif run._pending:
            generated = canvas[:, run.offset : run.offset + run.gen_length]
            unmasked = (generated != pipe.mask_token_id).float().mean(dim=1).min().item()
            if unmasked < run._pending[0]:
                return z0
            while run._pending and unmasked >= run._pending[0]:
                run._pending.pop(0)
        else:
            return z0
        return pipe.conditional_registers(canvas, run)


MODES: dict[str, RegisterSource] = {
    source.name: source for source in (RefreshedPriorRegisters(), PriorRegisters(), EncodedRegisters(), NoRegisters())
}


def generation_modes() -> list[str]:
    """Modes that sample programs without an input text (the choices of `crocodil generate --mode`)."""
    return [name for name, source in MODES.items() if not source.needs_text]


__all__ = [
    "EncodedRegisters",
    "GenerationRun",
    "MODES",
    "NoRegisters",
    "PriorRegisters",
    "RefreshedPriorRegisters",
    "RegisterSource",
    "generation_modes",
]
