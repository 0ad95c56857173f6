"""Models. Every file here that a transformers model needs is remote-code safe (docs/architecture.md, "Remote code")."""

from .configuration_crocodil import GuidedLLaDAConfig, RegisterEncoderConfig
from .configuration_llada import LLaDAConfig
from .modeling_guided_llada import GuidedLLaDAForMaskedLM, GuidedMaskedLMOutput
from .modeling_llada import LLaDAModel, LLaDAModelLM, LLaDAPreTrainedModel
from .modeling_register_encoder import (
    RegisterEncoderModel,
    RegisterEncoderOutput,
    nested_dropout,
    normalize_registers,
)

__all__ = [
    "GuidedLLaDAConfig",
    "GuidedLLaDAForMaskedLM",
    "GuidedMaskedLMOutput",
    "LLaDAConfig",
    "LLaDAModel",
    "LLaDAModelLM",
    "LLaDAPreTrainedModel",
    "RegisterEncoderConfig",
    "RegisterEncoderModel",
    "RegisterEncoderOutput",
    "nested_dropout",
    "normalize_registers",
]


from .._registration import register  # noqa: E402  (after the classes it registers)

register()
