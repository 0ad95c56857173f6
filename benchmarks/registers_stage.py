"""The `registers` stage, measured: programs encoded per second and bytes stored per program (float32 and float16
banks), with the shipped crocodil-python-tiny encoder on CPython standard-library programs.

    python benchmarks/registers_stage.py [--programs 2000] [--output-dir docs/results/benchmarks]
"""

import argparse
import json
import tempfile
import time
from pathlib import Path

from common import write_result

from crocodil_hf.training.arguments import parse_stage_arguments
from crocodil_hf.training.run import run_stage
from crocodil_hf.utils.locate import locate_pipeline


def dataset_bytes(directory: Path) -> int:
    return sum(p.stat().st_size for p in directory.rglob("*.arrow"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--programs", type=int, default=2000)
    parser.add_argument("--output-dir", default="runs/bench")
    args = parser.parse_args()
    pipeline = Path(locate_pipeline("crocodil-python-tiny"))
    encoder_config = json.loads((pipeline / "encoder" / "config.json").read_text())
    points = []
    with tempfile.TemporaryDirectory() as tmp:
        for dtype in ("float32", "float16"):
            out = Path(tmp) / dtype
            model_args, data_args, train_args = parse_stage_arguments(
                None,
                [
                    "--output_dir", str(out), "--tokenizer_name_or_path", str(pipeline / "tokenizer"),
                    "--encoder_name_or_path", str(pipeline / "encoder"), "--max_length", "65",
                    "--max_programs", str(args.programs), "--registers_dtype", dtype, "--registers_batch_size", "64",
                    "--data_cache_dir", str(Path(tmp) / "cache"), "--disable_tqdm", "true",
                ],
            )  # fmt: skip
            if dtype == "float32":  # build the corpus once, outside the timing
                from transformers import AutoTokenizer

                from crocodil_hf.data.corpus import CorpusConfig, build_program_dataset

                tokenizer = AutoTokenizer.from_pretrained(pipeline / "tokenizer")
                config = CorpusConfig(max_length=65, max_programs=args.programs)
                build_program_dataset(tokenizer, config, cache_dir=data_args.data_cache_dir)
            start = time.perf_counter()
            run_stage("registers", model_args, data_args, train_args)
            seconds = time.perf_counter() - start
            info = json.loads((out / "training_complete.json").read_text())["metrics"]["programs"]
            programs = sum(info.values())
            points.append(
                {
                    "dtype": dtype,
                    "programs": programs,
                    "seconds": round(seconds, 2),
                    "programs_per_s": round(programs / seconds, 1),
                    "bytes_per_program": round(dataset_bytes(out) / programs),
                }
            )
    k, d = encoder_config["num_registers"], encoder_config["backbone_config"].get("d_model", 0)
    report = {"encoder": "crocodil-python-tiny", "num_registers": k, "register_dim": d, "points": points}
    write_result(report, args.output_dir, "registers_stage.json")


if __name__ == "__main__":
    main()
