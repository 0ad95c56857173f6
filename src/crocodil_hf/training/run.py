"""Stage runners behind `crocodil train <stage> --config CONFIG [--key value ...]` and `crocodil assemble`.

Arguments come from a YAML/JSON config parsed by `HfArgumentParser` into three dataclasses; `--key value` pairs on
the command line override single fields. Every stage ends with a `save_pretrained` directory and a
`training_complete.json` marker; a finished output directory is never overwritten without `--overwrite_output_dir`,
and an interrupted run restarted with the same command resumes from its last complete checkpoint.
Works the same under `accelerate launch` and `torchrun`.
"""

import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
import yaml
from datasets import load_from_disk
from transformers import AutoTokenizer, HfArgumentParser, TrainingArguments, set_seed
from transformers.trainer_utils import get_last_checkpoint

from ..data.corpus import CorpusConfig, build_program_dataset
from ..modeling.configuration_crocodil import GuidedLLaDAConfig, RegisterEncoderConfig
from ..modeling.configuration_llada import LLaDAConfig
from ..modeling.modeling_guided_llada import GuidedLLaDAForMaskedLM
from ..modeling.modeling_llada import LLaDAModelLM
from ..modeling.modeling_register_encoder import RegisterEncoderModel
from ..modeling.modeling_register_prior import RegisterPriorTransformer, block_timestep_offsets
from .trainers import (
    AutoencoderTrainer,
    ConditionalPriorTrainer,
    CrocodilAutoencoder,
    MDMTrainer,
    PriorTrainer,
    ProgramCollator,
    RegisterCollator,
)

logger = logging.getLogger(__name__)

STAGES = ("mdm", "autoencoder", "registers", "prior", "conditional-prior")
COMPLETE_MARKER = "training_complete.json"
CONFIG_DIR = Path(__file__).parent / "configs"


@dataclass
class ModelArguments:
    """What to build or load for the stage."""

    tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "Demasker tokenizer (dir or Hub id)."})
    model_name_or_path: str | None = field(
        default=None, metadata={"help": "mdm: LLaDA to fine-tune; autoencoder: base LLaDA for the guided demasker."}
    )
    model_config: dict | None = field(default=None, metadata={"help": "LLaDA fields for a from-scratch demasker."})
    encoder_name_or_path: str | None = field(
        default=None, metadata={"help": "autoencoder: a pretrained backbone; later stages: the trained encoder."}
    )
    encoder_backbone_config: dict | None = field(
        default=None, metadata={"help": "From-scratch encoder backbone config (dict with model_type)."}
    )
    encoder_tokenizer_name_or_path: str | None = field(default=None, metadata={"help": "Encoder's own tokenizer."})
    num_registers: int = field(default=16, metadata={"help": "K."})
    prefix_rope_pairs: int = field(default=4, metadata={"help": "Rotary pairs on the prefix-local axis."})
    prior_config: dict | None = field(
        default=None, metadata={"help": "Prior sizes: hidden_size, num_layers, num_attention_heads, mlp_ratio."}
    )
    max_timestep_offset: float = field(default=0.2, metadata={"help": "Largest block offset Δ_B; 0 switches off."})


@dataclass
class DataArguments:
    """Where the programs (or registers) come from."""

    corpus: str | None = field(default=None, metadata={"help": "Source dir or dataset; default: CPython stdlib."})
    text_column: str = "text"
    max_length: int = field(default=64, metadata={"help": "Tokens per program including BOS and EOS (L + 1)."})
    validation_fraction: float = 0.05
    max_programs: int | None = None
    data_cache_dir: str | None = field(default=".cache/crocodil", metadata={"help": "save_to_disk cache root."})
    registers_dir: str | None = field(default=None, metadata={"help": "prior stages: the registers dataset."})


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
    lora_r: int = 16
    lora_alpha: int = 32
    lora_dropout: float = 0.0
    num_train_timesteps: int = field(default=1000, metadata={"help": "T of the priors' DDPM schedule."})
    registers_batch_size: int = field(default=64, metadata={"help": "registers stage: encoding batch size."})
    remove_unused_columns: bool = False
    report_to: Any = "none"


def resolve_config(config: str) -> Path:
    """A config path, or a shipped name like `tiny-python/mdm`."""
    path = Path(config)
    if path.is_file():
        return path
    for suffix in ("", ".yaml", ".yml", ".json"):
        candidate = CONFIG_DIR / f"{config}{suffix}"
        if candidate.is_file():
            return candidate
    shipped = sorted(str(p.relative_to(CONFIG_DIR).with_suffix("")) for p in CONFIG_DIR.rglob("*.yaml"))
    raise ValueError(f"config {config!r} is neither a file nor a shipped config; shipped: {shipped}.")


def parse_stage_arguments(
    config: str | None, overrides: list[str] | None = None
) -> tuple[ModelArguments, DataArguments, CrocodilTrainingArguments]:
    """YAML/JSON config + `--key value` overrides → the three argument dataclasses (via `HfArgumentParser`)."""
    values: dict[str, Any] = {}
    if config is not None:
        path = resolve_config(config)
        text = path.read_text()
        values = json.loads(text) if path.suffix == ".json" else (yaml.safe_load(text) or {})
    overrides = list(overrides or [])
    i = 0
    while i < len(overrides):
        key = overrides[i]
        if not key.startswith("--"):
            raise ValueError(f"expected `--key value` overrides, got {key!r}.")
        key = key[2:].replace("-", "_")
        if "=" in key:
            key, raw = key.split("=", 1)
            i += 1
        elif i + 1 < len(overrides) and not overrides[i + 1].startswith("--"):
            raw = overrides[i + 1]
            i += 2
        else:
            raw = "true"
            i += 1
        values[key] = yaml.safe_load(raw)
    if "output_dir" not in values:
        raise ValueError("`output_dir` must be set in the config or with --output_dir.")
    parser = HfArgumentParser((ModelArguments, DataArguments, CrocodilTrainingArguments))
    known = {f for dc in parser.dataclass_types for f in dc.__dataclass_fields__}
    unknown = sorted(set(values) - known)
    if unknown:
        raise ValueError(f"unknown argument(s) {unknown}; see `crocodil train STAGE --help`.")
    return parser.parse_dict(values)


def check_output_dir(args: CrocodilTrainingArguments) -> str | None:
    """Refuse to overwrite a finished stage; return the checkpoint to resume from, if any."""
    output = Path(args.output_dir)
    if (output / COMPLETE_MARKER).exists() and not args.overwrite_output_dir:
        raise ValueError(
            f"{output} already holds a finished stage ({COMPLETE_MARKER}); pass --overwrite_output_dir to replace it."
        )
    if args.resume_from_checkpoint:
        return args.resume_from_checkpoint
    if output.is_dir() and not args.overwrite_output_dir:
        return get_last_checkpoint(str(output))
    return None


def load_tokenizer(name_or_path: str | None):
    if name_or_path is None:
        raise ValueError("`tokenizer_name_or_path` is required (train one with `crocodil tokenizer`).")
    return AutoTokenizer.from_pretrained(name_or_path)


def program_data(tokenizer, data_args: DataArguments):
    corpus, summary = build_program_dataset(
        tokenizer,
        CorpusConfig(
            source=data_args.corpus,
            text_column=data_args.text_column,
            max_length=data_args.max_length,
            validation_fraction=data_args.validation_fraction,
            max_programs=data_args.max_programs,
        ),
        cache_dir=data_args.data_cache_dir,
    )
    logger.info("corpus: %s", summary)
    return corpus, summary


def _llada_fields(tokenizer, model_config: dict | None) -> dict:
    fields = dict(model_config or {})
    vocab = len(tokenizer)
    fields.setdefault("vocab_size", vocab)
    fields.setdefault("embedding_size", vocab)
    for name in ("mask_token_id", "eos_token_id", "pad_token_id", "bos_token_id"):
        fields.setdefault(name, getattr(tokenizer, name))
    return fields


def build_encoder(model_args: ModelArguments, tokenizer, encoder_tokenizer) -> RegisterEncoderModel:
    if model_args.encoder_name_or_path is not None:
        path = Path(model_args.encoder_name_or_path)
        config_file = path / "config.json"
        if config_file.exists() and json.loads(config_file.read_text()).get("model_type") == (
            RegisterEncoderConfig.model_type
        ):
            return RegisterEncoderModel.from_pretrained(str(path))
        return RegisterEncoderModel.from_backbone(str(path), num_registers=model_args.num_registers)
    if model_args.encoder_backbone_config is None:
        raise ValueError("set `encoder_name_or_path` (pretrained backbone) or `encoder_backbone_config`.")
    backbone = dict(model_args.encoder_backbone_config)
    if backbone.get("model_type") == "llada":
        backbone = {"model_type": "llada", **_llada_fields(encoder_tokenizer or tokenizer, backbone)}
    else:
        backbone.setdefault("vocab_size", len(encoder_tokenizer or tokenizer))
    return RegisterEncoderModel(
        RegisterEncoderConfig(backbone_config=backbone, num_registers=model_args.num_registers)
    )


def _finish(output_dir: str, stage: str, metrics: dict, extra: dict | None = None) -> None:
    record = {"stage": stage, "metrics": metrics, **(extra or {})}
    Path(output_dir, COMPLETE_MARKER).write_text(json.dumps(record, indent=2, default=str))


def _is_main(args: TrainingArguments) -> bool:
    return args.process_index == 0


def run_stage(stage: str, model_args: ModelArguments, data_args: DataArguments, args: CrocodilTrainingArguments):
    """Run one training stage end to end; returns the final output directory."""
    if stage not in STAGES:
        raise ValueError(f"unknown stage {stage!r}; expected one of {STAGES}.")
    resume = check_output_dir(args)
    if resume:
        logger.info("resuming from %s", resume)
    set_seed(args.seed)  # models are built before the Trainer seeds: seed here so that inits are reproducible
    if stage == "registers":
        return run_registers(model_args, data_args, args)

    tokenizer = load_tokenizer(model_args.tokenizer_name_or_path) if stage in ("mdm", "autoencoder") else None
    if stage == "mdm":
        corpus, summary = program_data(tokenizer, data_args)
        if model_args.model_name_or_path:
            model = LLaDAModelLM.from_pretrained(model_args.model_name_or_path)
        else:
            model = LLaDAModelLM(LLaDAConfig(**_llada_fields(tokenizer, model_args.model_config)))
        trainer = MDMTrainer(
            model=model,
            args=args,
            train_dataset=corpus["train"],
            data_collator=ProgramCollator(tokenizer.eos_token_id, data_args.max_length),
        )
        result = trainer.train(resume_from_checkpoint=resume)
        if _is_main(args):
            model.save_pretrained(args.output_dir)
            tokenizer.save_pretrained(args.output_dir)
            _finish(args.output_dir, stage, result.metrics, {"corpus": str(summary)})
        return args.output_dir

    if stage == "autoencoder":
        encoder_tokenizer = (
            AutoTokenizer.from_pretrained(model_args.encoder_tokenizer_name_or_path)
            if model_args.encoder_tokenizer_name_or_path
            else None
        )
        corpus, summary = program_data(tokenizer, data_args)
        encoder = build_encoder(model_args, tokenizer, encoder_tokenizer)
        register_dim = encoder.config.register_dim
        if model_args.model_name_or_path:
            demasker = GuidedLLaDAForMaskedLM.from_base(
                model_args.model_name_or_path,
                num_registers=model_args.num_registers,
                register_dim=register_dim,
                prefix_rope_pairs=model_args.prefix_rope_pairs,
            )
        else:
            demasker = GuidedLLaDAForMaskedLM(
                GuidedLLaDAConfig(
                    **_llada_fields(tokenizer, model_args.model_config),
                    num_registers=model_args.num_registers,
                    register_dim=register_dim,
                    prefix_rope_pairs=model_args.prefix_rope_pairs,
                )
            )
        if args.use_lora:
            demasker = apply_lora(demasker, args)
        model = CrocodilAutoencoder(encoder, demasker)
        trainer = AutoencoderTrainer(
            model=model,
            args=args,
            train_dataset=corpus["train"],
            data_collator=ProgramCollator(tokenizer.eos_token_id, data_args.max_length, encoder_tokenizer),
            register_noise_cs=args.register_noise_cs,
            all_mask_prob=args.all_mask_prob,
            nested_dropout=args.nested_dropout,
            encoder_warmup_steps=args.encoder_warmup_steps,
            clean_warmup_steps=args.clean_warmup_steps,
        )
        result = trainer.train(resume_from_checkpoint=resume)
        if _is_main(args):
            final = demasker.merge_and_unload() if args.use_lora else demasker
            final.save_pretrained(Path(args.output_dir, "demasker"))
            encoder.save_pretrained(Path(args.output_dir, "encoder"))
            tokenizer.save_pretrained(Path(args.output_dir, "tokenizer"))
            if encoder_tokenizer is not None:
                encoder_tokenizer.save_pretrained(Path(args.output_dir, "encoder_tokenizer"))
            _finish(
                args.output_dir, stage, result.metrics, {"corpus": str(summary), "max_length": data_args.max_length}
            )
        return args.output_dir

    # prior / conditional-prior
    if data_args.registers_dir is None:
        raise ValueError("prior stages need `registers_dir` (the output of `crocodil train registers`).")
    registers = load_from_disk(data_args.registers_dir)
    info = json.loads(Path(data_args.registers_dir, "registers_info.json").read_text())
    prior_kwargs = dict(hidden_size=256, num_layers=4, num_attention_heads=4, mlp_ratio=4.0)
    prior_kwargs.update(model_args.prior_config or {})
    num_registers, register_dim = info["num_registers"], info["register_dim"]
    prior = RegisterPriorTransformer(
        num_registers=num_registers,
        register_dim=register_dim,
        cross_attention_dim=register_dim if stage == "conditional-prior" else None,
        timestep_offsets=block_timestep_offsets(num_registers, model_args.max_timestep_offset),
        num_train_timesteps=args.num_train_timesteps,
        **prior_kwargs,
    )
    if stage == "prior":
        trainer = PriorTrainer(
            model=prior, args=args, train_dataset=registers["train"], data_collator=RegisterCollator()
        )
    else:
        encoder_path = model_args.encoder_name_or_path or info.get("encoder")
        encoder = RegisterEncoderModel.from_pretrained(encoder_path)
        trainer = ConditionalPriorTrainer(
            model=prior,
            args=args,
            train_dataset=registers["train"],
            encoder=encoder,
            data_collator=RegisterCollator(info["eos_token_id"], info["max_length"]),
        )
    result = trainer.train(resume_from_checkpoint=resume)
    if _is_main(args):
        prior.save_pretrained(args.output_dir)
        _finish(args.output_dir, stage, result.metrics)
    return args.output_dir


def apply_lora(demasker: GuidedLLaDAForMaskedLM, args: CrocodilTrainingArguments):
    """LoRA adapters on every linear layer of the LLaDA blocks; the register projection and the boundary embeddings
    (new parameters with no pretrained value) stay fully trainable."""
    from peft import LoraConfig, get_peft_model

    lora = LoraConfig(
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=r".*blocks\.\d+\.(q_proj|k_proj|v_proj|attn_out|ff_proj|up_proj|ff_out)",
    )
    model = get_peft_model(demasker, lora)
    base = model.get_base_model()
    for param in (base.register_proj.weight, base.prefix_start, base.prefix_end):
        param.requires_grad_(True)
    return model


@torch.no_grad()
def run_registers(model_args: ModelArguments, data_args: DataArguments, args: CrocodilTrainingArguments) -> str:
    """Stage 2a: encode the corpus with the frozen encoder into a registers dataset on disk."""
    from tqdm.auto import tqdm

    if model_args.encoder_name_or_path is None:
        raise ValueError("the registers stage needs `encoder_name_or_path` (the autoencoder stage's encoder/).")
    tokenizer = load_tokenizer(model_args.tokenizer_name_or_path)
    encoder_tokenizer = (
        AutoTokenizer.from_pretrained(model_args.encoder_tokenizer_name_or_path)
        if model_args.encoder_tokenizer_name_or_path
        else None
    )
    encoder = RegisterEncoderModel.from_pretrained(model_args.encoder_name_or_path).eval()
    device = torch.device("cuda" if torch.cuda.is_available() and not args.use_cpu else "cpu")
    encoder.to(device)
    corpus, summary = program_data(tokenizer, data_args)
    collator = ProgramCollator(tokenizer.eos_token_id, data_args.max_length, encoder_tokenizer)
    encoded = {}
    for split in corpus:
        dataset = corpus[split]
        registers = []
        for start in tqdm(range(0, len(dataset), args.registers_batch_size), desc=f"encoding {split}"):
            rows = dataset.select(range(start, min(start + args.registers_batch_size, len(dataset))))
            batch = collator(list(rows))
            if "encoder_input_ids" in batch:
                inputs = {"input_ids": batch["encoder_input_ids"], "attention_mask": batch["encoder_attention_mask"]}
            else:
                inputs = {"input_ids": batch["input_ids"], "attention_mask": batch["encoder_attention_mask"]}
            z = encoder(**{k: v.to(device) for k, v in inputs.items()}).registers
            registers.extend(z.float().cpu().numpy())
        encoded[split] = dataset.add_column("registers", [r.tolist() for r in registers])
    from datasets import DatasetDict

    output = DatasetDict(encoded)
    output.save_to_disk(args.output_dir)
    info = {
        "num_registers": encoder.config.num_registers,
        "register_dim": encoder.config.register_dim,
        "encoder": str(Path(model_args.encoder_name_or_path).resolve()),
        "max_length": data_args.max_length,
        "eos_token_id": tokenizer.eos_token_id,
    }
    Path(args.output_dir, "registers_info.json").write_text(json.dumps(info, indent=2))
    _finish(
        args.output_dir, "registers", {"programs": {s: len(d) for s, d in encoded.items()}}, {"corpus": str(summary)}
    )
    return args.output_dir


def assemble_pipeline(
    autoencoder_dir: str,
    prior_dir: str,
    output_dir: str,
    conditional_prior_dir: str | None = None,
    overwrite: bool = False,
):
    """Assemble a `CrocodilPipeline` directory from the stage outputs (`crocodil assemble`)."""
    from ..pipelines.pipeline_crocodil import CrocodilPipeline
    from ..pipelines.prior_sampling import make_sampling_scheduler

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
    pipe = CrocodilPipeline(
        demasker=demasker,
        encoder=RegisterEncoderModel.from_pretrained(str(autoencoder / "encoder")),
        prior=prior,
        scheduler=make_sampling_scheduler(prior.config.num_train_timesteps),
        tokenizer=tokenizer,
        conditional_prior=RegisterPriorTransformer.from_pretrained(conditional_prior_dir)
        if conditional_prior_dir
        else None,
        encoder_tokenizer=encoder_tokenizer,
    )
    pipe.save_pretrained(output_dir)
    return pipe


def train_tokenizer_command(corpus: str | None, vocab_size: int, output_dir: str) -> str:
    """Train the byte-level BPE tokenizer of a from-scratch demasker on a corpus (`crocodil tokenizer`)."""
    from ..data.corpus import read_source_files, stdlib_dir
    from ..data.tokenizer import train_bpe_tokenizer

    texts = [text for _, text in read_source_files(corpus or stdlib_dir())]
    tokenizer = train_bpe_tokenizer(texts, vocab_size=vocab_size)
    tokenizer.save_pretrained(output_dir)
    return output_dir


__all__ = [
    "CrocodilTrainingArguments",
    "DataArguments",
    "ModelArguments",
    "STAGES",
    "apply_lora",
    "assemble_pipeline",
    "parse_stage_arguments",
    "run_stage",
    "train_tokenizer_command",
]
