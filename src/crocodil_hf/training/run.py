"""`crocodil train <stage> --config CONFIG [--key value ...]`: one entry point over the stage table.

Arguments come from a YAML/JSON config and `--key value` overrides (`arguments.py`); each stage is one module of
`stages/` behind `stages.STAGES`. Every stage trains one objective module with the `CrocodilTrainer`, ends with
`save_pretrained` directories that are loaded back and checked, then a `training_complete.json` marker; a finished
output directory is never overwritten without `--overwrite_output_dir`, and an interrupted run restarted with the same
command resumes from its last complete checkpoint. Works the same in one process, under `torchrun` and under
`accelerate launch` (DDP, FSDP2, DeepSpeed).
"""

import json
import logging
import os
from contextlib import contextmanager
from pathlib import Path

from transformers import set_seed

from ..utils.files import claim_output_dir
from ..utils.locate import locate_pipeline, looks_local
from .arguments import (
    CrocodilTrainingArguments,
    DataArguments,
    ModelArguments,
    parse_stage_arguments,
    resolve_config,
)
from .stages import STAGES, get_stage
from .stages.common import COMPLETE_MARKER, apply_lora, check_output_dir
from .trainers import start_cpu_clock

logger = logging.getLogger(__name__)

LOCK_FILE = ".crocodil-train.lock"


def run_stage(stage: str, model_args: ModelArguments, data_args: DataArguments, args: CrocodilTrainingArguments):
    """Run one training stage end to end; returns the final output directory."""
    entry = get_stage(stage)  # an unknown stage fails here, before the lock or any output
    if model_args.prior_num_registers is not None:
        if not entry.prefix_priors:
            takes = " and ".join(s.name for s in STAGES.values() if s.prefix_priors)
            raise ValueError(f"`prior_num_registers` applies to the {takes} stages, not to {stage}.")
        info = Path(data_args.registers_dir or "", "registers_info.json")
        K = json.loads(info.read_text())["num_registers"] if info.is_file() else None
        if K is not None and model_args.prior_num_registers > K:
            raise ValueError(
                f"`prior_num_registers` {model_args.prior_num_registers} is more than the K={K} registers of the "
                f"banks in {data_args.registers_dir}."
            )
    check_input_paths(model_args, data_args, stage)
    resume_from = args.resume_from_checkpoint
    if (
        isinstance(resume_from, str)
        and resume_from.lower() not in ("true", "false")
        and not Path(resume_from).is_dir()
    ):
        raise ValueError(f"`resume_from_checkpoint` {resume_from} is not a directory; give a checkpoint-N directory.")
    if args.process_index == 0:
        output = Path(args.output_dir)
        ours = output.is_dir() and (any(output.glob("checkpoint-*")) or (output / COMPLETE_MARKER).exists())
        claim_output_dir(output, "train", args.overwrite_output_dir or ours, option="--overwrite_output_dir")
    with output_lock(args):
        resume = check_output_dir(args)
        if resume:
            logger.info("resuming from %s", resume)
        return _run(stage, model_args, data_args, args, resume)


def check_input_paths(model_args: ModelArguments, data_args: DataArguments, stage: str | None = None) -> None:
    """Inputs given as local paths must exist (checked before anything loads). A value that is not an existing path
    and could be a Hub id (`name` or `org/name`) is left to the loader. With `init_from`, the autoencoder and mdm
    stages take their tokenizer and models from that pipeline, so the config's model paths are not read."""
    replaced = ()
    if model_args.init_from is not None and stage is not None and get_stage(stage).models_from_init:
        replaced = ("tokenizer_name_or_path", "model_name_or_path", "encoder_name_or_path")
    for owner, name in (
        (model_args, "tokenizer_name_or_path"),
        (model_args, "model_name_or_path"),
        (model_args, "init_from"),
        (model_args, "encoder_name_or_path"),
        (model_args, "encoder_tokenizer_name_or_path"),
        (data_args, "corpus"),
        (data_args, "registers_dir"),
    ):
        value = getattr(owner, name)
        if name in replaced:
            continue
        if name == "init_from" and value is not None:
            try:
                locate_pipeline(value)  # one rule for every caller; a Hub id is downloaded once, here
            except ValueError as err:
                raise ValueError(f"`init_from` {err}") from None
            continue
        if value is None or Path(value).expanduser().exists():
            continue
        parent = Path(value).parent
        local = (
            looks_local(value)
            or not value.strip()
            or (str(parent) not in ("", ".") and parent.is_dir())  # runs/tokenizer with runs/ here: a local path
        )
        if local or name == "registers_dir":
            raise ValueError(f"`{name}` {value} does not exist; give an existing directory (or a Hub id org/name).")


def _run(stage, model_args, data_args, args, resume):
    start_cpu_clock()
    set_seed(args.seed)  # models are built before the Trainer seeds: seed here so that inits are reproducible
    if getattr(args, "hf_deepspeed_config", None) is not None and args.hf_deepspeed_config.is_zero3():
        import deepspeed

        # Base checkpoints load inside `zero.Init` (partitioned as they load): DeepSpeed must see the whole world.
        deepspeed.init_distributed()
    return get_stage(stage).run(model_args, data_args, args, resume)


@contextmanager
def output_lock(args: CrocodilTrainingArguments):
    """Hold an exclusive lock on the output directory for the whole run (main process): a second `crocodil train`
    into the same directory stops at once instead of mixing checkpoints. The OS releases it when the process ends,
    so a killed run leaves no stale lock."""
    if args.process_index != 0:
        yield
        return
    import fcntl

    output = Path(args.output_dir)
    output.mkdir(parents=True, exist_ok=True)
    handle = open(output / LOCK_FILE, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            owner = handle.read().strip() or "another process"
            raise ValueError(
                f"{output} is in use by another `crocodil train` run ({owner}); wait for it or choose another "
                "--output_dir."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        try:
            yield
        finally:
            (output / LOCK_FILE).unlink(missing_ok=True)  # ours: nothing else opens it without failing at once
    finally:
        handle.close()


def train_tokenizer_command(corpus: str | None, vocab_size: int, output_dir: str) -> str:
    """Train the byte-level BPE tokenizer of a from-scratch demasker on a corpus (`crocodil tokenizer`)."""
    from ..data.corpus import read_source_files, stdlib_dir
    from ..data.tokenizer import train_bpe_tokenizer

    texts = [text for _, text in read_source_files(corpus or stdlib_dir())]
    if not texts:
        raise ValueError(f"{corpus} holds no readable .py files; give a directory of Python source files.")
    tokenizer = train_bpe_tokenizer(texts, vocab_size=vocab_size)
    tokenizer.save_pretrained(output_dir)
    return output_dir


__all__ = [
    "COMPLETE_MARKER",
    "CrocodilTrainingArguments",
    "DataArguments",
    "ModelArguments",
    "STAGES",
    "apply_lora",
    "parse_stage_arguments",
    "resolve_config",
    "run_stage",
    "train_tokenizer_command",
]
