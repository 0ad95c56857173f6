"""Pipelines and samplers. The mode table (`modes.MODES`), the remasking rules and the prior solvers' names are
torch-free, so that the CLI lists and checks them before anything loads."""

from .modes import MODES, generation_modes

REMASKING = ("low_confidence", "random")  # which candidates a `MaskedDiffusionScheduler` step commits

# the priors' samplers: name -> (diffusers scheduler class, the config it needs on top of the pipeline's schedule);
# `prior_sampling.PRIOR_SOLVERS` maps the same names to the classes
PRIOR_SOLVER_SPECS = {
    "ddim": ("DDIMScheduler", {"clip_sample": False, "set_alpha_to_one": True}),
    "dpmsolver++": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "unipc": ("UniPCMultistepScheduler", {"predict_x0": True, "solver_order": 2}),
}
PRIOR_SOLVER_NAMES = tuple(PRIOR_SOLVER_SPECS)

__all__ = ["MODES", "PRIOR_SOLVER_NAMES", "PRIOR_SOLVER_SPECS", "REMASKING", "generation_modes"]
