"""The names a call or a command may give for a scheduler's options: the remasking rules and the priors' solvers.
Torch-free (the CLI checks names before anything loads), and a module of its own so that the scheduler files import
it as a sibling (`.names`), in the package and in a pipeline's remote code alike."""

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
