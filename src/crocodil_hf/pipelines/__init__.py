"""Pipelines: `CrocodilPipeline`, the mode table and the register priors a pipeline samples with. The mode table
(`modes.MODES`) and the cache table (`caching.KV_CACHES`) are torch-free, so that the CLI lists and checks modes
before anything loads."""

from .caching import KV_CACHES
from .modes import MODES, generation_modes

__all__ = ["KV_CACHES", "MODES", "generation_modes"]
