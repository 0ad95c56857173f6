"""Pipelines and samplers. The mode table (`modes.MODES`) and the remasking rules are torch-free, so that the CLI
lists and checks them before anything loads."""

from .modes import MODES, generation_modes

REMASKING = ("low_confidence", "random")  # which candidates a `MaskedDiffusionScheduler` step commits

__all__ = ["MODES", "REMASKING", "generation_modes"]
