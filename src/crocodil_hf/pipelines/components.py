"""The rules a pipeline's components obey together (K, d, k of prefix priors, vocabularies, the class each saved
component may be), checked when a pipeline is built and before a saved one is loaded."""

import json
from pathlib import Path

if __package__.startswith("crocodil_hf"):  # the installed package
    from crocodil_hf.schedulers.names import PRIOR_SOLVER_SPECS
    from crocodil_hf.utils.numbers import check_number
else:  # a pipeline's remote code (pipelines/remote_code.py): the package's files side by side in one folder
    from .names import PRIOR_SOLVER_SPECS
    from .numbers import check_number


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
    demasker, encoder, prior, *, conditional_prior=None, mask_scheduler=None, distilled_prior=None,
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


# component -> the classes it may be (by name: `model_index.json` records names)
COMPONENT_CLASSES = {
    "demasker": ("GuidedLLaDAForMaskedLM",),
    "encoder": ("RegisterEncoderModel",),
    "prior": ("RegisterPriorTransformer",),
    "conditional_prior": ("RegisterPriorTransformer",),
    "distilled_prior": ("RegisterPriorTransformer",),
    "mdm_demasker": ("GuidedLLaDAForMaskedLM",),
    "distilled_conditional_prior": ("RegisterPriorTransformer",),
    "mask_scheduler": ("MaskedDiffusionScheduler",),
    "scheduler": tuple(cls for cls, _ in PRIOR_SOLVER_SPECS.values()),
}


def check_model_index(directory) -> None:
    """Check a saved pipeline's `model_index.json` before loading: every required component present, each named
    with a class it can be, and its folder there; errors name the component."""
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
        allowed = COMPONENT_CLASSES.get(component)
        if allowed and spec[1] not in allowed:
            raise ValueError(
                f"{index_path}: component `{component}` names class {spec[1]!r}; expected {' or '.join(allowed)}."
            )
        if not Path(directory, component).is_dir():
            raise ValueError(f"{directory}: the folder of component `{component}` is missing.")


__all__ = ["COMPONENT_CLASSES", "check_components", "check_model_index", "check_prior_registers", "check_texts"]
