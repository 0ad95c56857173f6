"""The stage table of `crocodil train STAGE`: one `Stage` per stage, naming its run function by reference.

Each stage is one module of this folder (`mdm`, `autoencoder`, `registers`, `prior`) with a run function
`(model_args, data_args, training_args, resume) -> output_dir`; its objective comes from `training/objectives.py`.
The run functions below import their module when the stage runs (a plain import a reader or a tool can follow), so
the CLI lists stages without importing torch. Adding a stage is one module and one `Stage` line in `STAGES`;
`run.py` and the CLI read everything else about a stage from its entry.
"""

from collections.abc import Callable
from dataclasses import dataclass


def _mdm(*args):
    from .mdm import run

    return run(*args)


def _autoencoder(*args):
    from .autoencoder import run

    return run(*args)


def _registers(*args):
    from .registers import run

    return run(*args)


def _prior(*args):
    from .prior import run_unconditional

    return run_unconditional(*args)


def _conditional_prior(*args):
    from .prior import run_conditional

    return run_conditional(*args)


def _prior_distill(*args):
    from .prior import run_distill_unconditional

    return run_distill_unconditional(*args)


def _conditional_prior_distill(*args):
    from .prior import run_distill_conditional

    return run_distill_conditional(*args)


@dataclass(frozen=True)
class Stage:
    """One training stage.

    Args:
        name: `crocodil train NAME`.
        run: `(model_args, data_args, training_args, resume) -> output_dir`.
        description: One line for `--help`.
        models_from_init: With `--init_from`, the stage takes its tokenizer and models from that pipeline (the
            config's model paths are not read).
        prefix_priors: The stage accepts `--prior_num_registers k` (priors over the first k registers).
    """

    name: str
    run: Callable
    description: str
    models_from_init: bool = False
    prefix_priors: bool = False


STAGES: dict[str, Stage] = {
    stage.name: stage
    for stage in (
        Stage("mdm", _mdm, "plain masked diffusion (the demasker without registers)", models_from_init=True),
        Stage("autoencoder", _autoencoder, "encoder h_φ and guided demasker f_θ jointly (Alg. 1)",
              models_from_init=True),
        Stage("registers", _registers, "encode the corpus to register banks for the priors"),
        Stage("prior", _prior, "the unconditional register prior g_ψ (App. E)", prefix_priors=True),
        Stage("conditional-prior", _conditional_prior, "the conditional prior for ConWithinDisc",
              prefix_priors=True),
        Stage("prior-distill", _prior_distill, "a few-step student of the prior"),
        Stage("conditional-prior-distill", _conditional_prior_distill, "a few-step student of the conditional prior"),
    )
}  # fmt: skip
STAGE_NAMES = tuple(STAGES)


def get_stage(name: str) -> Stage:
    """The stage of a name; an unknown name is refused with the list."""
    if name not in STAGES:
        raise ValueError(f"unknown stage {name!r}; expected one of {', '.join(STAGES)}.")
    return STAGES[name]


__all__ = ["STAGES", "STAGE_NAMES", "Stage", "get_stage"]
