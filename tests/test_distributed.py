"""Multi-process training on gloo (2 CPU processes), checked by its invariants:

- DDP, every stage, under `torchrun` and `accelerate launch --multi_gpu --num_processes 2` (on a machine without GPUs
  this form starts two CPU processes; `accelerate launch --cpu` starts only one): after N steps both ranks hold
  identical parameters, equal (≤ 1e-5) to a one-process run over the same global batches, and the saved components
  hold exactly those parameters.
- FSDP2 (`fully_shard` with accelerate's wrap policy from the objectives' `_no_split_modules`): the gathered weights
  equal the DDP run's and the gathered full state dict saves and loads with `from_pretrained`.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from crocodil_hf.data.tokenizer import train_bpe_tokenizer
from test_training import COMMON, TINY_LLADA, write_corpus  # noqa: I001

HERE = Path(__file__).parent
WORKER = str(HERE / "distributed_worker.py")
BIN = Path(sys.executable).parent
PRIOR = {"hidden_size": 32, "num_layers": 1, "num_attention_heads": 2}
# What each stage saves: (sub-directory, component prefix in the objective, weights file).
SAVED = {
    "mdm": [("", "demasker", "model.safetensors")],
    "autoencoder": [("encoder", "encoder", "model.safetensors"), ("demasker", "demasker", "model.safetensors")],
    "prior": [("", "prior", "diffusion_pytorch_model.safetensors")],
    "conditional-prior": [("", "prior", "diffusion_pytorch_model.safetensors")],
}


class _FreePorts:
    """Rendezvous ports the OS reports free right now (fixed numbers collide with other runs on the machine)."""

    def __next__(self) -> int:
        import socket

        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            return sock.getsockname()[1]


_ports = _FreePorts()


@pytest.fixture(scope="module")
def space(tmp_path_factory):
    root = tmp_path_factory.mktemp("dist")
    corpus = write_corpus(root / "corpus", n=40)
    tokenizer = train_bpe_tokenizer([p.read_text() for p in corpus.glob("*.py")], vocab_size=300)
    tokenizer.save_pretrained(root / "tokenizer")
    config = {
        **COMMON,
        "tokenizer_name_or_path": str(root / "tokenizer"),
        "corpus": str(corpus),
        "data_cache_dir": str(root / "cache"),
        "use_cpu": True,
        "max_steps": 4,
        "save_steps": 4,
        "learning_rate": 1e-3,
        "model_config": TINY_LLADA,
        "encoder_backbone_config": {"model_type": "llada", **TINY_LLADA},
        "num_registers": 4,
        "prefix_rope_pairs": 2,
        "clean_warmup_steps": 2,
        "prior_config": PRIOR,
    }
    (root / "config.yaml").write_text(yaml.safe_dump(config))
    return root


def launch(space: Path, launcher: str, stage: str, name: str, *extra: str) -> Path:
    """Run `crocodil train STAGE` with one of the launchers; returns the directory of the per-rank dumps."""
    out, dump = space / name, space / f"{name}-ranks"
    args = ["train", stage, "--config", str(space / "config.yaml"), "--output_dir", str(out), *extra]
    port = str(next(_ports))
    if launcher == "single":
        command = [sys.executable, WORKER, *args, "--per_device_train_batch_size", "8"]
    else:
        per_device = ["--per_device_train_batch_size", "4", "--ddp_backend", "gloo"]
        if launcher == "torchrun":
            command = [str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", port, WORKER]
        elif launcher == "accelerate-zero3":  # the shipped accelerate DeepSpeed config, found by name
            config_file = subprocess.run(
                [str(BIN / "crocodil"), "config", "accelerate/deepspeed_zero3"], capture_output=True, text=True
            ).stdout.strip()
            command = [str(BIN / "accelerate"), "launch", "--config_file", config_file, "--num_processes", "2"]
            command += ["--mixed_precision", "no", "--main_process_port", port, WORKER]
        else:
            command = [str(BIN / "accelerate"), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1"]
            command += ["--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_port", port, WORKER]
        command += [*args, *per_device]
    env = {**os.environ, "CROCODIL_DUMP_DIR": str(dump), "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    assert (out / "training_complete.json").exists()
    return dump


def stage_inputs(refs: dict, stage: str) -> list[str]:
    """Each stage starts from the one-process outputs of the stages before it."""
    if stage == "autoencoder":
        return ["--model_name_or_path", str(refs["mdm"].parent / "ref-mdm")]
    if stage == "registers":
        return ["--encoder_name_or_path", str(refs["autoencoder"].parent / "ref-autoencoder" / "encoder")]
    if stage in ("prior", "conditional-prior"):
        return ["--registers_dir", str(refs["registers"])]
    return []


@pytest.fixture(scope="module")
def references(space):
    """One-process runs of every stage, batch 8 (= 2 processes × 4)."""
    refs: dict[str, Path] = {}
    for stage in ("mdm", "autoencoder", "registers", "prior", "conditional-prior"):
        dump = launch(space, "single", stage, f"ref-{stage}", *stage_inputs(refs, stage))
        refs[stage] = space / f"ref-{stage}" if stage == "registers" else dump
    return refs


def ranks(dump: Path) -> list[dict[str, torch.Tensor]]:
    return [torch.load(dump / f"rank{i}.pt") for i in range(2)]


def max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max((a[k].float() - b[k].float()).abs().max().item() for k in a)


def check_saved(output: Path, stage: str, params: dict[str, torch.Tensor]) -> None:
    for subdir, prefix, filename in SAVED[stage]:
        saved = load_file(str(output / subdir / filename))
        for key, value in saved.items():
            assert torch.equal(value, params[f"{prefix}.{key}"]), (stage, key)


@pytest.mark.parametrize("stage", ["mdm", "autoencoder", "prior", "conditional-prior"])
def test_torchrun_ddp_ranks_agree_and_equal_one_process(space, references, stage):
    extra = ["--gradient_checkpointing", "true"] if stage == "autoencoder" else []  # checkpointing changes nothing
    dump = launch(space, "torchrun", stage, f"ddp-{stage}", *stage_inputs(references, stage), *extra)
    rank0, rank1 = ranks(dump)
    info = json.loads((dump / "rank0.json").read_text())
    assert info["world_size"] == 2 and info["wrapper"] == "DistributedDataParallel"
    assert max_diff(rank0, rank1) == 0.0, "the ranks trained different parameters"
    assert max_diff(rank0, torch.load(references[stage] / "rank0.pt")) <= 1e-5
    check_saved(space / f"ddp-{stage}", stage, rank0)


@pytest.mark.parametrize("stage", ["mdm", "autoencoder", "prior", "conditional-prior"])
def test_accelerate_launch_two_cpu_processes_agree_with_one_process(space, references, stage):
    dump = launch(space, "accelerate", stage, f"acc-{stage}", *stage_inputs(references, stage))
    rank0, rank1 = ranks(dump)
    assert json.loads((dump / "rank1.json").read_text())["world_size"] == 2
    assert max_diff(rank0, rank1) == 0.0
    assert max_diff(rank0, torch.load(references[stage] / "rank0.pt")) <= 1e-5


@pytest.mark.parametrize(
    "launcher, stage, extra",
    [
        ("torchrun", "autoencoder", ("--deepspeed", "accelerate/ds_zero3")),  # base demasker loads under zero.Init
        ("accelerate-zero3", "mdm", ()),
    ],
)
def test_deepspeed_zero3_partitions_trains_like_one_process_and_saves_gathered_weights(
    space, references, launcher, stage, extra
):
    pytest.importorskip("deepspeed")
    name = f"zero3-{launcher}-{stage}"
    dump = launch(space, launcher, stage, name, *stage_inputs(references, stage), *extra)
    info = json.loads((dump / "rank0.json").read_text())
    assert info["wrapper"] == "DeepSpeedEngine" and info["sharded"] and info["world_size"] == 2, info
    rank0, rank1 = ranks(dump)
    assert max_diff(rank0, rank1) == 0.0
    assert max_diff(rank0, torch.load(references[stage] / "rank0.pt")) <= 1e-5
    check_saved(space / name, stage, rank0)  # gathered: non-empty and equal to the trained parameters


def test_streaming_corpus_two_processes_equal_one_process(space):
    """`streaming: true`: rank 0 reads the stream and dispatches the global batch; same result as one process."""
    one = launch(space, "single", "mdm", "stream-one", "--streaming", "true")
    two = launch(space, "torchrun", "mdm", "stream-two", "--streaming", "true")
    rank0, rank1 = ranks(two)
    assert max_diff(rank0, rank1) == 0.0
    assert max_diff(rank0, torch.load(one / "rank0.pt")) <= 1e-5


def test_registers_stage_shards_across_processes_into_the_same_dataset(space, references):
    from datasets import load_from_disk

    launch(space, "torchrun", "registers", "ddp-registers", *stage_inputs(references, "registers"))
    two, one = load_from_disk(str(space / "ddp-registers")), load_from_disk(str(references["registers"]))
    info = json.loads((space / "ddp-registers" / "registers_info.json").read_text())
    assert (info["num_registers"], info["register_dim"]) == (4, 32)
    assert not (space / "ddp-registers" / ".shards").exists()
    for split in ("train", "validation"):
        assert two[split]["path"] == one[split]["path"] and two[split]["input_ids"] == one[split]["input_ids"]
        assert type(two[split].features["registers"]).__name__ == "Array2D"
        a = two[split].with_format("torch")[:]["registers"]
        b = one[split].with_format("torch")[:]["registers"]
        assert a.shape == (len(one[split]), 4, 32) and torch.allclose(a, b, atol=1e-5)


def test_registers_stage_stores_float16_banks_compactly(space, references):
    from datasets import load_from_disk

    out = space / "reg16"
    config = str(space / "config.yaml")
    args = ["train", "registers", "--config", config, "--output_dir", str(out), "--registers_dtype", "float16"]
    args += stage_inputs(references, "registers")
    result = subprocess.run([sys.executable, WORKER, *args], capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    half, full = load_from_disk(str(out))["train"], load_from_disk(str(references["registers"]))["train"]
    assert half.features["registers"].dtype == "float16"
    assert half.data.nbytes < full.data.nbytes  # K·d·2 instead of K·d·4 bytes per program
    a, b = half.with_format("torch")[:]["registers"], full.with_format("torch")[:]["registers"]
    assert torch.allclose(a.float(), b, atol=1e-2)  # float16 rounding only


@pytest.mark.parametrize("stage", ["mdm", "autoencoder"])
def test_fsdp2_sharded_training_equals_ddp_and_saves_a_loadable_model(tmp_path, stage):
    out = tmp_path / stage
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    command = [str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", str(next(_ports))]
    result = subprocess.run(
        [*command, str(HERE / "fsdp_worker.py"), stage, str(out)], env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-4000:]
    report = json.loads((out / "report.json").read_text())
    assert report["sharded"] and "LLaDABlock" in report["wrapped"]
    ddp, fsdp = torch.load(out / "ddp.pt"), torch.load(out / "fsdp.pt")
    assert max_diff(ddp, fsdp) <= 1e-5
    assert report["fsdp_losses"] == pytest.approx(report["ddp_losses"], abs=1e-5)
    from crocodil_hf import GuidedLLaDAForMaskedLM, LLaDAModelLM, RegisterEncoderModel

    classes = {"demasker": GuidedLLaDAForMaskedLM if stage == "autoencoder" else LLaDAModelLM}
    if stage == "autoencoder":
        classes["encoder"] = RegisterEncoderModel
    for name, cls in classes.items():
        loaded = cls.from_pretrained(out / "saved" / name).state_dict()
        for key, value in loaded.items():
            assert torch.equal(value, fsdp[f"{name}.{key}"]), key


def test_shipped_fsdp_config_wraps_every_stage_objective():
    """accelerate's FSDP2 wrap policy, built from the shipped config, accepts each stage's model (no GPU needed)."""
    from accelerate.utils import FullyShardedDataParallelPlugin
    from accelerate.utils.fsdp_utils import fsdp2_prepare_auto_wrap_policy

    from crocodil_hf import GuidedLLaDAConfig, GuidedLLaDAForMaskedLM, LLaDAConfig, LLaDAModelLM
    from crocodil_hf.modeling.configuration_crocodil import RegisterEncoderConfig
    from crocodil_hf.modeling.modeling_register_encoder import RegisterEncoderModel
    from crocodil_hf.modeling.modeling_register_prior import RegisterPriorTransformer
    from crocodil_hf.training.arguments import CONFIG_DIR
    from crocodil_hf.training.objectives import (
        AutoencoderObjective,
        MaskedDiffusionObjective,
        RegisterPriorObjective,
    )

    shipped = yaml.safe_load((CONFIG_DIR / "accelerate" / "fsdp.yaml").read_text())["fsdp_config"]
    llada = {**TINY_LLADA, "vocab_size": 64, "embedding_size": 64, "mask_token_id": 63}
    encoder = RegisterEncoderModel(
        RegisterEncoderConfig(backbone_config={"model_type": "llada", **llada}, num_registers=4)
    )
    bert = RegisterEncoderModel(
        RegisterEncoderConfig(
            backbone_config={"model_type": "bert", "hidden_size": 32, "num_hidden_layers": 1, "num_attention_heads": 2,
                             "intermediate_size": 64, "vocab_size": 64},
            num_registers=4,
        )
    )  # fmt: skip
    demasker = GuidedLLaDAForMaskedLM(
        GuidedLLaDAConfig(**llada, num_registers=4, register_dim=32, prefix_rope_pairs=2)
    )
    prior = RegisterPriorTransformer(
        num_registers=4, register_dim=32, hidden_size=32, num_layers=1, num_attention_heads=2
    )
    cond = RegisterPriorTransformer(
        num_registers=4, register_dim=32, hidden_size=32, num_layers=1, num_attention_heads=2, cross_attention_dim=32
    )
    objectives = {
        "mdm": (MaskedDiffusionObjective(LLaDAModelLM(LLaDAConfig(**llada))), {"LLaDABlock"}),
        "autoencoder": (AutoencoderObjective(encoder, demasker), {"LLaDABlock"}),
        "autoencoder (BERT encoder)": (
            AutoencoderObjective(bert, demasker),
            {"LLaDABlock", "BertLayer", "BertEmbeddings"},
        ),
        "prior": (RegisterPriorObjective(prior), {"RegisterPriorBlock"}),
        "conditional-prior": (RegisterPriorObjective(cond, encoder), {"RegisterPriorBlock", "LLaDABlock"}),
    }
    for name, (objective, expected) in objectives.items():
        plugin = FullyShardedDataParallelPlugin(
            fsdp_version=shipped["fsdp_version"],
            auto_wrap_policy=shipped["fsdp_auto_wrap_policy"].lower(),
            transformer_cls_names_to_wrap=shipped.get("fsdp_transformer_layer_cls_to_wrap"),
        )
        policy = fsdp2_prepare_auto_wrap_policy(plugin, objective)
        wrapped = {type(m).__name__ for m in objective.modules() if policy(m)}
        assert wrapped == expected, name


def test_two_process_run_is_refused_cleanly_when_a_stage_output_exists(space, references):
    """A finished output directory is not overwritten by a distributed run either (every rank refuses)."""
    before = (space / "ref-mdm" / "model.safetensors").read_bytes()
    command = [str(BIN / "torchrun"), "--nproc_per_node", "2", "--master_port", str(next(_ports)), WORKER]
    command += ["train", "mdm", "--config", str(space / "config.yaml"), "--output_dir", str(space / "ref-mdm")]
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=300, env={**os.environ, "OMP_NUM_THREADS": "1"}
    )
    assert result.returncode != 0 and "already holds a finished stage" in result.stderr
    assert (space / "ref-mdm" / "model.safetensors").read_bytes() == before


def test_ranks_leave_in_order(tmp_path):
    """The end of a distributed `crocodil train`: every rank destroys its process group, and rank 0 (which may host
    the store) does so only after a slow rank 1 has made its last store call, so no rank is left talking to a peer
    that has gone (the CI failure "Connection closed by peer" after a stage had saved)."""
    port = next(_ports)
    worker = HERE / "end_of_job_worker.py"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [
        subprocess.Popen(
            [sys.executable, str(worker), str(rank), str(port), str(tmp_path / f"rank{rank}.json")],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for rank in range(2)
    ]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    first, second = (json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2))
    assert not first["initialized"] and not second["initialized"]
    assert len(first["destroyed"]) == len(second["destroyed"]) == 1
    assert first["destroyed"][0] > max(second["store_calls_ended"])


def test_whole_chain_as_two_processes_then_assemble_and_generate(tmp_path):
    """scripts/train_tiny_python.sh with tiny models: every stage under torchrun, assembly, generation; as the shipped
    model, with prefix priors over the first k = 2 of the K = 4 registers, trained from scratch."""
    env = {
        **os.environ,
        "SMOKE": "1",
        "NPROC": "2",
        "NUM_REGISTERS": "2",
        "CROCODIL_DEBUG": "1",  # a failing rank prints its traceback,
        "PYTHONUNBUFFERED": "1",  # and every rank's output reaches the report, even from a rank killed by torchrun
        "MASTER_PORT": str(next(_ports)),
        "PATH": f"{BIN}:{os.environ['PATH']}",
    }
    script = HERE.parent / "scripts" / "train_tiny_python.sh"
    result = subprocess.run(
        ["bash", str(script), str(tmp_path / "run")], env=env, capture_output=True, text=True, timeout=900
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-8000:]
    for stage in ("mdm", "autoencoder", "registers", "prior", "conditional-prior"):
        assert (tmp_path / "run" / stage / "training_complete.json").exists(), stage
    pipeline = tmp_path / "run" / "pipeline"
    assert json.loads((pipeline / "model_index.json").read_text())["default_num_registers"] == 2
    for prior in ("prior", "conditional_prior"):
        assert json.loads((pipeline / prior / "config.json").read_text())["num_registers"] == 2, prior
    assert json.loads((tmp_path / "run" / "registers" / "registers_info.json").read_text())["num_registers"] == 4
    assert "NFE" in result.stdout or "nfe" in result.stdout.lower(), result.stdout[-1000:]
