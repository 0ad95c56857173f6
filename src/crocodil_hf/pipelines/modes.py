r"""The generation modes: where the registers z₀ that guide the demasker come from, one small class per mode.

Every mode runs the same discrete loop (`CrocodilPipeline.denoise`); a mode only says how z₀ starts
(`initial_registers`) and whether it is renewed at chosen points of the trajectory (`refresh`). A mode receives what
it needs, never the pipeline: a `priors.RegisterSampler` (`encode(texts)`, `unconditional(n)`, `conditional(canvas)`,
each counted in the call's NFE), the call's frozen `settings.GenerationSettings` and the loop's `settings.LoopState`.
`MODES` is the one table the pipeline's `check_inputs`, the CLI and the evaluation sweep read. This module imports no
torch, so the CLI lists and checks modes before anything loads.

Adding a mode is one class and one line in `MODES`. For example, a mode that decodes the average register bank of a
few example programs (a "style" prompt):

```python
from crocodil_hf import CrocodilPipeline, normalize_registers
from crocodil_hf.pipelines.modes import MODES, RegisterSource

class MeanOfExamples(RegisterSource):
    name = "mean_of_examples"
    description = "decode the mean registers of `text`"
    needs_text = True

    def initial_registers(self, sampler, settings, state):
        z = sampler.encode(settings.text)  # one encoder call, counted
        return normalize_registers(z.mean(dim=0, keepdim=True).expand(settings.num_samples, -1, -1))

MODES[MeanOfExamples.name] = MeanOfExamples()
pipe = CrocodilPipeline.from_pretrained("crocodil-python-tiny")
pipe(mode="mean_of_examples", text=["def f(x):\n    return x\n", "def g(y):\n    return y\n"], num_samples=4)
```
"""


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
    makes_registers: bool = True  # False: no z₀ unless the call gives `registers=` (`num_registers=` alone is refused)

    def initial_registers(self, sampler, settings, state):
        """z₀ `(B, K, d)` before the first demasker call, or `None` for an unguided demasker."""
        return None

    def start(self, settings, state) -> None:
        """Prepare the refresh schedule of a call in `state` (modes that refresh)."""

    def refresh(self, sampler, settings, state):
        """z₀ for the next demasker call (`state.calls` counts the calls made so far); unchanged by default."""
        return state.registers


class NoRegisters(RegisterSource):
    name = "mdm"
    description = "the same demasker with no guidance (the plain masked-diffusion baseline)"
    makes_registers = False


class EncodedRegisters(RegisterSource):
    name = "autoencode"
    description = "z₀ = h_φ(text): reconstruct the given programs (Alg. 6)"
    needs_text = True
    one_sample_per_text = True

    def initial_registers(self, sampler, settings, state):
        return sampler.encode(settings.text)


class PriorRegisters(RegisterSource):
    name = "con_then_disc"
    description = "z₀ sampled from the unconditional prior, then discrete denoising (Alg. 2)"
    conditions_on_prompt = True
    samples_from_prior = True

    def initial_registers(self, sampler, settings, state):
        if settings.prompts is not None:  # App. H: z₀ ~ P(z | h_φ(what is visible: prompt and suffix))
            return sampler.conditional(state.canvas)
        return sampler.unconditional(settings.num_samples)


class RefreshedPriorRegisters(PriorRegisters):
    name = "con_within_disc"
    description = "ConThenDisc whose z₀ is resampled from the conditional prior on h_φ of the visible tokens (Alg. 3)"
    needs_conditional_prior = True
    uses_refresh_at = True

    def start(self, settings, state):
        # fixed step budgets refresh after round(f · steps) calls; threshold decoding when a fraction f is unmasked
        if settings.threshold is None:
            state.refresh_steps = {max(1, round(f * settings.steps)) for f in settings.refresh_at}
        else:
            state.refresh_fractions = sorted(settings.refresh_at)

    def refresh(self, sampler, settings, state):
        pending = state.refresh_fractions
        if state.calls in state.refresh_steps:
            state.refresh_steps.discard(state.calls)
        elif pending:
            generated = state.canvas[:, sampler.layout.span]
            unmasked = (generated != sampler.mask_token_id).float().mean(dim=1).min().item()
            if unmasked < pending[0]:
                return state.registers
            while pending and unmasked >= pending[0]:
                pending.pop(0)
        else:
            return state.registers
        return sampler.conditional(state.canvas)


MODES: dict[str, RegisterSource] = {
    source.name: source for source in (RefreshedPriorRegisters(), PriorRegisters(), EncodedRegisters(), NoRegisters())
}


def generation_modes() -> list[str]:
    """Modes that sample programs without an input text (the choices of `crocodil generate --mode`)."""
    return [name for name, source in MODES.items() if not source.needs_text]


__all__ = [
    "EncodedRegisters",
    "MODES",
    "NoRegisters",
    "PriorRegisters",
    "RefreshedPriorRegisters",
    "RegisterSource",
    "generation_modes",
]
