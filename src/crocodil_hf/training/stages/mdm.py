"""Stage 0, `crocodil train mdm`: base masked diffusion (LLaDA's loss) on programs, from scratch, from a LLaDA
checkpoint, or continuing a pipeline's plain-MDM baseline (`--init_from PIPELINE`: its `mdm_demasker` and tokenizer).
Output: a `LLaDAModelLM` directory with its tokenizer."""

from ...modeling.configuration_llada import LLaDAConfig
from ...modeling.modeling_guided_llada import GuidedLLaDAForMaskedLM
from ...modeling.modeling_llada import LLaDAModelLM
from ..objectives import MaskedDiffusionObjective
from ..trainers import ProgramCollator
from .common import (
    MASTER_DTYPE,
    apply_lora,
    init_components,
    llada_fields,
    load_tokenizer,
    program_data,
    save_stage,
    train,
)


def run(model_args, data_args, args, resume: str | None) -> str:
    init = init_components(model_args, "tokenizer", "mdm_demasker")
    tokenizer = load_tokenizer(init["tokenizer"] if init else model_args.tokenizer_name_or_path)
    corpus, summary = program_data(tokenizer, data_args, args)
    if init:  # the pipeline's baseline is stored as a guided demasker whose register weights it never uses
        model = GuidedLLaDAForMaskedLM.load_as_base(init["mdm_demasker"], dtype=MASTER_DTYPE)
    elif model_args.model_name_or_path:
        model = LLaDAModelLM.from_pretrained(model_args.model_name_or_path, dtype=MASTER_DTYPE)
    else:
        model = LLaDAModelLM(LLaDAConfig(**llada_fields(tokenizer, model_args.model_config)))
    if args.use_lora:
        model = apply_lora(model, args)
    objective = MaskedDiffusionObjective(
        model, prompt_prob=args.prompt_prob, suffix_prob=args.prompt_suffix_prob, span_pad=args.prompt_span_pad
    )
    trainer, result = train(
        objective, args, corpus["train"], ProgramCollator(tokenizer.eos_token_id, data_args.max_length), resume
    )
    save_stage(
        trainer,
        objective,
        {"demasker": ""},
        {"stage": "mdm", "metrics": result.metrics, "corpus": str(summary), "init_from": model_args.init_from},
        extra_saves=[tokenizer.save_pretrained],
    )
    return args.output_dir
