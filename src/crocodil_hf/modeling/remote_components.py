"""The model components of a pipeline as diffusers' remote-code loader reads them: a pushed pipeline's
`model_index.json` names this module for its demasker, encoder and priors (`pipelines/remote_code.py`), and each of
those folders holds a copy of this file.

diffusers downloads a component's folder with only the one module the index names, and copies that module's
relative imports from the same folder; a modeling file with siblings (`modeling_guided_llada.py` imports
`modeling_llada.py` and the configurations) would fail there. This module names no sibling in the `from .x import`
form that diffusers follows: `from . import x` finds the modeling files the pipeline's own code has already loaded
(they sit at the repository root), so every component shares the classes of the pipeline's code.
"""

from . import modeling_guided_llada, modeling_register_encoder, modeling_register_prior

GuidedLLaDAForMaskedLM = modeling_guided_llada.GuidedLLaDAForMaskedLM
RegisterEncoderModel = modeling_register_encoder.RegisterEncoderModel
RegisterPriorTransformer = modeling_register_prior.RegisterPriorTransformer

__all__ = ["GuidedLLaDAForMaskedLM", "RegisterEncoderModel", "RegisterPriorTransformer"]
