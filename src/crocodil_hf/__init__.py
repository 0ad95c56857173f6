"""crocodil_hf: CRoCoDiL (Continuous and Robust Conditioned Diffusion for Language), Hugging Face native.

Importing the package registers the three transformers models with the Auto classes, so that local code is used even
for Hub repositories that carry remote code, and `save_pretrained` writes an `auto_map` with self-contained remote
code (DESIGN §3.1).
"""

from diffusers import ModelMixin, SchedulerMixin  # noqa: F401  (looked up on this package by diffusers' loader)
from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM, PreTrainedModel  # noqa: F401

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


def _register_with_diffusers() -> None:
    """Make diffusers treat `crocodil_hf` like `transformers`: a library whose classes it loads with `from_pretrained`.

    Without this, `model_index.json` names each component by its module path (`crocodil_hf.modeling....`), which
    diffusers' Hub download takes for a custom-code file it expects inside the repository. Registered, the components
    are recorded as `["crocodil_hf", "<Class>"]` and resolved by importing this package. diffusers finds each class's
    load method by matching base classes it looks up on the library, hence the three base-class attributes below.
    """
    from diffusers.pipelines import pipeline_loading_utils

    loadable = {
        "ModelMixin": ["save_pretrained", "from_pretrained"],
        "SchedulerMixin": ["save_pretrained", "from_pretrained"],
        "PreTrainedModel": ["save_pretrained", "from_pretrained"],
    }
    pipeline_loading_utils.LOADABLE_CLASSES.setdefault("crocodil_hf", loadable)
    for name, methods in loadable.items():
        pipeline_loading_utils.ALL_IMPORTABLE_CLASSES.setdefault(name, methods)


_register_auto_classes()
_register_with_diffusers()

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
