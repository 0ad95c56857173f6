"""The stage table of `crocodil train STAGE`: adding a stage is one module here and one line below.

Each entry is `run(model_args, data_args, training_args, resume) -> output_dir`.
"""

from . import autoencoder, mdm, prior, registers

STAGES = {
    "mdm": mdm.run,
    "autoencoder": autoencoder.run,
    "registers": registers.run,
    "prior": prior.run_unconditional,
    "conditional-prior": prior.run_conditional,
}

__all__ = ["STAGES"]
