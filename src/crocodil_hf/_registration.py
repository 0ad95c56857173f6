"""Registration of crocodil_hf's models with transformers' Auto classes and with diffusers' pipeline loader; runs
once, when `crocodil_hf.modeling` is first imported (any model or pipeline import)."""


def _register_auto_classes() -> None:
    """Register the three transformers models with the Auto classes; `save_pretrained` then writes an `auto_map`."""
    from transformers import AutoConfig, AutoModel, AutoModelForMaskedLM

    from .modeling import (
        GuidedLLaDAConfig,
        GuidedLLaDAForMaskedLM,
        LLaDAConfig,
        LLaDAModelLM,
        RegisterEncoderConfig,
        RegisterEncoderModel,
    )

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
    are recorded as `["crocodil_hf", "<Class>"]` and resolved by importing the package. diffusers finds each class's
    load method by matching base classes it looks up on the library (`crocodil_hf.ModelMixin`, ...).
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


def register() -> None:
    _register_auto_classes()
    _register_with_diffusers()
