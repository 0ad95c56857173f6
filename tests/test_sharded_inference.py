"""Inference past one process (issue 37), on gloo with 2 CPU processes: `crocodil eval` and `crocodil generate` under
`accelerate launch --multi_gpu --num_processes 2` (two CPU processes on a GPU-less machine) and under `torchrun`
write exactly what one process writes; a killed sweep resumes to the same result; a failing rank fails the command
without a hang."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from transformers import AutoModelForCausalLM, Qwen3Config

from crocodil_hf.testing import TINY_CORPUS, build_tiny_pipeline
from test_distributed import _ports  # noqa: I001  (free rendezvous ports)

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
FAILING_WORKER = str(HERE / "failing_rank_worker.py")


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    """A tiny pipeline, a tiny causal-LM scorer with its tokenizer, and a folder of programs for references."""
    root = tmp_path_factory.mktemp("sharded")
    pipe = build_tiny_pipeline()
    pipe.save_pretrained(root / "pipe")
    config = Qwen3Config(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1, head_dim=16,
                         intermediate_size=64, vocab_size=len(pipe.tokenizer), max_position_embeddings=128)  # fmt: skip
    AutoModelForCausalLM.from_config(config).save_pretrained(root / "scorer")
    pipe.tokenizer.save_pretrained(root / "scorer")
    corpus = root / "corpus"
    corpus.mkdir()
    for i, text in enumerate(TINY_CORPUS * 2):
        (corpus / f"p{i}.py").write_text(text)
    return root


def crocodil(space: Path, launcher: str, *args: str, worker: str | None = None) -> subprocess.CompletedProcess:
    """Run a crocodil command in one process, under accelerate launch, or under torchrun."""
    program = [worker] if worker else ["-m", "crocodil_hf.cli"]
    port = str(next(_ports))
    if launcher == "single":
        command = [sys.executable, *program]
    elif launcher == "torchrun":
        command = [str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", port]
        command += program if worker else ["-m", "crocodil_hf.cli"]
    else:
        command = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
                   "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", port]  # fmt: skip
        command += program
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1", "HF_DATASETS_CACHE": str(space / "ds")}
    return subprocess.run([*command, *args], env=env, capture_output=True, text=True, timeout=300)


def eval_args(space: Path, out: str, steps: str = "2,4") -> list[str]:
    return ["eval", "--pipeline", str(space / "pipe"), "--modes", "con_then_disc,autoencode", "--steps", steps,
            "--gen-length", "16", "--num-samples", "5", "--batch-size", "2", "--prior-steps", "2", "--no-mauve",
            "--scorer", str(space / "scorer"), "--corpus", str(space / "corpus"), "--corpus-split", "all",
            "--output-dir", str(space / out)]  # fmt: skip


def measured(sweep_dir: Path) -> list[dict]:
    """What a sweep measured, without its timings."""
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    return [{k: v for k, v in p.items() if k != "wall_time"} for p in sweep["points"]]


@pytest.fixture(scope="module")
def one_process(space):
    result = crocodil(space, "single", *eval_args(space, "eval-1"))
    assert result.returncode == 0, result.stderr[-3000:]
    generated = crocodil(space, "single", "generate", "--pipeline", str(space / "pipe"), "--num-samples", "5",
                         "--steps", "4", "--gen-length", "16", "--prior-steps", "2", "--output",
                         str(space / "gen-1.jsonl"))  # fmt: skip
    assert generated.returncode == 0, generated.stderr[-3000:]
    return space / "eval-1", space / "gen-1.jsonl"


@pytest.mark.parametrize("launcher", ["accelerate", "torchrun"])
def test_two_processes_write_what_one_process_writes(space, one_process, launcher):
    sweep_dir, jsonl = one_process
    result = crocodil(space, launcher, *eval_args(space, f"eval-{launcher}"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert measured(space / f"eval-{launcher}") == measured(sweep_dir)
    assert result.stdout.count("sweep.json and") == 1, result.stdout  # rank 0 alone prints and writes
    generated = crocodil(space, launcher, "generate", "--pipeline", str(space / "pipe"), "--num-samples", "5",
                         "--steps", "4", "--gen-length", "16", "--prior-steps", "2", "--output",
                         str(space / f"gen-{launcher}.jsonl"))  # fmt: skip
    assert generated.returncode == 0, generated.stderr[-3000:]
    assert (space / f"gen-{launcher}.jsonl").read_bytes() == jsonl.read_bytes()
    assert generated.stdout.count("# ---- sample 0 ") == 1 and "on 2 processes" in generated.stdout


def test_a_killed_sweep_resumes_to_the_same_result(space, one_process):
    """A sweep saves itself after every point; rerun into the same directory, it keeps the points it has (same
    settings) and measures the rest: the same sweep as one uninterrupted run."""
    sweep_dir, _ = one_process
    killed = space / "eval-killed"
    killed.mkdir()
    sweep = json.loads((sweep_dir / "sweep.json").read_text())
    sweep["points"] = sweep["points"][:1]  # as the sweep stood after its first point
    (killed / "sweep.json").write_text(json.dumps(sweep))
    (killed / ".crocodil-output.json").write_text(json.dumps({"command": "eval"}) + "\n")
    result = crocodil(space, "torchrun", *eval_args(space, "eval-killed"))
    assert result.returncode == 0, result.stderr[-3000:]
    assert "kept 1 point(s)" in result.stdout
    assert measured(killed) == measured(sweep_dir)
    other = crocodil(space, "single", *eval_args(space, "eval-killed", steps="3"))  # other points: measured anew
    assert other.returncode == 0 and "kept" not in other.stdout


def test_a_failing_rank_fails_the_command_without_a_hang(space):
    result = crocodil(space, "torchrun", *eval_args(space, "eval-fail"), worker=FAILING_WORKER)
    assert result.returncode != 0
    assert "crocodil eval: error: rank 1 could not sample" in result.stderr
