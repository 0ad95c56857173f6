"""What every stage shares: output-directory rules, data, model builders, the Trainer run and the final save.

The final save is the same for every stage and every distributed backend: all processes take part in gathering the
full state dict of the trained objective (a collective under FSDP2 / ZeRO-3), the main process splits it by
component, writes each with `save_pretrained(..., state_dict=)` (the diffusers prior: config + safetensors), loads
every written component back with its strict `from_pretrained`, checks that it holds the trained values, and only
then writes `training_complete.json`.
"""

import copy
import json
import logging
import shutil
from contextlib import contextmanager
from pathlib import Path

import torch
from transformers import AutoTokenizer

from ...data.corpus import CorpusConfig, build_program_dataset, stream_program_dataset
from ...modeling.configuration_crocodil import RegisterEncoderConfig
from ...modeling.modeling_register_encoder import RegisterEncoderModel
from ..arguments import CrocodilTrainingArguments, DataArguments, ModelArguments
from ..trainers import STAGING_DIR, CrocodilTrainer, resume_cpu_clock, stage_cpu_seconds

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "training_complete.json"


def check_output_dir(args: CrocodilTrainingArguments) -> str | None:
    """Refuse to overwrite a finished stage; return the checkpoint to resume from, if any."""
    output = Path(args.output_dir)
    if (output / COMPLETE_MARKER).exists() and not args.overwrite_output_dir:
        raise ValueError(
            f"{output} already holds a finished stage ({COMPLETE_MARKER}); pass --overwrite_output_dir to replace it."
        )
    staging = output / STAGING_DIR
    if staging.is_dir() and args.process_index == 0:
        logger.warning("removing %s: a checkpoint save that did not finish (the run was killed while saving)", staging)
        shutil.rmtree(staging, ignore_errors=True)
    if args.resume_from_checkpoint:
        return args.resume_from_checkpoint
    if output.is_dir() and not args.overwrite_output_dir:
        return last_complete_checkpoint(output)
    return None


def last_complete_checkpoint(output: str | Path) -> str | None:
    """The newest `checkpoint-N` whose `trainer_state.json` (the Trainer writes it last) exists and parses. Newer,
    incomplete ones (a kill while a checkpoint was being written) are skipped with a warning, not resumed from."""
    steps = {}
    for path in Path(output).glob("checkpoint-*"):
        step = path.name.rsplit("-", 1)[-1]
        if path.is_dir() and step.isdigit():
            steps[int(step)] = path
    for step in sorted(steps, reverse=True):
        try:
            json.loads((steps[step] / "trainer_state.json").read_text())
            return str(steps[step])
        except (OSError, ValueError):
            logger.warning("skipping incomplete checkpoint %s (no readable trainer_state.json)", steps[step])
    return None


def load_tokenizer(name_or_path: str | None):
    if name_or_path is None:
        raise ValueError("`tokenizer_name_or_path` is required (train one with `crocodil tokenizer`).")
    return AutoTokenizer.from_pretrained(name_or_path)


def load_encoder_tokenizer(model_args: ModelArguments):
    name = model_args.encoder_tokenizer_name_or_path
    return AutoTokenizer.from_pretrained(name) if name else None


def program_data(tokenizer, data_args: DataArguments, args: CrocodilTrainingArguments):
    """The program corpus; built (and cached) by the main process first, then read from the cache by the others."""
    config = CorpusConfig(
        source=data_args.corpus,
        text_column=data_args.text_column,
        max_length=data_args.max_length,
        validation_fraction=data_args.validation_fraction,
        max_programs=data_args.max_programs,
        dataset_config=data_args.dataset_config,
        data_dir=data_args.data_dir,
        split=data_args.dataset_split,
        num_proc=data_args.preprocessing_num_workers,
    )
    if data_args.streaming:
        if args.max_steps <= 0:
            raise ValueError("`streaming: true` needs `max_steps` (a stream has no length to count epochs by).")
        return stream_program_dataset(tokenizer, config), "streamed (built on the fly; not counted)"
    with args.main_process_first(desc="building the corpus"):
        corpus, summary = build_program_dataset(tokenizer, config, cache_dir=data_args.data_cache_dir)
    logger.info("corpus: %s", summary)
    return corpus, summary


def init_components(model_args: ModelArguments, *components: str) -> dict[str, str] | None:
    """`{component: <init_from>/<component>}` when the stage continues from a trained pipeline (`--init_from`), else
    None. The pipeline is resolved once: a directory, a shipped name (`crocodil-python-tiny`) or a Hub id (downloaded
    with `snapshot_download`). A pipeline without one of the components is an error naming what it has.
    """
    if model_args.init_from is None:
        return None
    from ...utils.locate import locate_pipeline

    try:
        source = locate_pipeline(model_args.init_from)
    except ValueError as err:
        raise ValueError(f"`init_from` {err}") from None
    paths = {}
    for component in components:
        path = source / component
        if not any(
            (path / name).is_file() for name in ("config.json", "tokenizer_config.json", "scheduler_config.json")
        ):
            present = sorted(p.name for p in source.iterdir() if p.is_dir())
            raise ValueError(f"`init_from` {model_args.init_from} has no {component!r} component; it has {present}.")
        paths[component] = str(path)
    logger.info("init_from: %s from %s (fresh optimizer and schedule)", ", ".join(components), source)
    return paths


def llada_fields(tokenizer, model_config: dict | None) -> dict:
    """LLaDA config fields for a from-scratch model: sizes from the config, vocabulary and specials from the tokenizer."""
    values = dict(model_config or {})
    vocab = len(tokenizer)
    values.setdefault("vocab_size", vocab)
    values.setdefault("embedding_size", vocab)
    for name in ("mask_token_id", "eos_token_id", "pad_token_id", "bos_token_id"):
        values.setdefault(name, getattr(tokenizer, name))
    return values


# Base checkpoints are loaded in fp32 (the optimiser's master weights); `bf16: true` trains them under autocast.
MASTER_DTYPE = torch.float32


def build_encoder(model_args: ModelArguments, tokenizer, encoder_tokenizer) -> RegisterEncoderModel:
    if model_args.encoder_name_or_path is not None:
        path = Path(model_args.encoder_name_or_path)
        config_file = path / "config.json"
        if config_file.exists() and json.loads(config_file.read_text()).get("model_type") == (
            RegisterEncoderConfig.model_type
        ):
            return RegisterEncoderModel.from_pretrained(str(path), dtype=MASTER_DTYPE)
        return RegisterEncoderModel.from_backbone(
            str(path), num_registers=model_args.num_registers, dtype=MASTER_DTYPE
        )
    if model_args.encoder_backbone_config is None:
        raise ValueError("set `encoder_name_or_path` (pretrained backbone) or `encoder_backbone_config`.")
    backbone = dict(model_args.encoder_backbone_config)
    if backbone.get("model_type") == "llada":
        backbone = {"model_type": "llada", **llada_fields(encoder_tokenizer or tokenizer, backbone)}
        # The registers never read logits: a tied head is no module at all (an untied one would be ~vocab × width
        # weights that are saved, shipped and counted in the encoder's FLOPs without ever running).
        backbone.setdefault("weight_tying", True)
    else:
        backbone.setdefault("vocab_size", len(encoder_tokenizer or tokenizer))
    return RegisterEncoderModel(
        RegisterEncoderConfig(backbone_config=backbone, num_registers=model_args.num_registers)
    )


# LoRA targets: the linear layers of the LLaDA blocks (demasker), and of any backbone's blocks inside the register
# encoder (LLaDA, Qwen3 / Llama-style, BERT-style names); embeddings, heads and the encoder's registers are not adapted.
LLADA_LORA_TARGETS = r".*blocks\.\d+\.(q_proj|k_proj|v_proj|attn_out|ff_proj|up_proj|ff_out)"
ENCODER_LORA_TARGETS = (
    r".*backbone\..*(blocks|layers|layer)\.\d+\..*"
    r"(q_proj|k_proj|v_proj|o_proj|attn_out|ff_proj|up_proj|ff_out|gate_proj|down_proj|query|key|value|dense)"
)


def apply_lora(
    model, args: CrocodilTrainingArguments, modules_to_save: tuple[str, ...] = (), target_modules=LLADA_LORA_TARGETS
):
    """LoRA adapters (peft) on `target_modules`; `modules_to_save` stay fully trainable and are stored in the adapter.
    Parameters in `model._new_parameter_names` (no pretrained value: the guided demasker's register projection and
    boundary embeddings, the encoder's suffix registers) stay trainable too and are stored in the adapter as well."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=target_modules,
        modules_to_save=list(modules_to_save) or None,
    )
    peft_model = get_peft_model(model, lora)
    base = peft_model.get_base_model()
    for name in getattr(base, "_new_parameter_names", ()):
        base.get_parameter(name).requires_grad_(True)
    return peft_model


def train(objective, args: CrocodilTrainingArguments, dataset, collator, resume: str | None, **trainer_kwargs):
    """Run the `CrocodilTrainer` on an objective; returns the trainer and the train result."""
    if args.ddp_find_unused_parameters is None:  # no per-step graph search where every parameter gets a gradient
        args.ddp_find_unused_parameters = objective.has_unused_parameters
    trainer = CrocodilTrainer(
        model=objective, args=args, train_dataset=dataset, data_collator=collator, **trainer_kwargs
    )
    resume_cpu_clock(resume)
    result = trainer.train(resume_from_checkpoint=resume)
    return trainer, result


def full_state_dict(trainer) -> dict[str, torch.Tensor]:
    """The trained objective's full state dict on the main process; every process must call this (a collective when
    parameters are sharded)."""
    model = trainer.model_wrapped if trainer.is_deepspeed_enabled else trainer.model
    return trainer.accelerator.get_state_dict(model)


def _component_weights(state: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    prefix = name + "."
    weights = {k[len(prefix) :]: v.detach().cpu() for k, v in state.items() if k.startswith(prefix)}
    empty = [k for k, v in weights.items() if v.numel() == 0]
    if not weights or empty:
        raise RuntimeError(
            f"the gathered weights of `{name}` are empty ({empty[:3] or 'no tensor'}): the sharded parameters were "
            "not gathered (DeepSpeed: set `stage3_gather_16bit_weights_on_model_save: true`)."
        )
    return weights


def _save_and_verify(component, weights: dict[str, torch.Tensor], target: Path, adapter_dir: Path) -> None:
    """Write one trained component to `target` (a LoRA model: its adapter to `adapter_dir` and the merged model to
    `target`) and load it back; raises if the reloaded weights differ."""
    from diffusers import ModelMixin
    from peft import PeftModel
    from safetensors.torch import save_file

    if isinstance(component, PeftModel):
        component.save_pretrained(str(adapter_dir), state_dict=weights)
        _add_new_parameters_to_adapter(component, weights, adapter_dir)
        merged = copy.deepcopy(component).cpu()
        merged.load_state_dict(weights)
        component = merged.merge_and_unload()
        weights = component.state_dict()
    if isinstance(component, ModelMixin):
        target.mkdir(parents=True, exist_ok=True)
        component.save_config(str(target))
        save_file({k: v.contiguous() for k, v in weights.items()}, str(target / "diffusion_pytorch_model.safetensors"))
    else:
        component.save_pretrained(str(target), state_dict=weights)
    reloaded = type(component).from_pretrained(str(target)).state_dict()
    for key, value in reloaded.items():
        if key in weights and not torch.equal(value.to(weights[key].dtype), weights[key]):
            raise RuntimeError(f"{target}: `{key}` does not load back as trained.")


def _add_new_parameters_to_adapter(component, weights: dict[str, torch.Tensor], adapter_dir: Path) -> None:
    """Store the trained new parameters that are not modules (the guided demasker's `prefix_start`/`prefix_end`) in
    the adapter file too, under their full names: `PeftModel.from_pretrained(GuidedLLaDAForMaskedLM.from_base(...),
    adapter)` then restores them along with the LoRA weights and `register_proj` (a `modules_to_save`)."""
    from safetensors.torch import load_file, save_file

    names = [n for n in getattr(component.get_base_model(), "_new_parameter_names", ()) if "." not in n]
    if not names:
        return
    path = adapter_dir / "adapter_model.safetensors"
    adapter = load_file(str(path))
    for name in names:
        adapter[f"base_model.model.{name}"] = weights[f"base_model.model.{name}"].contiguous()
    save_file(adapter, str(path), metadata={"format": "pt"})


@contextmanager
def _outside_zero3(trainer):
    """Plain (non-partitioned) model construction on the main process alone. Under ZeRO-3 transformers builds models
    inside `deepspeed.zero.Init`, a collective that would wait for the other processes forever. The DeepSpeed config
    comes from `--deepspeed` (TrainingArguments) or from an accelerate config (the accelerator's plugin)."""
    plugin = getattr(trainer.accelerator.state, "deepspeed_plugin", None)
    ds_config = getattr(trainer.args, "hf_deepspeed_config", None) or getattr(plugin, "dschf", None)
    if ds_config is None:
        yield
        return
    from transformers.integrations.deepspeed import set_hf_deepspeed_config, unset_hf_deepspeed_config

    unset_hf_deepspeed_config()
    try:
        yield
    finally:
        set_hf_deepspeed_config(ds_config)


def save_stage(trainer, objective, layout: dict[str, str], record: dict, extra_saves=()) -> None:
    """Gather, save, verify, then mark the stage complete. `layout` maps component name → sub-directory ("" for the
    output directory itself); `extra_saves` are callables run on the main process (tokenizers)."""
    state = full_state_dict(trainer)
    output = Path(trainer.args.output_dir)
    if trainer.args.process_index == 0:
        components = objective.components()
        try:
            with _outside_zero3(trainer):
                for name, subdir in layout.items():
                    adapter_dir = output / (f"{subdir}_adapter" if subdir else "adapter")
                    _save_and_verify(components[name], _component_weights(state, name), output / subdir, adapter_dir)
            for save in extra_saves:
                save(output)
        except BaseException:
            _remove_partial_save(output, layout)  # e.g. a full disk: rerunning the command saves again from scratch
            raise
        finish(output, {**record, "steps": trainer.state.global_step, "num_processes": trainer.args.world_size})
    trainer.accelerator.wait_for_everyone()


def _remove_partial_save(output: Path, layout: dict[str, str]) -> None:
    """Remove what a failed final save wrote (the checkpoints stay, so the same command resumes and saves again)."""
    for subdir in layout.values():
        if subdir:
            for path in (output / subdir, output / f"{subdir}_adapter"):
                shutil.rmtree(path, ignore_errors=True)
        else:
            shutil.rmtree(output / "adapter", ignore_errors=True)
            for name in (
                "config.json",
                "diffusion_pytorch_model.safetensors",
                "model.safetensors",
                "generation_config.json",
            ):
                (output / name).unlink(missing_ok=True)
    for name in ("tokenizer", "encoder_tokenizer"):
        shutil.rmtree(output / name, ignore_errors=True)
    for name in ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "chat_template.jinja"):
        (output / name).unlink(missing_ok=True)


def finish(output_dir: str | Path, record: dict) -> None:
    """Mark a stage complete: the last file a stage writes. The record gets `cpu_seconds`, the CPU time (user +
    system, all threads) this process spent since the stage started (`start_cpu_clock`), which model cards add up to
    training CPU-hours. It is per process (multiply by `num_processes`), without dataloader workers; a resumed run
    adds the time recorded in the checkpoint it resumed from (`resume_cpu_clock`)."""
    record = {**record, "cpu_seconds": round(stage_cpu_seconds(), 1)}
    Path(output_dir, COMPLETE_MARKER).write_text(json.dumps(record, indent=2, default=str))


__all__ = [
    "COMPLETE_MARKER",
    "ENCODER_LORA_TARGETS",
    "LLADA_LORA_TARGETS",
    "MASTER_DTYPE",
    "apply_lora",
    "build_encoder",
    "check_output_dir",
    "finish",
    "last_complete_checkpoint",
    "llada_fields",
    "load_encoder_tokenizer",
    "load_tokenizer",
    "program_data",
    "save_stage",
    "train",
]
