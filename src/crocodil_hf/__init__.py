"""crocodil_hf: CRoCoDiL (Continuous and Robust Conditioned Diffusion for Language), Hugging Face native.

Importing the package registers the three transformers models with the Auto classes, so that local code is used even
for Hub repositories that carry remote code, and `save_pretrained` writes an `auto_map` with self-contained remote
code (DESIGN §3.1).
"""

from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

from .modeling import (
    GuidedLLaDAConfig,
    GuidedLLaDAForMaskedLM,
    GuidedMaskedLMOutput,
    LLaDAConfig,
    LLaDAModel,
    LLaDAModelLM,
    RegisterEncoderConfig,
    RegisterEncoderModel,
    RegisterEncoderOutput,
    nested_dropout,
    normalize_registers,
)
from .modeling.modeling_register_prior import (
    RegisterPriorOutput,
    RegisterPriorTransformer,
    block_timestep_offsets,
    block_timesteps,
    register_blocks,
)
from .pipelines.pipeline_crocodil import CrocodilPipeline, CrocodilPipelineOutput
from .pipelines.sampling import MaskedDiffusionScheduler

__version__ = "0.1.0.dev0"


def _register_auto_classes() -> None:
    for config_cls, model_cls in (
        (LLaDAConfig, LLaDAModelLM),
        (GuidedLLaDAConfig, GuidedLLaDAForMaskedLM),
        (RegisterEncoderConfig, RegisterEncoderModel),
    ):
        AutoConfig.register(config_cls.model_type, config_cls, exist_ok=True)
        AutoModel.register(config_cls, model_cls, exist_ok=True)
        # Written into config.json's auto_map on save, with the modeling files copied beside the weights.
        config_cls.register_for_auto_class()
        model_cls.register_for_auto_class("AutoModel")
    for config_cls, model_cls in ((LLaDAConfig, LLaDAModelLM), (GuidedLLaDAConfig, GuidedLLaDAForMaskedLM)):
        AutoModelForMaskedLM.register(config_cls, model_cls, exist_ok=True)


_register_auto_classes()

__all__ = [
    "CrocodilPipeline",
    "CrocodilPipelineOutput",
    "MaskedDiffusionScheduler",
    "GuidedLLaDAConfig",
    "GuidedLLaDAForMaskedLM",
    "GuidedMaskedLMOutput",
    "LLaDAConfig",
    "LLaDAModel",
    "LLaDAModelLM",
    "RegisterEncoderConfig",
    "RegisterEncoderModel",
    "RegisterEncoderOutput",
    "RegisterPriorOutput",
    "RegisterPriorTransformer",
    "block_timestep_offsets",
    "block_timesteps",
    "nested_dropout",
    "normalize_registers",
    "register_blocks",
]
