"""crocodil_hf: CRoCoDiL (Continuous and Robust Conditioned Diffusion for Language), Hugging Face native.

The package imports lazily (like transformers' own `__init__`): `import crocodil_hf` loads neither torch nor
transformers, so `crocodil --help` answers at once; the first access to a class below imports its module. Importing
any model or pipeline module registers the three transformers models with the Auto classes (so that local code is
used even for Hub repositories that carry remote code, and `save_pretrained` writes an `auto_map` with
self-contained remote code) and registers `crocodil_hf` as a library with diffusers' pipeline loader.

Example:
    ```python
    >>> from crocodil_hf import CrocodilPipeline
    >>> pipe = CrocodilPipeline.from_pretrained("crocodil-python-tiny")
    ```
"""

import importlib

__version__ = "0.1.0.dev0"

# public name -> module (relative to this package) that defines it
_LAZY = {
    **dict.fromkeys(
        [
            "GuidedLLaDAConfig",
            "GuidedLLaDAForMaskedLM",
            "GuidedMaskedLMOutput",
            "LLaDAConfig",
            "LLaDAModel",
            "LLaDAModelLM",
            "RegisterEncoderConfig",
            "RegisterEncoderModel",
            "RegisterEncoderOutput",
            "nested_dropout",
            "normalize_registers",
        ],
        ".modeling",
    ),
    **dict.fromkeys(
        [
            "RegisterPriorOutput",
            "RegisterPriorTransformer",
            "block_timesteps",
            "register_blocks",
        ],
        ".modeling.modeling_register_prior",
    ),
    **dict.fromkeys(
        ["block_timestep_offsets", "make_prior_scheduler", "make_sampling_scheduler", "sample_registers"],
        ".schedulers.scheduling_register_prior",
    ),
    "CrocodilPipeline": ".pipelines.pipeline_crocodil",
    "CrocodilPipelineOutput": ".pipelines.pipeline_crocodil",
    "MaskedDiffusionScheduler": ".schedulers.scheduling_masked_diffusion",
}
# Base classes diffusers' pipeline loader looks up on a registered library to find each component's load method.
_LOADER_BASES = {"ModelMixin": "diffusers", "SchedulerMixin": "diffusers", "PreTrainedModel": "transformers"}

__all__ = sorted(_LAZY)


def __getattr__(name: str):
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    elif name in _LOADER_BASES:
        importlib.import_module(".modeling", __name__)  # a pipeline load: register the models first
        value = getattr(importlib.import_module(_LOADER_BASES[name]), name)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY) | set(_LOADER_BASES))
