"""Stages 2 and 3, `crocodil train prior` / `crocodil train conditional-prior`: the register prior g_ψ on the banks
of the `registers` stage (App. E; the conditional prior as ConWithinDisc needs it); and their few-step students,
`crocodil train prior-distill` / `conditional-prior-distill` (`PriorDistillObjective`). Output: a
`RegisterPriorTransformer` directory."""

import json
from pathlib import Path

from datasets import load_from_disk

from ...modeling.modeling_register_encoder import RegisterEncoderModel
from ...modeling.modeling_register_prior import RegisterPriorTransformer, register_blocks
from ...schedulers.scheduling_register_prior import block_timestep_offsets
from ..objectives import RegisterPriorObjective
from ..trainers import RegisterCollator
from .common import init_components, save_stage, train

DEFAULT_PRIOR = {"hidden_size": 256, "num_layers": 4, "num_attention_heads": 4, "mlp_ratio": 4.0}


def load_registers(registers_dir: str | None):
    """The registers dataset (memory-mapped Arrow, read as torch tensors) and its `registers_info.json`."""
    if registers_dir is None:
        raise ValueError("prior stages need `registers_dir` (the output of `crocodil train registers`).")
    info_file = Path(registers_dir, "registers_info.json")
    if not info_file.is_file():
        raise ValueError(f"{registers_dir} is not the output of `crocodil train registers` (no registers_info.json).")
    return load_from_disk(registers_dir).with_format("torch"), json.loads(info_file.read_text())


def prefix_prior(prior: RegisterPriorTransformer, num_registers: int) -> RegisterPriorTransformer:
    """A prior over the first `num_registers` registers of `prior`'s banks, with its weights (the positional embedding
    is fixed sin-cos, so every weight carries over) and the timestep offsets of the blocks those registers lie in.

    Example:
        >>> full = RegisterPriorTransformer(num_registers=16, register_dim=8, hidden_size=16, num_layers=1,
        ...                                 num_attention_heads=2, timestep_offsets=[0.0, 0.05, 0.1, 0.15, 0.2])
        >>> prefix_prior(full, 2).config.timestep_offsets
        [0.0, 0.05]
    """
    config = dict(prior.config)
    if not 1 <= num_registers <= config["num_registers"]:
        raise ValueError(f"a prefix of a K={config['num_registers']} prior has 1..K registers, not {num_registers}.")
    offsets = config.get("timestep_offsets")
    config.update(
        num_registers=num_registers,
        timestep_offsets=None if offsets is None else list(offsets[: len(register_blocks(num_registers))]),
    )
    prefix = RegisterPriorTransformer.from_config(config)
    prefix.load_state_dict(prior.state_dict())
    return prefix


def _new_prior(model_args, args, num_registers: int, register_dim: int, conditional: bool):
    return RegisterPriorTransformer(
        num_registers=num_registers,
        register_dim=register_dim,
        cross_attention_dim=register_dim if conditional else None,
        timestep_offsets=block_timestep_offsets(num_registers, model_args.max_timestep_offset),
        num_train_timesteps=args.num_train_timesteps,
        **{**DEFAULT_PRIOR, **(model_args.prior_config or {})},
    )


def _run(stage: str, model_args, data_args, args, resume: str | None) -> str:
    registers, info = load_registers(data_args.registers_dir)
    bank_registers, register_dim = info["num_registers"], info["register_dim"]
    # a prefix prior models the first k (`run_stage` checked k <= K before any work)
    num_registers = model_args.prior_num_registers or bank_registers
    conditional = stage == "conditional-prior"
    if args.prompt_prob > 0 and not conditional:
        raise ValueError("`prompt_prob` applies to the mdm, autoencoder and conditional-prior stages, not to prior.")
    component = "conditional_prior" if conditional else "prior"
    init = init_components(model_args, component)
    if init:  # continue a trained pipeline's prior (strict loading; it must fit these registers)
        prior = RegisterPriorTransformer.from_pretrained(init[component])
        have = (prior.config.num_registers, prior.config.register_dim)
        if have[0] == bank_registers and num_registers < bank_registers and have[1] == register_dim:
            prior = prefix_prior(prior, num_registers)  # a prefix prior started from the full prior's weights
        elif have != (num_registers, register_dim):
            raise ValueError(
                f"`init_from` prior {init[component]} is for K={have[0]} registers of width d={have[1]}; "
                f"{data_args.registers_dir} holds K={bank_registers}, d={register_dim}"
                + (f" (prior_num_registers {num_registers})." if num_registers != bank_registers else ".")
            )
    else:
        prior = _new_prior(model_args, args, num_registers, register_dim, conditional)
    encoder = None
    collator = RegisterCollator()
    if conditional:
        encoder = RegisterEncoderModel.from_pretrained(model_args.encoder_name_or_path or info["encoder"])
        collator = RegisterCollator(info["eos_token_id"], info["max_length"])
    prompt = {}
    if conditional:
        prompt = {
            "prompt_prob": args.prompt_prob,
            "suffix_prob": args.prompt_suffix_prob,
            "span_pad": args.prompt_span_pad,
        }
    objective = RegisterPriorObjective(prior, encoder, **prompt)
    trainer, result = train(objective, args, registers["train"], collator, resume)
    record = {"stage": stage, "metrics": result.metrics, "init_from": model_args.init_from}
    save_stage(trainer, objective, {"prior": ""}, record)
    return args.output_dir


def _run_distill(stage: str, model_args, data_args, args, resume: str | None) -> str:
    """A few-step student of the `--init_from` pipeline's (conditional) prior, initialised from the teacher's weights."""
    from ...schedulers.scheduling_register_prior import make_prior_scheduler
    from ..objectives import PriorDistillObjective

    conditional = stage == "conditional-prior-distill"
    component = "conditional_prior" if conditional else "prior"
    if model_args.init_from is None:
        raise ValueError(f"`{stage}` distils a trained pipeline's {component}: pass `--init_from PIPELINE`.")
    registers, info = load_registers(data_args.registers_dir)
    init = init_components(model_args, component, "scheduler")
    teacher = RegisterPriorTransformer.from_pretrained(init[component])
    if teacher.config.distilled_steps is not None:
        raise ValueError(
            f"the {component} of {model_args.init_from} is already a distilled student; distil its teacher."
        )
    student = RegisterPriorTransformer.from_pretrained(init[component])
    student.register_to_config(distilled_steps=args.distilled_steps)
    scheduler_config = json.loads(Path(init["scheduler"], "scheduler_config.json").read_text())
    teacher_scheduler = make_prior_scheduler(args.teacher_solver, scheduler_config)
    encoder, collator = None, RegisterCollator()
    if conditional:
        encoder = RegisterEncoderModel.from_pretrained(model_args.encoder_name_or_path or info["encoder"])
        collator = RegisterCollator(info["eos_token_id"], info["max_length"])
    objective = PriorDistillObjective(student, teacher, teacher_scheduler, args.teacher_steps, encoder)
    trainer, result = train(objective, args, registers["train"], collator, resume)
    record = {"stage": stage, "metrics": result.metrics, "teacher": init[component], "teacher_solver": args.teacher_solver,
              "teacher_steps": args.teacher_steps, "distilled_steps": args.distilled_steps}  # fmt: skip
    save_stage(trainer, objective, {"prior": ""}, record)
    return args.output_dir


def run_distill_unconditional(model_args, data_args, args, resume: str | None) -> str:
    return _run_distill("prior-distill", model_args, data_args, args, resume)


def run_distill_conditional(model_args, data_args, args, resume: str | None) -> str:
    return _run_distill("conditional-prior-distill", model_args, data_args, args, resume)


def run_unconditional(model_args, data_args, args, resume: str | None) -> str:
    return _run("prior", model_args, data_args, args, resume)


def run_conditional(model_args, data_args, args, resume: str | None) -> str:
    return _run("conditional-prior", model_args, data_args, args, resume)
