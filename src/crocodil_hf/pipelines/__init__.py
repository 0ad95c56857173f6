"""Pipelines: `CrocodilPipeline`, the mode table and the register priors a pipeline samples with. The mode table
(`modes.MODES`) is torch-free, so that the CLI lists and checks modes before anything loads."""

from .modes import MODES, generation_modes

__all__ = ["MODES", "generation_modes"]
