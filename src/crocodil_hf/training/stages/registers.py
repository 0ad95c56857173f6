"""Stage 2a, `crocodil train registers`: encode the corpus with the frozen encoder into register banks.

Each process encodes its contiguous shard of every split on its own device and writes it as an Arrow shard; the main
process concatenates the shards (memory-mapped, no copy into Python lists) into one `DatasetDict`. Banks are stored as
a fixed-shape `Array2D((K, d))` column in float32 or float16 (`registers_dtype`): K·d·4 or K·d·2 bytes per program.
"""

import json
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from datasets import Array2D, Dataset, DatasetDict, Features, concatenate_datasets, load_from_disk
from tqdm.auto import tqdm

from ...modeling.modeling_register_encoder import RegisterEncoderModel
from ..trainers import ProgramCollator
from .common import finish, load_encoder_tokenizer, load_tokenizer, program_data

SHARDS = ".shards"


@torch.no_grad()
def encode_split(encoder, dataset, collator, batch_size: int, *, dtype: str, device, desc: str):
    """Register banks `(n, K, d)` of one dataset shard as a numpy array of `dtype`."""
    config = encoder.config
    banks = np.empty((len(dataset), config.num_registers, config.register_dim), dtype=dtype)
    for start in tqdm(range(0, len(dataset), batch_size), desc=desc):
        rows = dataset.select(range(start, min(start + batch_size, len(dataset))))
        batch = collator(list(rows))
        ids = batch.get("encoder_input_ids", batch["input_ids"])
        z = encoder(input_ids=ids.to(device), attention_mask=batch["encoder_attention_mask"].to(device)).registers
        banks[start : start + len(rows)] = z.float().cpu().numpy().astype(dtype)
    return banks


def _complete_shards(folder: Path, count: int, timeout: float = 1800.0) -> list[Path]:
    """The `count` complete shard directories of a split, in process order. The barrier before the merge should make
    them all present; under heavy load a slow file system may still be renaming, so wait for them (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        paths = sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))
        if len(paths) >= count:
            return paths
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {len(paths)} of {count} register shards appeared in {folder}.")
        time.sleep(0.5)


def run(model_args, data_args, args, resume: str | None = None) -> str:
    from accelerate import PartialState

    if model_args.encoder_name_or_path is None:
        raise ValueError("the registers stage needs `encoder_name_or_path` (the autoencoder stage's encoder/).")
    if data_args.streaming:
        raise ValueError(
            "the registers stage encodes a materialised corpus: set `streaming: false` (it is stored as "
            "memory-mapped Arrow, never as Python lists)."
        )
    state = PartialState()
    tokenizer = load_tokenizer(model_args.tokenizer_name_or_path)
    encoder_tokenizer = load_encoder_tokenizer(model_args)
    encoder = RegisterEncoderModel.from_pretrained(model_args.encoder_name_or_path).eval().to(state.device)
    corpus, summary = program_data(tokenizer, data_args, args)
    collator = ProgramCollator(tokenizer.eos_token_id, data_args.max_length, encoder_tokenizer)
    output = Path(args.output_dir)
    shards = output / SHARDS
    shape = (encoder.config.num_registers, encoder.config.register_dim)
    for split, dataset in corpus.items():
        shard = dataset.shard(num_shards=state.num_processes, index=state.process_index, contiguous=True)
        banks = encode_split(
            encoder,
            shard,
            collator,
            args.registers_batch_size,
            dtype=args.registers_dtype,
            device=state.device,
            desc=f"encoding {split} (process {state.process_index})",
        )
        column = Dataset.from_dict(
            {"registers": banks}, features=Features({"registers": Array2D(shape=shape, dtype=args.registers_dtype)})
        )
        shard = concatenate_datasets([shard, column], axis=1)
        # written under a temporary name and renamed: a shard directory exists only once it is complete
        final, partial = shards / split / f"{state.process_index:05d}", shards / split / f".{state.process_index:05d}"
        shutil.rmtree(partial, ignore_errors=True)
        shard.save_to_disk(str(partial))
        shutil.rmtree(final, ignore_errors=True)
        os.replace(partial, final)
    state.wait_for_everyone()
    if state.is_main_process:
        parts = {split: _complete_shards(shards / split, state.num_processes) for split in corpus}
        merged = DatasetDict(
            {split: concatenate_datasets([load_from_disk(str(p)) for p in paths]) for split, paths in parts.items()}
        )
        merged.save_to_disk(str(output))
        shutil.rmtree(shards)
        info = {
            "num_registers": shape[0],
            "register_dim": shape[1],
            "dtype": args.registers_dtype,
            "encoder": str(Path(model_args.encoder_name_or_path).resolve()),
            "max_length": data_args.max_length,
            "eos_token_id": tokenizer.eos_token_id,
        }
        (output / "registers_info.json").write_text(json.dumps(info, indent=2))
        finish(
            args.output_dir,
            {
                "stage": "registers",
                "metrics": {"programs": {s: len(d) for s, d in merged.items()}},
                "corpus": str(summary),
            },
        )
    state.wait_for_everyone()
    return args.output_dir
