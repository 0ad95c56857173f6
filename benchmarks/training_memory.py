"""Training memory, measured: peak RSS of one training step with and without activation checkpointing (every stage
objective), and peak RSS of reading a corpus materialised vs streamed at 1× and 10× its size.

Each point runs in a fresh Python process; the figure is the growth of peak RSS (`ru_maxrss`) over the process's
RSS just before the measured work, so imports and weights are not counted. Prints the JSON and writes it to --output-dir.

    python benchmarks/training_memory.py [--output-dir docs/results/benchmarks]
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

SIZES = dict(d_model=256, n_heads=4, n_kv_heads=4, n_layers=6, mlp_hidden_size=1024, max_sequence_length=1024)
BATCH, LENGTH = 16, 256


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def current_mb() -> float:
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmRSS")) / 1024


def step_point(kind: str, checkpointing: bool) -> dict:
    import torch

    from crocodil_hf import GuidedLLaDAConfig, GuidedLLaDAForMaskedLM, LLaDAConfig, LLaDAModelLM
    from crocodil_hf.modeling.configuration_crocodil import RegisterEncoderConfig
    from crocodil_hf.modeling.modeling_register_encoder import RegisterEncoderModel
    from crocodil_hf.modeling.modeling_register_prior import RegisterPriorTransformer
    from crocodil_hf.training.objectives import AutoencoderObjective, MaskedDiffusionObjective, RegisterPriorObjective

    torch.manual_seed(0)
    llada = {**SIZES, "vocab_size": 4096, "embedding_size": 4096, "mask_token_id": 3, "eos_token_id": 1,
             "pad_token_id": 2, "bos_token_id": 0}  # fmt: skip
    ids = torch.randint(4, 4096, (BATCH, LENGTH))
    mask = torch.ones_like(ids)
    if kind == "mdm":
        objective, inputs = MaskedDiffusionObjective(LLaDAModelLM(LLaDAConfig(**llada))), {"input_ids": ids}
    elif kind == "autoencoder":
        encoder = RegisterEncoderModel(
            RegisterEncoderConfig(backbone_config={"model_type": "llada", **llada}, num_registers=16)
        )
        demasker = GuidedLLaDAForMaskedLM(GuidedLLaDAConfig(**llada, num_registers=16, register_dim=256))
        objective = AutoencoderObjective(encoder, demasker)
        inputs = {"input_ids": ids, "encoder_attention_mask": mask}
    else:
        prior = RegisterPriorTransformer(
            num_registers=128, register_dim=256, hidden_size=512, num_layers=8, num_attention_heads=8
        )
        objective = RegisterPriorObjective(prior)
        inputs = {"registers": torch.randn(BATCH * 2, 128, 256)}
    objective.train()
    if checkpointing:
        objective.gradient_checkpointing_enable()
    before = current_mb()
    loss = objective(**inputs)["loss"]
    loss.backward()
    return {"stage": kind, "checkpointing": checkpointing, "peak_growth_mb": round(peak_mb() - before, 1)}


def write_corpus(root: Path, files: int) -> None:
    root.mkdir(parents=True)
    for i in range(files):
        body = "".join(f"def f_{i}_{j}(x):\n    return x * {j} + {i}\n\n" for j in range(6))
        (root / f"m{i:06d}.py").write_text(body)


def corpus_point(mode: str, files: int, corpus: str, tokenizer_dir: str) -> dict:
    from transformers import AutoTokenizer

    from crocodil_hf.data.corpus import CorpusConfig, build_program_dataset, stream_program_dataset
    from crocodil_hf.training.trainers import ProgramCollator

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_dir)
    config = CorpusConfig(source=corpus, max_length=64)
    before = current_mb()
    if mode == "streamed":
        train = stream_program_dataset(tokenizer, config)["train"]
    else:
        with tempfile.TemporaryDirectory() as cache:
            train = build_program_dataset(tokenizer, config, cache_dir=cache)[0]["train"]
    collate, batch, rows = ProgramCollator(tokenizer.eos_token_id, 64), [], 0
    for row in train:  # what the trainer's data loader does, batch after batch
        batch.append(row)
        if len(batch) == 32:
            collate(batch)
            rows, batch = rows + len(batch), []
    return {"corpus": mode, "files": files, "examples": rows, "peak_growth_mb": round(peak_mb() - before, 1)}


def run_point(*args: str) -> dict:
    result = subprocess.run([sys.executable, __file__, "--point", *args], capture_output=True, text=True, check=True)
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", default="runs/bench")
    parser.add_argument("--base-files", type=int, default=2000, help="1× corpus size in files (10× is also run)")
    parser.add_argument("--point", nargs="+", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.point:
        kind, *rest = args.point
        if kind == "step":
            print(json.dumps(step_point(rest[0], rest[1] == "1")))
        else:
            print(json.dumps(corpus_point(rest[0], int(rest[1]), rest[2], rest[3])))
        return

    from common import write_result

    from crocodil_hf.data.tokenizer import train_bpe_tokenizer

    steps = [run_point("step", kind, flag) for kind in ("mdm", "autoencoder", "prior") for flag in ("0", "1")]
    corpora = []
    with tempfile.TemporaryDirectory() as tmp:
        tokenizer_dir = str(Path(tmp) / "tokenizer")
        write_corpus(Path(tmp) / "probe", 50)
        texts = [p.read_text() for p in (Path(tmp) / "probe").glob("*.py")]
        train_bpe_tokenizer(texts, vocab_size=512).save_pretrained(tokenizer_dir)
        for scale in (1, 10):
            files = args.base_files * scale
            corpus = Path(tmp) / f"corpus{scale}"
            write_corpus(corpus, files)
            for mode in ("materialised", "streamed"):
                corpora.append(run_point("corpus", mode, str(files), str(corpus), tokenizer_dir))
    report = {
        "machine": "2 CPU cores, fp32",
        "step": {"batch": BATCH, "length": LENGTH, "llada": SIZES, "points": steps},
        "corpus": corpora,
    }
    write_result(report, args.output_dir, "training_memory.json")


if __name__ == "__main__":
    main()
