"""Schedulers: the floor below pipelines and training, as diffusers keeps `schedulers/`.

- `scheduling_masked_diffusion`: `MaskedDiffusionScheduler`, the discrete step of every mode (LLaDA's sampler).
- `scheduling_register_prior`: everything about the register prior's time schedule: block offsets, per-register
  noise, the training and sampling schedulers, the prior solvers and the register sampler (App. E).

This module imports no torch: the CLI checks solver and remasking names before anything loads.
"""

from .names import PRIOR_SOLVER_NAMES, PRIOR_SOLVER_SPECS, REMASKING

__all__ = ["PRIOR_SOLVER_NAMES", "PRIOR_SOLVER_SPECS", "REMASKING"]
