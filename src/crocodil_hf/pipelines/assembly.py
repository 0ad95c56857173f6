"""Assembly of a `CrocodilPipeline` directory from the outputs of the training stages (`crocodil assemble`)."""

import json
from pathlib import Path

from transformers import AutoTokenizer

from ..modeling.modeling_guided_llada import GuidedLLaDAForMaskedLM, load_reports_silenced
from ..modeling.modeling_register_encoder import RegisterEncoderModel
from ..modeling.modeling_register_prior import RegisterPriorTransformer
from ..schedulers.scheduling_register_prior import make_prior_scheduler, make_sampling_scheduler
from ..utils.numbers import check_number


def mdm_baseline_demasker(llada_dir: str, like: GuidedLLaDAForMaskedLM) -> GuidedLLaDAForMaskedLM:
    """A plain LLaDA MDM checkpoint (`crocodil train mdm`) as a demasker of `like`'s register shape; with no
    registers it runs the base model exactly (its register projection is new and never used)."""
    with load_reports_silenced():  # the register projection is new and unused in mode="mdm": no warning about it
        model = GuidedLLaDAForMaskedLM.from_base(
            llada_dir, num_registers=like.config.num_registers, register_dim=like.config.register_dim
        )
    model.config.default_gen_length = like.config.default_gen_length
    return model.eval()


def assemble_pipeline(
    autoencoder_dir: str,
    prior_dir: str,
    output_dir: str,
    conditional_prior_dir: str | None = None,
    overwrite: bool = False,
    distilled_prior_dir: str | None = None,
    distilled_conditional_prior_dir: str | None = None,
    prior_scheduler: str = "ddim",
    default_prior_steps: int = 50,
    distilled_steps: int | None = None,
    mdm_demasker_dir: str | None = None,
    default_conditional_prior_steps: int | None = None,
    default_num_registers: int | None = None,
):
    """Assemble a `CrocodilPipeline` directory from the stage outputs (`crocodil assemble`): the autoencoder stage's
    (or a pipeline's) tokenizer, demasker and encoder, the priors, optional distilled students, and the priors'
    sampler (`PRIOR_SOLVERS` name) with its default step counts (the conditional prior's:
    `default_conditional_prior_steps`, default the unconditional one's). `distilled_steps` sets the students' default
    step count (their config's `distilled_steps`; default: the count each was distilled for). `mdm_demasker_dir`, an
    `mdm` stage output, becomes the `mdm_demasker` baseline that `mode="mdm"` runs. `default_num_registers`: the k ≤ K
    registers shown to the demasker when they are sampled from a prior and a call gives none (default K)."""
    from .pipeline_crocodil import CrocodilPipeline

    check_number("`distilled_steps`", distilled_steps, minimum=1, integer=True, allow_none=True)
    if distilled_steps is not None and not (distilled_prior_dir or distilled_conditional_prior_dir):
        raise ValueError("`distilled_steps` sets the distilled priors' steps, but no distilled prior was given.")
    output = Path(output_dir)
    if (output / "model_index.json").exists() and not overwrite:
        raise ValueError(f"{output} already holds a pipeline; pass --overwrite to replace it.")
    autoencoder = Path(autoencoder_dir)
    tokenizer = AutoTokenizer.from_pretrained(str(autoencoder / "tokenizer"))
    encoder_tokenizer = (
        AutoTokenizer.from_pretrained(str(autoencoder / "encoder_tokenizer"))
        if (autoencoder / "encoder_tokenizer").exists()
        else None
    )
    prior = RegisterPriorTransformer.from_pretrained(prior_dir)
    demasker = GuidedLLaDAForMaskedLM.from_pretrained(str(autoencoder / "demasker"))
    record = autoencoder / "training_complete.json"
    if record.exists() and "max_length" in json.loads(record.read_text()):
        # the generation length the pipeline was trained for: BOS + L positions
        demasker.config.default_gen_length = json.loads(record.read_text())["max_length"] - 1

    def optional_prior(path, steps=None):
        if not path:
            return None
        model = RegisterPriorTransformer.from_pretrained(path)
        if steps is not None:
            model.register_to_config(distilled_steps=steps)
        return model

    pipe = CrocodilPipeline(
        demasker=demasker,
        encoder=RegisterEncoderModel.from_pretrained(str(autoencoder / "encoder")),
        prior=prior,
        scheduler=make_prior_scheduler(
            prior_scheduler, make_sampling_scheduler(prior.config.num_train_timesteps).config
        ),
        tokenizer=tokenizer,
        conditional_prior=optional_prior(conditional_prior_dir),
        encoder_tokenizer=encoder_tokenizer,
        distilled_prior=optional_prior(distilled_prior_dir, distilled_steps),
        distilled_conditional_prior=optional_prior(distilled_conditional_prior_dir, distilled_steps),
        default_prior_steps=default_prior_steps,
        default_conditional_prior_steps=default_conditional_prior_steps,
        default_num_registers=default_num_registers,
        mdm_demasker=mdm_baseline_demasker(mdm_demasker_dir, demasker) if mdm_demasker_dir else None,
    )
    pipe.save_pretrained(output_dir)
    return pipe


__all__ = ["assemble_pipeline", "mdm_baseline_demasker"]
