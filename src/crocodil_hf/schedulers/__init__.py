"""Schedulers: the floor below pipelines and training, as diffusers keeps `schedulers/`.

- `scheduling_masked_diffusion`: `MaskedDiffusionScheduler`, the discrete step of every mode (LLaDA's sampler).
- `scheduling_register_prior`: everything about the register prior's time schedule: block offsets, per-register
  noise, the training and sampling schedulers, the prior solvers and the register sampler (App. E).

This module imports no torch: the CLI checks solver and remasking names before anything loads.
"""

REMASKING = ("low_confidence", "random")  # which candidates a `MaskedDiffusionScheduler` step commits

# the priors' samplers: name -> (diffusers scheduler class, the config it needs on top of the pipeline's schedule);
# `scheduling_register_prior.PRIOR_SOLVERS` maps the same names to the classes
PRIOR_SOLVER_SPECS = {
    "ddim": ("DDIMScheduler", {"clip_sample": False, "set_alpha_to_one": True}),
    "dpmsolver++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "unipc": ("UniPCMultistepScheduler", {"predict_x0": True, "solver_order": 2}),
}
PRIOR_SOLVER_NAMES = tuple(PRIOR_SOLVER_SPECS)

__all__ = ["PRIOR_SOLVER_NAMES", "PRIOR_SOLVER_SPECS", "REMASKING"]
