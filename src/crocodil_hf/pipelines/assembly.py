"""Assembly of a `CrocodilPipeline` directory from the outputs of the training stages (`crocodil assemble`)."""

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from transformers import AutoTokenizer

from ..modeling.modeling_guided_llada import GuidedLLaDAForMaskedLM, load_reports_silenced
from ..modeling.modeling_register_encoder import RegisterEncoderModel
from ..modeling.modeling_register_prior import RegisterPriorTransformer
from ..schedulers.scheduling_register_prior import make_prior_scheduler, make_sampling_scheduler
from ..utils.numbers import check_number
from .components import check_prior_registers


def mdm_baseline_demasker(llada_dir: str, like: GuidedLLaDAForMaskedLM) -> GuidedLLaDAForMaskedLM:
    """A plain LLaDA MDM checkpoint (`crocodil train mdm`) as a demasker of `like`'s register shape; with no
    registers it runs the base model exactly (its register projection is new and never used)."""
    with load_reports_silenced():  # the register projection is new and unused in mode="mdm": no warning about it
        model = GuidedLLaDAForMaskedLM.from_base(
            llada_dir, num_registers=like.config.num_registers, register_dim=like.config.register_dim
        )
    model.config.default_gen_length = like.config.default_gen_length
    return model.eval()


def _option(field: str) -> str:
    return f"`{field}`"


@dataclass(frozen=True)
class AssemblyPlan:
    """What `crocodil assemble` puts together: stage output directories and the defaults saved with the pipeline.

    `check()` applies every rule before anything loads (each directory is the stage output it should be, counts are
    positive, a setting has the component it sets, `num_registers` fits K and the k of prefix priors, read from the
    configs); `spell` names the fields in the errors (the CLI spells them as its options).
    """

    autoencoder: str
    prior: str
    conditional_prior: str | None = None
    distilled_prior: str | None = None
    distilled_conditional_prior: str | None = None
    mdm_demasker: str | None = None
    prior_scheduler: str = "ddim"
    prior_steps: int = 50
    conditional_prior_steps: int | None = None
    distilled_steps: int | None = None
    num_registers: int | None = None

    def check(self, spell: Callable[[str], str] = _option) -> None:
        self._check_dir("autoencoder", "autoencoder", ["demasker/config.json", "encoder/config.json"], spell)
        self._check_dir("prior", "prior", ["config.json"], spell)
        for field, stage in STAGE_OF.items():
            if getattr(self, field):
                self._check_dir(field, stage, ["config.json"], spell)
        check_number(spell("prior_steps"), self.prior_steps, minimum=1, integer=True)
        check_number(spell("conditional_prior_steps"), self.conditional_prior_steps, minimum=1, integer=True,
                     allow_none=True)  # fmt: skip
        if self.conditional_prior_steps is not None and not self.conditional_prior:
            raise ValueError(
                f"{spell('conditional_prior_steps')} sets the conditional prior's steps, but no "
                f"{spell('conditional_prior')}."
            )
        check_number(spell("distilled_steps"), self.distilled_steps, minimum=1, integer=True, allow_none=True)
        check_number(spell("num_registers"), self.num_registers, minimum=1, integer=True, allow_none=True)
        self._check_registers(spell)
        if self.distilled_steps is not None and not (self.distilled_prior or self.distilled_conditional_prior):
            raise ValueError(
                f"{spell('distilled_steps')} needs {spell('distilled_prior')} or "
                f"{spell('distilled_conditional_prior')}."
            )

    def _check_dir(self, field: str, stage: str, needs: list[str], spell) -> None:
        value = getattr(self, field)
        expected = f"expected the output directory of `crocodil train {stage}`"
        if not Path(value).is_dir():
            raise ValueError(f"{spell(field)} {value} is not a directory; {expected}.")
        missing = [name for name in needs if not Path(value, name).is_file()]
        if missing:
            raise ValueError(f"{spell(field)} {value} has no {', '.join(missing)}; {expected}.")

    def _check_registers(self, spell) -> None:
        """`num_registers` against the demasker's K and the k of prefix priors, read from the components' configs
        (`check_prior_registers`: the pipeline's own rules, applied again when it is built)."""

        def registers(path) -> int | None:
            return json.loads(Path(path, "config.json").read_text()).get("num_registers")

        K = registers(Path(self.autoencoder, "demasker"))
        if K is None:
            return
        fields = ("prior", "conditional_prior", "distilled_prior", "distilled_conditional_prior")
        priors = {spell(f): registers(getattr(self, f)) for f in fields if getattr(self, f)}
        check_prior_registers(
            K, {name: k for name, k in priors.items() if k is not None}, self.num_registers, spell("num_registers")
        )


# optional components -> the stage whose output they are
STAGE_OF = {
    "conditional_prior": "conditional-prior",
    "distilled_prior": "prior-distill",
    "distilled_conditional_prior": "conditional-prior-distill",
    "mdm_demasker": "mdm",
}


def assemble_pipeline(
    autoencoder_dir: str,
    prior_dir: str,
    output_dir: str,
    conditional_prior_dir: str | None = None,
    *,
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
    registers shown to the demasker when they are sampled from a prior and a call gives none (default K).

    Example:
        ```python
        >>> pipe = assemble_pipeline("runs/autoencoder", "runs/prior", "runs/pipeline", "runs/conditional-prior")
        ```
    """
    plan = AssemblyPlan(
        autoencoder=autoencoder_dir, prior=prior_dir, conditional_prior=conditional_prior_dir,
        distilled_prior=distilled_prior_dir, distilled_conditional_prior=distilled_conditional_prior_dir,
        mdm_demasker=mdm_demasker_dir, prior_scheduler=prior_scheduler, prior_steps=default_prior_steps,
        conditional_prior_steps=default_conditional_prior_steps, distilled_steps=distilled_steps,
        num_registers=default_num_registers,
    )  # fmt: skip
    plan.check()
    return build_pipeline(plan, output_dir, overwrite=overwrite)


def build_pipeline(plan: AssemblyPlan, output_dir: str, overwrite: bool = False):
    """Load the components of a checked `AssemblyPlan`, build the pipeline (its own component rules apply) and save
    it to `output_dir`."""
    from .pipeline_crocodil import CrocodilPipeline

    output = Path(output_dir)
    if (output / "model_index.json").exists() and not overwrite:
        raise ValueError(f"{output} already holds a pipeline; pass --overwrite to replace it.")
    autoencoder = Path(plan.autoencoder)
    tokenizer = AutoTokenizer.from_pretrained(str(autoencoder / "tokenizer"))
    encoder_tokenizer = (
        AutoTokenizer.from_pretrained(str(autoencoder / "encoder_tokenizer"))
        if (autoencoder / "encoder_tokenizer").exists()
        else None
    )
    prior = RegisterPriorTransformer.from_pretrained(plan.prior)
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
            plan.prior_scheduler, make_sampling_scheduler(prior.config.num_train_timesteps).config
        ),
        tokenizer=tokenizer,
        conditional_prior=optional_prior(plan.conditional_prior),
        encoder_tokenizer=encoder_tokenizer,
        distilled_prior=optional_prior(plan.distilled_prior, plan.distilled_steps),
        distilled_conditional_prior=optional_prior(plan.distilled_conditional_prior, plan.distilled_steps),
        default_prior_steps=plan.prior_steps,
        default_conditional_prior_steps=plan.conditional_prior_steps,
        default_num_registers=plan.num_registers,
        mdm_demasker=mdm_baseline_demasker(plan.mdm_demasker, demasker) if plan.mdm_demasker else None,
    )
    pipe.save_pretrained(output_dir)
    return pipe


__all__ = ["AssemblyPlan", "assemble_pipeline", "build_pipeline", "mdm_baseline_demasker"]
