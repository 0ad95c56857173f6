"""Arguments of `crocodil train STAGE`: three dataclasses shared by every stage, filled from a YAML/JSON config and
`--key value` overrides by one `HfArgumentParser`: the file's values and the command line are parsed with the fields'
own types (the command line wins), so `--max_steps` without a value, `--max_steps ten` or `max_steps: ten` in the
file is an argparse error before any work."""

import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import yaml
from transformers import HfArgumentParser, TrainingArguments

from ..schedulers import PRIOR_SOLVER_NAMES
from ..utils.numbers import check_number

CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class ModelArguments:
    """What to build or load for the stage."""

    tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "Demasker tokenizer (dir or Hub id)."})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "mdm: LLaDA to fine-tune; autoencoder: base LLaDA for the guided demasker."}
    )
    model_config: dict | str | None = field(
        default=None, metadata={"help": "LLaDA fields for a from-scratch demasker."}
    )
    encoder_name_or_path: str | None = field(
        default=None, metadata={"help": "autoencoder: a pretrained backbone; later stages: the trained encoder."}
    )
    encoder_backbone_config: dict | str | None = field(
        default=None, metadata={"help": "From-scratch encoder backbone config (dict with model_type)."}
    )
    encoder_tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "Encoder's own tokenizer."})
    num_registers: int = field(default=16, metadata={"help": "K."})
    prefix_rope_pairs: int = field(default=4, metadata={"help": "Rotary pairs on the prefix-local axis."})
    prior_config: dict | str | None = field(
        default=None, metadata={"help": "Prior sizes: hidden_size, num_layers, num_attention_heads, mlp_ratio."}
    )
    max_timestep_offset: float = field(default=0.2, metadata={"help": "Largest block offset Δ_B; 0 switches off."})
    prior_num_registers: int | None = field(
        default=None,
        metadata={
            "help": "prior / conditional-prior: model only the first k <= K registers of each bank (a prefix prior, "
            "for a pipeline whose demasker reads k sampled registers: `crocodil assemble --num-registers k`). "
            "With --init_from a K-register prior it starts from that prior's weights. Default: all K."
        },
    )
    init_from: str | None = field(
        default=None,
        metadata={
            "help": "Continue from a trained CrocodilPipeline (a directory or a shipped name such as "
            "`crocodil-python-tiny`) with a fresh optimizer and warm-up: autoencoder starts from its tokenizer, "
            "encoder and demasker; prior / conditional-prior from its prior / conditional_prior; mdm from its "
            "plain-MDM baseline (mdm_demasker) and tokenizer. The model fields of the config are then not used."
        },
    )

    def __post_init__(self):
        check_number("`num_registers`", self.num_registers, minimum=1, integer=True)
        check_number("`prefix_rope_pairs`", self.prefix_rope_pairs, minimum=0, integer=True)
        check_number("`max_timestep_offset`", self.max_timestep_offset, minimum=0, maximum=0.99)
        check_number("`prior_num_registers`", self.prior_num_registers, minimum=1, integer=True, allow_none=True)
        # Mapping fields given on the command line arrive as text: `--prior_config '{hidden_size: 32}'` (YAML/JSON).
        for name in ("model_config", "encoder_backbone_config", "prior_config"):
            value = getattr(self, name)
            if isinstance(value, str):
                try:
                    value = yaml.safe_load(value)
                except yaml.YAMLError as err:
                    raise ValueError(f"`{name}` must be a mapping, e.g. '{{hidden_size: 32}}': {err}") from err
                setattr(self, name, value)
            if value is not None and not isinstance(value, dict):
                raise ValueError(f"`{name}` must be a mapping of config fields, got {value!r}.")


@dataclass
class DataArguments:
    """Where the programs (or registers) come from."""

    corpus: str | None = field(
        default=None,
        metadata={
            "help": "Source: a directory of .py files, a jsonl/parquet/arrow file or folder, a saved dataset, or a "
            "Hub dataset id; default: the CPython standard library."
        },
    )
    dataset_config: str | None = field(default=None, metadata={"help": "Hub dataset: configuration name."})
    data_dir: str | None = field(default=None, metadata={"help": "Hub dataset: `data_dir` (e.g. `data/python`)."})
    dataset_split: str | None = field(default=None, metadata={"help": "Dataset split to read (default: all)."})
    preprocessing_num_workers: int | None = field(
        default=None, metadata={"help": "Processes for splitting and tokenising a dataset source (`map(num_proc=)`)."}
    )
    text_column: str = "text"
    max_length: int = field(default=64, metadata={"help": "Tokens per program including BOS and EOS (L + 1)."})
    validation_fraction: float = 0.05
    max_programs: int | None = None
    data_cache_dir: str | None = field(default=".cache/crocodil", metadata={"help": "save_to_disk cache root."})
    registers_dir: str | None = field(default=None, metadata={"help": "prior stages: the registers dataset."})
    streaming: bool = field(
        default=False,
        metadata={
            "help": "Build training examples on the fly (an IterableDataset; needs max_steps): memory stays "
            "flat however large the corpus. mdm and autoencoder stages."
        },
    )

    def __post_init__(self):
        check_number("`max_length`", self.max_length, minimum=4, integer=True)
        check_number("`validation_fraction`", self.validation_fraction, minimum=0, maximum=0.99)
        check_number("`max_programs`", self.max_programs, minimum=1, integer=True, allow_none=True)
        check_number(
            "`preprocessing_num_workers`", self.preprocessing_num_workers, minimum=1, integer=True, allow_none=True
        )


@dataclass
class CrocodilTrainingArguments(TrainingArguments):
    """`TrainingArguments` plus the paper's knobs."""

    overwrite_output_dir: bool = field(default=False, metadata={"help": "Allow replacing a finished stage output."})
    register_noise_cs: float = field(default=0.8, metadata={"help": "Target CS(z₀, z₀ + e) (Alg. 1)."})
    all_mask_prob: float = field(default=0.25, metadata={"help": "Probability of an all-mask x_t (App. C)."})
    nested_dropout: bool = field(default=True, metadata={"help": "Nested dropout over k (App. C)."})
    encoder_warmup_steps: int = field(default=0, metadata={"help": "Steps updating only the encoder (App. C)."})
    clean_warmup_steps: int = field(default=0, metadata={"help": "Steps of clean all-mask autoencoding first."})
    use_lora: bool = field(default=False, metadata={"help": "LoRA (peft) on the demasker's linear layers."})
    lora_encoder: bool = field(
        default=False,
        metadata={"help": "autoencoder: LoRA (peft) on the encoder backbone's blocks too (any HF backbone)."},
    )
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    num_train_timesteps: int = field(default=1000, metadata={"help": "T of the priors' DDPM schedule."})
    registers_batch_size: int = field(default=64, metadata={"help": "registers stage: encoding batch size."})
    registers_dtype: str = field(
        default="float32",
        metadata={"help": "registers stage: stored dtype of the banks.", "choices": ["float32", "float16"]},
    )
    prompt_prob: float = field(
        default=0.0,
        metadata={
            "help": "Prompt-aware training (App. H): the share of examples that keep a random prefix visible in x_t "
            "(mdm, autoencoder) or in the condition h_φ (conditional-prior); the loss covers the rest."
        },
    )
    prompt_suffix_prob: float = field(
        default=0.0, metadata={"help": "Of the prompted examples, the share that also keep a suffix visible (infill)."}
    )
    prompt_span_pad: int = field(
        default=0,
        metadata={
            "help": "Infill examples get r ~ U{0..N} EOS tokens between the span and the suffix, counted in the loss, "
            "so the model learns to end a span early (`gen_length` as an upper bound; LLaDA's SFT padding). 0 = off."
        },
    )
    teacher_solver: str = field(
        default="dpmsolver++",
        metadata={"help": "prior distillation: the teacher's sampler.", "choices": list(PRIOR_SOLVER_NAMES)},
    )
    teacher_steps: int = field(default=20, metadata={"help": "prior distillation: the teacher's sampling steps."})
    distilled_steps: int = field(
        default=2, metadata={"help": "prior distillation: the steps the student is distilled for (its default)."}
    )
    remove_unused_columns: bool = False

    def __post_init__(self):
        # Ranges of the values every stage uses, checked when the arguments are parsed: before any data or model.
        for name, low, high, integer in (
            ("per_device_train_batch_size", 1, None, True),
            ("gradient_accumulation_steps", 1, None, True),
            ("learning_rate", 0, None, False),
            ("weight_decay", 0, None, False),
            ("max_grad_norm", 0, None, False),
            ("register_noise_cs", 0, 1, False),
            ("all_mask_prob", 0, 1, False),
            ("prompt_prob", 0, 1, False),
            ("prompt_suffix_prob", 0, 1, False),
            ("prompt_span_pad", 0, None, True),
            ("encoder_warmup_steps", 0, None, True),
            ("clean_warmup_steps", 0, None, True),
            ("lora_r", 1, None, True),
            ("lora_dropout", 0, 1, False),
            ("num_train_timesteps", 1, None, True),
            ("registers_batch_size", 1, None, True),
            ("teacher_steps", 1, None, True),
            ("distilled_steps", 1, None, True),
            ("save_steps", 0, None, False),
            ("logging_steps", 0, None, False),
        ):
            check_number(f"`{name}`", getattr(self, name), minimum=low, maximum=high, integer=integer)
        if self.prompt_span_pad and not (self.prompt_prob > 0 and self.prompt_suffix_prob > 0):
            raise ValueError(
                "`prompt_span_pad` pads infill spans: it needs `prompt_prob` > 0 and `prompt_suffix_prob` > 0."
            )
        super().__post_init__()


def resolve_config(config: str) -> Path:
    """A config path, or a shipped name like `tiny-python/mdm`."""
    path = Path(config)
    if path.is_file():
        return path
    return shipped_config(config, what="neither a file nor a shipped config")


def shipped_config(name: str, what: str = "not a shipped config") -> Path:
    """The file of a shipped config name like `tiny-python/mdm` (with or without its extension); a name that
    leads outside the shipped configs (`../x`) is refused like an unknown one."""
    root = CONFIG_DIR.resolve()
    for suffix in ("", ".yaml", ".yml", ".json"):
        candidate = (CONFIG_DIR / f"{name}{suffix}").resolve()
        if candidate.is_file() and candidate.is_relative_to(root):
            return candidate
    shipped = sorted(str(p.relative_to(CONFIG_DIR).with_suffix("")) for p in CONFIG_DIR.rglob("*.yaml"))
    raise ValueError(f"config {name!r} is {what}; shipped: {shipped}.")


def stage_argument_parser(prog: str = "crocodil train STAGE") -> HfArgumentParser:
    """The parser behind `crocodil train` (its `--help` lists every field of the three dataclasses)."""
    return HfArgumentParser((ModelArguments, DataArguments, CrocodilTrainingArguments), prog=prog)


def load_config(config: str) -> dict[str, Any]:
    """Values of a YAML/JSON config file or shipped config name."""
    path = resolve_config(config)
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise ValueError(f"config {str(path)!r} is not UTF-8 text (byte offset {err.start}).") from None
    try:
        values = json.loads(text) if path.suffix == ".json" else (yaml.safe_load(text) or {})
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ValueError(
            f"config {str(path)!r} is not valid {'JSON' if path.suffix == '.json' else 'YAML'}: {err}"
        ) from err
    if not isinstance(values, dict):
        raise ValueError(f"config {str(path)!r} must be a mapping of field: value, got {type(values).__name__}.")
    return values


def parse_stage_arguments(
    config: str | None, overrides: list[str] | None = None, prog: str = "crocodil train STAGE"
) -> tuple["ModelArguments", "DataArguments", "CrocodilTrainingArguments"]:
    """YAML/JSON config + `--key value` overrides → the three argument dataclasses.

    The config's values become the parser's defaults; the overrides are parsed by `HfArgumentParser` with each
    field's type. Unknown keys (in the file or on the command line) are errors.

    Example:
        ```python
        >>> model_args, data_args, args = parse_stage_arguments("tiny-python/mdm", ["--max_steps", "10"])
        ```
    """
    values = load_config(config) if config is not None else {}
    overrides = list(overrides or [])
    # A DeepSpeed config may be given by shipped name (`--deepspeed accelerate/ds_zero3`), from any directory.
    if isinstance(values.get("deepspeed"), str) and not Path(values["deepspeed"]).is_file():
        values["deepspeed"] = str(resolve_config(values["deepspeed"]))
    for i, item in enumerate(overrides[:-1]):
        if item == "--deepspeed" and not Path(overrides[i + 1]).is_file():
            overrides[i + 1] = str(resolve_config(overrides[i + 1]))
    parser = stage_argument_parser(prog)
    known = {f.name for dc in parser.dataclass_types for f in fields(dc)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown argument(s) {unknown} in {config}; see `crocodil train STAGE --help`.")
    # Scalars and lists of the file go through the same typed parsing as the command line (a wrong type in the file
    # is an argparse error before any work); mappings (model configs, fsdp_config, deepspeed dicts) become defaults.
    from_file = []
    for key, value in values.items():
        if isinstance(value, dict):
            parser.set_defaults(**{key: value})
        elif isinstance(value, (list, tuple)):
            action = parser._option_string_actions.get(f"--{key}")
            if action is not None and action.nargs not in ("+", "*"):
                raise ValueError(f"`{key}` in {config} is a list ({value}); it takes one value.")
            from_file += [f"--{key}", *map(str, value)]
        elif value is not None:
            from_file += [f"--{key}", str(value)]

    def error(message: str):  # one line instead of argparse's usage dump (~200 options) and exit
        raise ValueError(f"{message} (in {config} or on the command line); see `{prog} --help`.")

    parser.error = error
    model_args, data_args, args, remaining = parser.parse_args_into_dataclasses(
        args=from_file + overrides, return_remaining_strings=True
    )
    if remaining:
        raise ValueError(f"unknown argument(s) {remaining}; see `crocodil train STAGE --help`.")
    if "output_dir" not in values and not any(o.split("=")[0] == "--output_dir" for o in overrides):
        raise ValueError("`output_dir` must be set in the config or with --output_dir.")
    return model_args, data_args, args


__all__ = [
    "CONFIG_DIR",
    "CrocodilTrainingArguments",
    "DataArguments",
    "ModelArguments",
    "load_config",
    "parse_stage_arguments",
    "resolve_config",
    "stage_argument_parser",
]
