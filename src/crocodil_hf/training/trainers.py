"""The `transformers.Trainer` of every CRoCoDiL stage, and the data collators.

The losses live in the models trained (`objectives.py`); logging, checkpointing, resume, distributed training
(DDP / FSDP2 / DeepSpeed through accelerate) and progress bars are the Trainer's own.
"""

import json
import os
import shutil
import time

import torch
import torch.nn.functional as F
from torch.nn.utils.rnn import pad_sequence
from transformers import Trainer
from transformers.trainer_utils import PREFIX_CHECKPOINT_DIR, rotate_checkpoints

from .losses import RowGenerators

STAGING_DIR = ".staging"  # under output_dir: checkpoints being written (renamed into place when complete)
CPU_CLOCK_FILE = "crocodil_cpu_seconds.json"  # in each checkpoint: the stage's CPU time up to that checkpoint

_CPU_CLOCK = {"start": 0.0, "before": 0.0}


def start_cpu_clock() -> None:
    """Start counting a stage's CPU time (user + system, all threads of this process): called as each stage starts,
    so that stages run one after another in one Python process count only their own."""
    _CPU_CLOCK.update(start=time.process_time(), before=0.0)


def resume_cpu_clock(checkpoint: str | None) -> None:
    """Add the CPU time a resumed stage had spent up to `checkpoint` (its `CPU_CLOCK_FILE`; checkpoints written
    before it existed add nothing), so that a run killed and resumed any number of times counts all of its training
    and not only the time since the last resume."""
    record = os.path.join(checkpoint, CPU_CLOCK_FILE) if checkpoint else None
    if record and os.path.isfile(record):
        with open(record) as f:
            _CPU_CLOCK["before"] = float(json.load(f)["cpu_seconds"])


def stage_cpu_seconds() -> float:
    """CPU seconds of the current stage: the time before its last resume plus this process's since its start."""
    return _CPU_CLOCK["before"] + time.process_time() - _CPU_CLOCK["start"]


class ProgramCollator:
    """Pad `[BOS] program [EOS]` to `max_length` with EOS, as LLaDA pads (the padding EOS are targets too).

    Returns `input_ids` `(B, max_length)` and `encoder_attention_mask` (1 up to and including the first EOS). With an
    `encoder_tokenizer`, also `encoder_input_ids` / `encoder_attention_mask` from the `text` column.
    """

    def __init__(self, eos_token_id: int, max_length: int, encoder_tokenizer=None, encoder_max_length: int = 512):
        self.eos_token_id = eos_token_id
        self.max_length = max_length
        self.encoder_tokenizer = encoder_tokenizer
        self.encoder_max_length = encoder_max_length

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        rows = [torch.as_tensor(list(f["input_ids"])[: self.max_length], dtype=torch.long) for f in features]
        width = (0, self.max_length - max(len(r) for r in rows))  # every batch is max_length wide

        def pad(sequences, value):
            return F.pad(pad_sequence(sequences, batch_first=True, padding_value=value), width, value=value)

        out = {
            "input_ids": pad(rows, self.eos_token_id),
            "encoder_attention_mask": pad([torch.ones_like(r) for r in rows], 0),
        }
        if self.encoder_tokenizer is not None:
            encoded = self.encoder_tokenizer(
                [f["text"] for f in features],
                padding=True,
                truncation=True,
                max_length=self.encoder_max_length,
                return_tensors="pt",
            )
            out["encoder_input_ids"] = encoded["input_ids"]
            out["encoder_attention_mask"] = encoded["attention_mask"]
        return out


class RegisterCollator:
    """Stack `registers` `(K, d)`; keep padded program ids for the conditional prior's h_φ(x⁽ʳ⁾)."""

    def __init__(self, eos_token_id: int | None = None, max_length: int | None = None):
        self.programs = ProgramCollator(eos_token_id, max_length) if max_length is not None else None

    def __call__(self, features: list[dict]) -> dict[str, torch.Tensor]:
        out = {"registers": torch.stack([torch.as_tensor(f["registers"], dtype=torch.float32) for f in features])}
        if self.programs is not None and "input_ids" in features[0]:
            programs = self.programs([{"input_ids": f["input_ids"]} for f in features])
            out["input_ids"] = programs["input_ids"]
            out["encoder_attention_mask"] = programs["encoder_attention_mask"]
        return out


class CrocodilTrainer(Trainer):
    """The one `Trainer` of every stage: the model is a `TrainingObjective` whose `forward` returns the loss, so the
    Trainer's own `compute_loss`, distributed wrapping, checkpointing and resume apply unchanged. It adds:

    - `row_seeds`: one seed per example from (seed, micro-batch index, row in the global batch). The noise of an
      example does not depend on the number of processes or on where a run resumed: a 2-process run equals a
      1-process run over the same global batches.
    - `clean_warmup_steps` (autoencoder): the first steps use the clean all-mask signal (`clean=True`).
    - `encoder_warmup_steps` (autoencoder): only the encoder is updated at first (the demasker's optimizer groups
      have learning rate 0, so AdamW leaves it untouched, weight decay included).
    - Atomic checkpoints: every process writes `checkpoint-N` under `<output_dir>/.staging/`; once all have finished,
      the main process renames it into place. A kill or a full disk mid-save leaves no `checkpoint-N` to resume from
      (a failed save removes its partial files; a staging directory left by a kill is removed by the next run).
    """

    def __init__(self, *args, clean_warmup_steps: int = 0, encoder_warmup_steps: int = 0, **kwargs):
        super().__init__(*args, **kwargs)
        self.clean_warmup_steps = clean_warmup_steps
        self.encoder_warmup_steps = encoder_warmup_steps
        self._seed_step, self._micro = -1, 0
        self._staging = False

    def _row_seeds(self, batch_size: int, device) -> torch.Tensor:
        step = self.state.global_step
        if step != self._seed_step:
            self._seed_step, self._micro = step, 0
        micro_index = step * self.args.gradient_accumulation_steps + self._micro
        self._micro += 1
        first = self.args.process_index * batch_size
        seeds = [RowGenerators.row_seed(self.args.seed, micro_index, first + i) for i in range(batch_size)]
        return torch.tensor(seeds, dtype=torch.long, device=device)

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        if model.training:
            first = next(iter(inputs.values()))
            inputs = {**inputs, "row_seeds": self._row_seeds(first.shape[0], first.device)}
            if self.clean_warmup_steps:
                inputs["clean"] = self.state.global_step < self.clean_warmup_steps
        return super().compute_loss(model, inputs, return_outputs, num_items_in_batch)

    def _get_output_dir(self, trial) -> str:
        run_dir = super()._get_output_dir(trial)
        return os.path.join(run_dir, STAGING_DIR) if self._staging else run_dir

    def _save_checkpoint(self, model, trial) -> None:
        run_dir = self._get_output_dir(trial)
        name = f"{PREFIX_CHECKPOINT_DIR}-{self.state.global_step}"
        staged, final = os.path.join(run_dir, STAGING_DIR, name), os.path.join(run_dir, name)
        # no rank removes anything here: a save left by a killed run is removed at the stage's start
        # (`stages.common.check_output_dir`), and a failed save below removes its own folder. Removing `staged` here on
        # the main process raced another rank writing its RNG state into it ("Parent directory .staging/checkpoint-N
        # does not exist", 2 processes under load)
        self.accelerator.wait_for_everyone()
        # every rank makes the folder before writing into it: a rank's RNG state could otherwise reach it before the
        # main process made it ("Parent directory .staging/checkpoint-N does not exist", seen once with 2 processes)
        os.makedirs(staged, exist_ok=True)
        self._staging = True
        failed = True
        try:
            super()._save_checkpoint(model, trial)  # its rotation sees only the staging folder: nothing to delete
            if self.args.process_index == 0:
                with open(os.path.join(staged, CPU_CLOCK_FILE), "w") as f:
                    json.dump({"cpu_seconds": round(stage_cpu_seconds(), 1)}, f)
            failed = False
        finally:
            self._staging = False
            if failed and self.args.process_index == 0:
                shutil.rmtree(staged, ignore_errors=True)  # e.g. a full disk: no partial checkpoint stays behind
        self.accelerator.wait_for_everyone()
        if self.args.process_index == 0:
            if os.path.isdir(final):  # an incomplete checkpoint of this step from a killed run (never resumed from)
                shutil.rmtree(final)
            os.replace(staged, final)
            try:
                os.rmdir(os.path.dirname(staged))  # empty unless a save of another step is in flight
            except OSError:
                pass
            if self.state.best_model_checkpoint == staged:
                self.state.best_model_checkpoint = final
            if self.args.should_save:
                rotate_checkpoints(
                    output_dir=run_dir,
                    save_total_limit=self.args.save_total_limit,
                    best_model_checkpoint=self.state.best_model_checkpoint,
                    use_mtime=True,
                )
        self.accelerator.wait_for_everyone()

    # Encoder warm-up: the demasker's parameters get their own optimizer groups whose learning rate is 0 for the first
    # `encoder_warmup_steps` (decoupled weight decay is scaled by the learning rate, so they do not move at all). This
    # acts through the optimizer and its scheduler only, so it holds under DDP, FSDP2 and DeepSpeed alike.
    def create_optimizer(self, model=None):
        optimizer = super().create_optimizer(model)
        if self.encoder_warmup_steps and not any("crocodil_demasker" in g for g in optimizer.param_groups):
            frozen = {id(p) for p in (model or self.model).demasker.parameters()}
            groups = []
            for group in optimizer.param_groups:
                for is_demasker in (False, True):
                    params = [p for p in group["params"] if (id(p) in frozen) == is_demasker]
                    if params:
                        groups.append({**group, "params": params, "crocodil_demasker": is_demasker})
            optimizer.param_groups = []  # nothing stepped yet: regroup in place
            for group in groups:
                optimizer.add_param_group(group)
        return optimizer

    def create_scheduler(self, num_training_steps: int, optimizer=None):
        scheduler = super().create_scheduler(num_training_steps, optimizer)
        if self.encoder_warmup_steps:
            if not isinstance(scheduler, torch.optim.lr_scheduler.LambdaLR):
                raise ValueError(
                    f"`encoder_warmup_steps` needs a LambdaLR-based `lr_scheduler_type`, got {type(scheduler).__name__}."
                )
            warmup = self.encoder_warmup_steps
            for i, group in enumerate(scheduler.optimizer.param_groups):
                if group.get("crocodil_demasker"):
                    base = scheduler.lr_lambdas[i]
                    scheduler.lr_lambdas[i] = lambda step, base=base: 0.0 if step < warmup else base(step)
                    group["lr"] = scheduler.base_lrs[i] * scheduler.lr_lambdas[i](scheduler.last_epoch)
        return scheduler


__all__ = [
    "STAGING_DIR",
    "CrocodilTrainer",
    "ProgramCollator",
    "RegisterCollator",
]
