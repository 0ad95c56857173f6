"""The stage table of `crocodil train STAGE`: adding a stage is one module here and one line below.

Each entry names `module:function` with `function(model_args, data_args, training_args, resume) -> output_dir`; the
module is imported only when the stage runs, so the CLI lists stages without importing torch.
"""

import importlib
from collections.abc import Callable

STAGES = {
    "mdm": "mdm:run",
    "autoencoder": "autoencoder:run",
    "registers": "registers:run",
    "prior": "prior:run_unconditional",
    "conditional-prior": "prior:run_conditional",
    "prior-distill": "prior:run_distill_unconditional",
    "conditional-prior-distill": "prior:run_distill_conditional",
}


def stage_runner(stage: str) -> Callable:
    """The run function of a stage (imports its module)."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {', '.join(STAGES)}.")
    module, function = STAGES[stage].split(":")
    return getattr(importlib.import_module(f".{module}", __name__), function)


__all__ = ["STAGES", "stage_runner"]
