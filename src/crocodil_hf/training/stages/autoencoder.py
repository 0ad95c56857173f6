"""Stage 1, `crocodil train autoencoder`: the register encoder h_φ and the guided demasker f_θ trained together
(Alg. 1, App. C). Output: `encoder/`, `demasker/` (merged when LoRA is on, with `demasker_adapter/` /
`encoder_adapter/` beside them),
`tokenizer/` and `encoder_tokenizer/`."""

from pathlib import Path

from ...modeling.configuration_crocodil import GuidedLLaDAConfig
from ...modeling.modeling_guided_llada import GuidedLLaDAForMaskedLM
from ...modeling.modeling_register_encoder import RegisterEncoderModel
from ..objectives import AutoencoderObjective
from ..trainers import ProgramCollator
from .common import (
    ENCODER_LORA_TARGETS,
    MASTER_DTYPE,
    apply_lora,
    build_encoder,
    init_components,
    llada_fields,
    load_encoder_tokenizer,
    load_tokenizer,
    program_data,
    save_stage,
    train,
)


def run(model_args, data_args, args, resume: str | None) -> str:
    init = init_components(model_args, "tokenizer", "encoder", "demasker")
    tokenizer = load_tokenizer(init["tokenizer"] if init else model_args.tokenizer_name_or_path)
    encoder_tokenizer = load_encoder_tokenizer(model_args)
    corpus, summary = program_data(tokenizer, data_args, args)
    if init:  # continue a trained pipeline: its encoder and guided demasker as they are
        encoder = RegisterEncoderModel.from_pretrained(init["encoder"], dtype=MASTER_DTYPE)
    else:
        encoder = build_encoder(model_args, tokenizer, encoder_tokenizer)
    guided = {
        "num_registers": model_args.num_registers,
        "register_dim": encoder.config.register_dim,
        "prefix_rope_pairs": model_args.prefix_rope_pairs,
    }
    if init:
        demasker = GuidedLLaDAForMaskedLM.from_pretrained(init["demasker"], dtype=MASTER_DTYPE)
    elif model_args.model_name_or_path:
        demasker = GuidedLLaDAForMaskedLM.from_base(model_args.model_name_or_path, dtype=MASTER_DTYPE, **guided)
    else:
        demasker = GuidedLLaDAForMaskedLM(
            GuidedLLaDAConfig(**llada_fields(tokenizer, model_args.model_config), **guided)
        )
    if args.use_lora:
        demasker = apply_lora(demasker, args, modules_to_save=("register_proj",))
    if args.lora_encoder:
        encoder = apply_lora(encoder, args, target_modules=ENCODER_LORA_TARGETS)
    objective = AutoencoderObjective(
        encoder,
        demasker,
        register_noise_cs=args.register_noise_cs,
        all_mask_prob=args.all_mask_prob,
        nested_dropout=args.nested_dropout,
        prompt_prob=args.prompt_prob,
        suffix_prob=args.prompt_suffix_prob,
        span_pad=args.prompt_span_pad,
    )
    trainer, result = train(
        objective,
        args,
        corpus["train"],
        ProgramCollator(tokenizer.eos_token_id, data_args.max_length, encoder_tokenizer),
        resume,
        clean_warmup_steps=args.clean_warmup_steps,
        encoder_warmup_steps=args.encoder_warmup_steps,
    )
    saves = [lambda out: tokenizer.save_pretrained(Path(out, "tokenizer"))]
    if encoder_tokenizer is not None:
        saves.append(lambda out: encoder_tokenizer.save_pretrained(Path(out, "encoder_tokenizer")))
    save_stage(
        trainer,
        objective,
        {"encoder": "encoder", "demasker": "demasker"},
        {
            "stage": "autoencoder",
            "metrics": result.metrics,
            "corpus": str(summary),
            "max_length": data_args.max_length,
            "init_from": model_args.init_from,
        },
        extra_saves=saves,
    )
    return args.output_dir
