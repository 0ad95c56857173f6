"""Training recipes: data, every stage through `crocodil train`, the paper's training knobs, resume, LoRA (multi-process
training: test_distributed.py)."""

import json
import math
import os
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from crocodil_hf.data.corpus import CorpusConfig, build_program_dataset, in_validation, split_program
from crocodil_hf.data.tokenizer import train_bpe_tokenizer
from crocodil_hf.testing import TINY_CORPUS
from crocodil_hf.training.losses import forward_mask, register_noise
from crocodil_hf.training.run import parse_stage_arguments, run_stage
from crocodil_hf.training.trainers import CPU_CLOCK_FILE

TINY_LLADA = {
    "d_model": 32,
    "n_heads": 2,
    "n_kv_heads": 2,
    "n_layers": 1,
    "mlp_hidden_size": 64,
    "rope_theta": 10000.0,
    "max_sequence_length": 128,
}
COMMON = {
    "max_length": 24,
    "per_device_train_batch_size": 8,
    "logging_steps": 1,
    "save_steps": 1000,
    "learning_rate": 3e-3,
    "seed": 0,
    "dataloader_num_workers": 0,
    "disable_tqdm": True,
}


def write_corpus(root: Path, n: int = 60) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        body = TINY_CORPUS[i % len(TINY_CORPUS)]
        (root / f"mod_{i:03d}.py").write_text(f"# module {i}\n{body}\nvalue_{i} = {i}\n")
    return root


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    corpus = write_corpus(root / "corpus")
    tokenizer = train_bpe_tokenizer([p.read_text() for p in corpus.glob("*.py")], vocab_size=300)
    tokenizer.save_pretrained(root / "tokenizer")
    return root


def stage_args(workspace: Path, name: str, **values):
    config = {
        "tokenizer_name_or_path": str(workspace / "tokenizer"),
        "corpus": str(workspace / "corpus"),
        "data_cache_dir": str(workspace / "cache"),
        **COMMON,
        **values,
    }
    path = workspace / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)


def losses(output_dir) -> list[float]:
    state = sorted(Path(output_dir).glob("checkpoint-*/trainer_state.json"))
    history = json.loads(state[-1].read_text())["log_history"] if state else []
    return [h["loss"] for h in history if "loss" in h]


def run(workspace, stage, name, overrides=(), **values):
    model_args, data_args, training_args = parse_stage_arguments(
        stage_args(workspace, name, **values), list(overrides)
    )
    return run_stage(stage, model_args, data_args, training_args)


def falls(values: list[float]) -> bool:
    head, tail = values[: len(values) // 5 or 1], values[-(len(values) // 5 or 1) :]
    return sum(tail) / len(tail) < 0.85 * sum(head) / len(head)


# ---------------------------------------------------------------- data


def test_data_builder_skips_and_counts_bad_files(tmp_path):
    corpus = write_corpus(tmp_path / "src", n=10)
    (corpus / "binary.py").write_bytes(b"\x00\x01\x02binary")
    (corpus / "empty.py").write_text("   \n")
    (corpus / "latin1.py").write_bytes("caf\xe9 = 1\n".encode("latin-1"))
    (corpus / "tests").mkdir()
    (corpus / "tests" / "test_x.py").write_text("assert True\n")
    (corpus / "notes.txt").write_text("not python")
    tokenizer = train_bpe_tokenizer(TINY_CORPUS * 5, vocab_size=300)
    dataset, summary = build_program_dataset(
        tokenizer, CorpusConfig(source=str(corpus), max_length=24, validation_fraction=0.3)
    )
    assert (summary.skipped_binary, summary.skipped_empty, summary.skipped_non_utf8) == (1, 1, 1)
    assert summary.skipped_tests == 1 and summary.files_used == 10
    assert "1 binary" in str(summary) and "1 non-UTF-8" in str(summary)
    for row in dataset["train"]:
        assert len(row["input_ids"]) <= 24
        assert row["input_ids"][0] == tokenizer.bos_token_id and row["input_ids"][-1] == tokenizer.eos_token_id
    train_paths, val_paths = set(dataset["train"]["path"]), set(dataset["validation"]["path"])
    assert not train_paths & val_paths
    assert all(in_validation(p, 0.3) for p in val_paths)


def test_long_files_split_at_top_level_definitions_never_mid_line():
    tokenizer = train_bpe_tokenizer(TINY_CORPUS * 5, vocab_size=300)
    program = "".join(f"def f{i}(x):\n    return x + {i}\n\n" for i in range(12))
    pieces = split_program(program, tokenizer, budget=30)
    assert len(pieces) > 1
    assert "".join(pieces).replace("\n", "") == program.replace("\n", "")  # nothing lost
    for piece in pieces:
        assert piece.startswith("def ") and piece.endswith("\n")
        assert len(tokenizer(piece, add_special_tokens=False)["input_ids"]) <= 30


def test_stdlib_is_the_default_corpus_and_is_cached(tmp_path):
    tokenizer = train_bpe_tokenizer(TINY_CORPUS * 5, vocab_size=300)
    config = CorpusConfig(max_length=32, max_programs=200)
    first, summary = build_program_dataset(tokenizer, config, cache_dir=tmp_path)
    assert summary.files_used > 0 and all(not p.startswith("test") for p in first["train"]["path"])
    assert not any("/test/" in p for p in first["train"]["path"])
    start = time.perf_counter()
    again, _ = build_program_dataset(tokenizer, config, cache_dir=tmp_path)
    assert time.perf_counter() - start < 5 and again["train"]["input_ids"] == first["train"]["input_ids"]


def test_tokenizer_command_has_masked_diffusion_specials(tmp_path):
    from crocodil_hf.cli import main

    corpus = write_corpus(tmp_path / "c", n=5)
    assert main(["tokenizer", "--corpus", str(corpus), "--vocab-size", "300", "--output", str(tmp_path / "tok")]) == 0
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path / "tok")
    assert {tok.bos_token_id, tok.eos_token_id, tok.pad_token_id, tok.mask_token_id} == {0, 1, 2, 3}


# ---------------------------------------------------------------- training knobs


def test_register_noise_reaches_target_cosine_similarity():
    from crocodil_hf import normalize_registers

    z = normalize_registers(torch.randn(4096, 8, 64))
    noisy = register_noise(z, 0.8, generator=torch.Generator().manual_seed(0))
    cs = torch.nn.functional.cosine_similarity(z, noisy, dim=-1)
    assert cs.mean().item() == pytest.approx(0.8, abs=0.01)
    assert torch.equal(register_noise(z, 1.0), z)


def test_all_mask_probability_and_masking_rate_match_settings():
    ids = torch.ones(20_000, 16, dtype=torch.long)
    _, masked, p_mask = forward_mask(ids, 7, all_mask_prob=0.25, generator=torch.Generator().manual_seed(0))
    full = masked[:, 1:].all(dim=1)
    assert full.float().mean().item() == pytest.approx(0.25 + 0.75 / 16, abs=0.02)
    assert not masked[:, 0].any()  # BOS stays visible
    partial = ~(p_mask == 1)
    assert masked[partial, 1:].float().mean().item() == pytest.approx(p_mask[partial].mean().item(), abs=0.01)


# ---------------------------------------------------------------- stages


@pytest.fixture(scope="module")
def trained(workspace):
    out = {"cpu_before": time.process_time()}
    out["mdm"] = run(
        workspace,
        "mdm",
        "mdm",
        model_config=TINY_LLADA,
        output_dir=str(workspace / "mdm"),
        max_steps=40,
        save_steps=40,
    )
    out["autoencoder"] = run(
        workspace,
        "autoencoder",
        "ae",
        model_name_or_path=out["mdm"],
        num_registers=4,
        prefix_rope_pairs=2,
        encoder_backbone_config={"model_type": "llada", **TINY_LLADA},
        output_dir=str(workspace / "ae"),
        max_steps=40,
        save_steps=10,
        clean_warmup_steps=10,
    )
    out["registers"] = run(
        workspace,
        "registers",
        "reg",
        encoder_name_or_path=str(workspace / "ae" / "encoder"),
        output_dir=str(workspace / "registers"),
    )
    prior = {"hidden_size": 32, "num_layers": 1, "num_attention_heads": 2}
    out["prior"] = run(
        workspace,
        "prior",
        "prior",
        registers_dir=out["registers"],
        prior_config=prior,
        output_dir=str(workspace / "prior"),
        max_steps=40,
        save_steps=40,
        learning_rate=1e-2,
    )
    out["conditional-prior"] = run(
        workspace,
        "conditional-prior",
        "cprior",
        registers_dir=out["registers"],
        prior_config=prior,
        output_dir=str(workspace / "cprior"),
        max_steps=40,
        save_steps=40,
        learning_rate=1e-2,
    )
    out["cpu_after"] = time.process_time()
    return out


@pytest.mark.parametrize("stage", ["mdm", "prior", "conditional-prior"])
def test_each_stage_trains_and_its_loss_falls(trained, stage):
    values = losses(trained[stage])
    assert len(values) == 40 and all(math.isfinite(v) for v in values)
    assert falls(values), values
    record = json.loads((Path(trained[stage]) / "training_complete.json").read_text())
    assert record["steps"] == 40 and record["num_processes"] == 1
    assert record["cpu_seconds"] > 0


def test_stage_records_count_each_stage_s_own_cpu_time(trained):
    """`cpu_seconds` (what model cards add up to training CPU-hours) is each stage's own: the stages ran one after
    another in this process, so their times add up to no more than the whole run's (each counting from the process
    start would add the earlier stages again)."""
    stages = ("mdm", "autoencoder", "registers", "prior", "conditional-prior")
    seconds = [json.loads((Path(trained[s]) / "training_complete.json").read_text())["cpu_seconds"] for s in stages]
    assert all(value > 0 for value in seconds), seconds
    rounding = 0.05 * len(stages)  # each record is rounded to 0.1 s (a run measured 6.9 against 6.89)
    assert sum(seconds) <= trained["cpu_after"] - trained["cpu_before"] + rounding, seconds


def test_autoencoder_loss_at_fixed_noise_falls_after_the_clean_warmup(trained, workspace):
    """The per-step loss mixes noise levels; the objective at fixed row seeds over the whole training set does not."""
    from crocodil_hf import GuidedLLaDAForMaskedLM, RegisterEncoderModel
    from crocodil_hf.training.losses import RowGenerators
    from crocodil_hf.training.objectives import AutoencoderObjective
    from crocodil_hf.training.trainers import ProgramCollator

    out = Path(trained["autoencoder"])
    assert len(losses(out)) == 40 and (out / "training_complete.json").exists()
    objective = AutoencoderObjective(
        RegisterEncoderModel.from_pretrained(out / "encoder"), GuidedLLaDAForMaskedLM.from_pretrained(out / "demasker")
    ).eval()
    tokenizer_eos = objective.demasker.config.eos_token_id
    corpus = build_program_dataset(
        __import__("transformers").AutoTokenizer.from_pretrained(out / "tokenizer"),
        CorpusConfig(source=str(workspace / "corpus"), max_length=24),
        cache_dir=workspace / "cache",
    )[0]["train"]
    collator = ProgramCollator(tokenizer_eos, 24)

    def fixed_noise_loss(checkpoint: int) -> float:
        objective.load_state_dict(load_file(str(out / f"checkpoint-{checkpoint}" / "model.safetensors")))
        total, batches = 0.0, 0
        with torch.no_grad():
            for start in range(0, len(corpus) - 15, 16):
                batch = collator(list(corpus.select(range(start, start + 16))))
                seeds = torch.tensor([RowGenerators.row_seed(0, 0, start + i) for i in range(16)])
                total += objective(**batch, row_seeds=seeds)["loss"].item()
                batches += 1
        return total / batches

    after_warmup, final = fixed_noise_loss(10), fixed_noise_loss(40)
    assert final < 0.95 * after_warmup, (after_warmup, final)


def test_stage_outputs_assemble_into_a_working_pipeline(trained, tmp_path):
    from crocodil_hf import CrocodilPipeline
    from crocodil_hf.cli import main

    target = tmp_path / "pipe"
    assert (
        main(
            [
                "assemble",
                "--autoencoder",
                trained["autoencoder"],
                "--prior",
                trained["prior"],
                "--conditional-prior",
                trained["conditional-prior"],
                "--output",
                str(target),
            ]
        )
        == 0
    )
    pipe = CrocodilPipeline.from_pretrained(target)
    pipe.set_progress_bar_config(disable=True)
    out = pipe(mode="con_within_disc", num_samples=2, gen_length=16, steps=4, prior_steps=4)
    assert len(out.texts) == 2
    from datasets import load_from_disk

    registers = load_from_disk(trained["registers"])
    assert len(registers["train"][0]["registers"]) == 4


def test_assemble_adds_the_mdm_stage_as_the_mdm_baseline(trained, tmp_path):
    """`crocodil assemble --mdm-demasker MDM_STAGE`: `mode="mdm"` then runs the plain MDM, whose logits without
    registers are exactly the mdm stage's model's."""
    from crocodil_hf import CrocodilPipeline, LLaDAModelLM
    from crocodil_hf.cli import main

    target = tmp_path / "pipe"
    args = ["assemble", "--autoencoder", trained["autoencoder"], "--prior", trained["prior"]]
    assert main([*args, "--mdm-demasker", trained["mdm"], "--output", str(target)]) == 0
    pipe = CrocodilPipeline.from_pretrained(target)
    pipe.set_progress_bar_config(disable=True)
    ids = torch.randint(0, pipe.demasker.config.vocab_size, (2, 17), generator=torch.Generator().manual_seed(0))
    base = LLaDAModelLM.from_pretrained(trained["mdm"]).eval()
    with torch.no_grad():
        assert torch.allclose(pipe.mdm_demasker(ids).logits, base(ids).logits, atol=1e-5)
        assert not torch.allclose(pipe.demasker(ids).logits, base(ids).logits, atol=1e-3)  # the trained autoencoder
    kwargs = dict(mode="mdm", num_samples=2, gen_length=16, steps=4)
    assert pipe.mdm_demasker.config.default_gen_length == pipe.demasker.config.default_gen_length
    assert pipe(**kwargs).nfe["demasker_calls"] == 4
    assert (
        main(
            ["assemble", "--autoencoder", trained["autoencoder"], "--prior", trained["prior"], "--output", str(target)]
        )
        == 2
    )  # an existing pipeline is not overwritten silently


def _state(path: Path) -> dict[str, torch.Tensor]:
    return load_file(str(next(Path(path).glob("*.safetensors"))))


def test_init_from_continues_a_trained_pipeline_and_prompt_aware_stages_train(trained, workspace, tmp_path):
    """`--init_from PIPELINE`: the stages start from the pipeline's weights (at learning rate 0 they end exactly
    there, so nothing was re-initialised), the config's model paths are not needed, and the prompt-aware options
    train; options a stage cannot use are refused before any work."""
    from crocodil_hf.pipelines.assembly import assemble_pipeline

    pipe = tmp_path / "pipe"
    assemble_pipeline(trained["autoencoder"], trained["prior"], str(pipe), trained["conditional-prior"])
    frozen = dict(max_steps=3, learning_rate=0.0, weight_decay=0.0, warmup_steps=0, save_steps=1000)
    prompt = dict(prompt_prob=0.5, prompt_suffix_prob=0.5)
    ae = run(
        workspace,
        "autoencoder",
        "ae-continue",
        init_from=str(pipe),
        model_name_or_path=str(tmp_path / "gone"),  # replaced by init_from: not read, not checked
        tokenizer_name_or_path=str(tmp_path / "gone-too"),
        output_dir=str(tmp_path / "ae"),
        **frozen,
        **prompt,
    )
    for component in ("encoder", "demasker"):
        before, after = _state(pipe / component), _state(Path(ae) / component)
        assert before.keys() == after.keys()
        assert all(torch.equal(before[k], after[k]) for k in before), component
    record = json.loads(Path(ae, "training_complete.json").read_text())
    assert math.isfinite(record["metrics"]["train_loss"]) and record["metrics"]["train_loss"] > 0
    assert record["init_from"] == str(pipe) and record["steps"] == 3  # the lineage a model card adds up
    cprior = run(
        workspace,
        "conditional-prior",
        "cprior-continue",
        init_from=str(pipe),
        registers_dir=trained["registers"],
        output_dir=str(tmp_path / "cprior"),
        **frozen,
        **prompt,
    )
    before, after = _state(pipe / "conditional_prior"), _state(Path(cprior))
    assert all(torch.equal(before[k], after[k]) for k in before)
    # the plain-MDM baseline (stored as a guided demasker) continues as the plain LLaDA model it was trained as
    with_baseline = tmp_path / "pipe-baseline"
    assemble_pipeline(trained["autoencoder"], trained["prior"], str(with_baseline), mdm_demasker_dir=trained["mdm"])
    mdm = run(
        workspace,
        "mdm",
        "mdm-continue",
        init_from=str(with_baseline),
        model_name_or_path=str(tmp_path / "gone"),
        tokenizer_name_or_path=str(tmp_path / "gone-too"),
        output_dir=str(tmp_path / "mdm"),
        **frozen,
    )
    before, after = _state(trained["mdm"]), _state(Path(mdm))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert json.loads(Path(mdm, "training_complete.json").read_text())["init_from"] == str(with_baseline)
    for stage, values, message in (
        ("prior", dict(registers_dir=trained["registers"], prompt_prob=0.5), "not to prior"),
        ("mdm", dict(model_config=TINY_LLADA), "has no 'mdm_demasker' component"),
        ("autoencoder", dict(init_from=str(workspace / "corpus")), "not a pipeline directory"),
        ("autoencoder", dict(init_from=str(tmp_path / "missing")), "does not exist"),
    ):
        values.setdefault("init_from", str(pipe))
        output = tmp_path / f"refused-{stage}"
        with pytest.raises(ValueError, match=message):
            run(workspace, stage, f"refused-{stage}", output_dir=str(output), max_steps=2, **values)
        assert not any(output.glob("checkpoint-*")) and not (output / "training_complete.json").exists()


def test_distilled_priors_train_assemble_and_generate_by_default(trained, workspace, tmp_path, capsys):
    """`prior-distill` / `conditional-prior-distill` start from the `--init_from` pipeline's priors (at learning rate
    0 the student ends exactly at its teacher's weights), record their step count, assemble as optional components
    that `crocodil generate` uses by default (prior calls = the students' steps) and `--no-distilled-prior` skips;
    without `--init_from`, or with a bad step count, the stage stops before any work."""
    from crocodil_hf import CrocodilPipeline
    from crocodil_hf.cli import main
    from crocodil_hf.pipelines.assembly import assemble_pipeline

    pipe = tmp_path / "pipe"
    assemble_pipeline(trained["autoencoder"], trained["prior"], str(pipe), trained["conditional-prior"])
    students = {}
    for stage, component in (("prior-distill", "prior"), ("conditional-prior-distill", "conditional_prior")):
        students[stage] = run(
            workspace, stage, stage, init_from=str(pipe), registers_dir=trained["registers"],
            output_dir=str(tmp_path / stage), max_steps=3, save_steps=1000, learning_rate=0.0, warmup_steps=0,
            teacher_steps=3, distilled_steps=1, per_device_train_batch_size=4,
        )  # fmt: skip
        before, after = _state(pipe / component), _state(students[stage])
        assert all(torch.equal(before[k], after[k]) for k in before)
        record = json.loads(Path(students[stage], "training_complete.json").read_text())
        assert record["distilled_steps"] == 1 and record["teacher_steps"] == 3
        assert math.isfinite(record["metrics"]["train_loss"])
    fast = tmp_path / "fast"
    args = ["assemble", "--autoencoder", trained["autoencoder"], "--prior", trained["prior"], "--conditional-prior",
            trained["conditional-prior"], "--distilled-prior", students["prior-distill"],
            "--distilled-conditional-prior", students["conditional-prior-distill"], "--prior-scheduler", "dpmsolver++",
            "--prior-steps", "3", "--output", str(fast)]  # fmt: skip
    assert main(args) == 0
    loaded = CrocodilPipeline.from_pretrained(fast)
    assert loaded.distilled_prior.config.distilled_steps == 1 and loaded.config.default_prior_steps == 3
    assert type(loaded.scheduler).__name__ == "DPMSolverMultistepScheduler"
    extra = 1  # the offsets' extra base step at this grid
    for flag, prior_calls in (([], 2 * (1 + extra)), (["--no-distilled-prior"], 2 * (3 + extra))):
        capsys.readouterr()
        generate = ["generate", "--pipeline", str(fast), "--num-samples", "1", "--steps", "4", "--gen-length", "8"]
        assert main(generate + flag) == 0
        assert f"{prior_calls} prior calls" in capsys.readouterr().out
    # --distilled-steps: the students' default step count, saved in their configs (the teachers' stays)
    assert main(args[:-2] + ["--distilled-steps", "3", "--output", str(tmp_path / "fast3")]) == 0
    three = CrocodilPipeline.from_pretrained(tmp_path / "fast3")
    assert (
        three.distilled_prior.config.distilled_steps == three.distilled_conditional_prior.config.distilled_steps == 3
    )
    assert three(num_samples=1, steps=4, gen_length=8).nfe["prior_calls"] == 2 * (3 + extra)
    # --num-registers: the k the prior-based modes show the demasker by default, saved in model_index.json
    assert main(args[:-2] + ["--num-registers", "2", "--output", str(tmp_path / "k2")]) == 0
    k2 = CrocodilPipeline.from_pretrained(tmp_path / "k2")
    assert k2.config.default_num_registers == 2 and three.sampled_num_registers_default == three.num_registers_max
    for values, message in (
        (dict(init_from=None), "pass `--init_from PIPELINE`"),
        (dict(init_from=str(fast), teacher_steps=0), "teacher_steps"),
    ):
        values = {"registers_dir": trained["registers"], "init_from": str(pipe), **values}
        if values["init_from"] is None:
            del values["init_from"]
        with pytest.raises(ValueError, match=message):
            run(workspace, "prior-distill", "refused-distill", output_dir=str(tmp_path / "refused"), **values)
        assert not (tmp_path / "refused" / "training_complete.json").exists()


def test_prefix_priors_model_the_first_k_registers_and_cut_the_prior_flops(trained, workspace, tmp_path, capsys):
    """`--prior_num_registers k` (docs/results.md "Prefix priors"): with `--init_from` a K-register pipeline the priors start
    from its weights (at learning rate 0 they end exactly there) with the offsets of the blocks the first k registers
    lie in; assembled with `--num-registers k` they sample (B, k, d) banks that the demasker reads, at a fraction of
    the prior FLOPs, while autoencoding keeps all K; a pipeline that would read more sampled registers than its
    priors make, priors of different k, and k > K are refused before any work."""
    from crocodil_hf import CrocodilPipeline
    from crocodil_hf.cli import main
    from crocodil_hf.modeling.modeling_register_prior import RegisterPriorTransformer
    from crocodil_hf.pipelines.assembly import assemble_pipeline

    pipe = tmp_path / "pipe"
    full = assemble_pipeline(trained["autoencoder"], trained["prior"], str(pipe), trained["conditional-prior"])
    K = full.num_registers_max
    frozen = dict(max_steps=2, learning_rate=0.0, weight_decay=0.0, warmup_steps=0, save_steps=1000)
    prefix = {}
    for stage, component in (("prior", "prior"), ("conditional-prior", "conditional_prior")):
        prefix[stage] = run(
            workspace, stage, f"prefix-{stage}", init_from=str(pipe), registers_dir=trained["registers"],
            prior_num_registers=2, output_dir=str(tmp_path / f"prefix-{stage}"), **frozen,
        )  # fmt: skip
        before, after = _state(pipe / component), _state(Path(prefix[stage]))
        assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
        config = RegisterPriorTransformer.load_config(prefix[stage])
        teacher = getattr(full, component).config
        assert config["num_registers"] == 2 and K == 4
        assert config["timestep_offsets"] == list(teacher.timestep_offsets[:2])  # blocks [1, 1] of [1, 2, 1]
    scratch = run(
        workspace, "prior", "prefix-scratch", registers_dir=trained["registers"], prior_num_registers=3,
        prior_config={"hidden_size": 32, "num_layers": 1, "num_attention_heads": 2}, output_dir=str(tmp_path / "s"),
        max_steps=2, save_steps=1000,
    )  # fmt: skip
    assert RegisterPriorTransformer.load_config(scratch)["num_registers"] == 3
    assert math.isfinite(json.loads(Path(scratch, "training_complete.json").read_text())["metrics"]["train_loss"])

    args = ["assemble", "--autoencoder", trained["autoencoder"], "--prior", prefix["prior"], "--conditional-prior",
            prefix["conditional-prior"], "--prior-steps", "3", "--output"]  # fmt: skip
    for extra, message in (
        ([], "pass --num-registers <= 2"),
        (["--num-registers", "3"], "the k = 2 registers the priors"),
    ):
        capsys.readouterr()
        assert main(args + [str(tmp_path / "refused")] + extra) != 0
        assert message in capsys.readouterr().err and not (tmp_path / "refused").exists()
    mixed = args[:4] + [trained["prior"]] + args[5:]  # a K-register prior with a 2-register conditional prior
    assert main(mixed + [str(tmp_path / "refused"), "--num-registers", "2"]) != 0
    assert "different numbers of registers" in capsys.readouterr().err
    assert main(args + [str(tmp_path / "k2"), "--num-registers", "2"]) == 0
    small = CrocodilPipeline.from_pretrained(tmp_path / "k2")
    small.set_progress_bar_config(disable=True)
    full = CrocodilPipeline(**full.components, default_prior_steps=3, default_num_registers=2)
    full.set_progress_bar_config(disable=True)
    kwargs = dict(num_samples=2, gen_length=8, steps=4)
    for mode in ("con_then_disc", "con_within_disc"):
        out, reference = small(mode=mode, **kwargs), full(mode=mode, **kwargs)
        assert out.registers.shape[1] == 2 and len(out.texts) == 2
        assert out.nfe["prior_calls"] == reference.nfe["prior_calls"]
        assert out.nfe["prior_total"] < 0.75 * reference.nfe["prior_total"]  # fewer register tokens per call
        assert out.nfe["total"] - out.nfe["prior_total"] == pytest.approx(
            reference.nfe["total"] - reference.nfe["prior_total"]
        )
    assert small(mode="autoencode", text=["x = 1\n"], steps=2).registers.shape[1] == K
    with pytest.raises(ValueError, match="more than the 2 registers this pipeline's priors sample"):
        small(mode="con_then_disc", num_registers=3, **kwargs)
    for stage, values, message in (
        ("prior", dict(prior_num_registers=K + 1), "more than the K=4 registers"),
        ("autoencoder", dict(prior_num_registers=2), "not to autoencoder"),
    ):
        output = tmp_path / f"refused-{stage}"
        with pytest.raises(ValueError, match=message):
            run(workspace, stage, f"refused-prefix-{stage}", registers_dir=trained["registers"],
                output_dir=str(output), max_steps=2, **values)  # fmt: skip
        assert not output.exists() or not any(output.iterdir())


def test_a_conditional_prior_call_counts_its_condition_s_key_and_value_projections():
    """`NFEBreakdown.count_prior_calls`: the cross-attention projects every condition token, however few registers
    the prior samples (with as many query as condition tokens the count is the plain forward count)."""
    from crocodil_hf.modeling.modeling_register_prior import RegisterPriorTransformer
    from crocodil_hf.pipelines.accounting import NFEBreakdown, forward_flops

    prior = RegisterPriorTransformer(
        num_registers=2, register_dim=8, hidden_size=16, num_layers=2, num_attention_heads=2, cross_attention_dim=8
    )
    kv = sum(b.attn2.to_k.weight.numel() + b.attn2.to_v.weight.numel() for b in prior.blocks)
    for condition_tokens in (2, 6):
        nfe = NFEBreakdown()
        nfe.count_prior_calls(prior, 3, condition_tokens=condition_tokens)
        assert nfe.prior_flops == pytest.approx(3 * (forward_flops(prior, 2) + 2 * kv * (condition_tokens - 2)))


def test_a_from_scratch_llada_encoder_has_no_unused_output_head(trained):
    weights = _state(Path(trained["autoencoder"]) / "encoder")
    assert "backbone.model.transformer.blocks.0.ff_out.weight" in weights  # the MLP's output projection stays
    assert "backbone.model.transformer.ff_out.weight" not in weights  # the output head: registers never read logits


def test_finished_output_is_never_overwritten_without_the_flag(trained, workspace):
    before = (Path(trained["mdm"]) / "model.safetensors").read_bytes()
    with pytest.raises(ValueError, match="overwrite_output_dir"):
        run(workspace, "mdm", "mdm", model_config=TINY_LLADA, output_dir=trained["mdm"], max_steps=2)
    assert (Path(trained["mdm"]) / "model.safetensors").read_bytes() == before


def test_encoder_warmup_keeps_the_demasker_frozen(trained, workspace, tmp_path):
    out = run(
        workspace,
        "autoencoder",
        "warm",
        model_name_or_path=str(workspace / "mdm"),
        num_registers=4,
        prefix_rope_pairs=2,
        encoder_backbone_config={"model_type": "llada", **TINY_LLADA},
        output_dir=str(tmp_path / "warm"),
        max_steps=6,
        save_steps=6,
        encoder_warmup_steps=6,
        weight_decay=0.1,
    )
    base = load_file(str(Path(workspace / "mdm") / "model.safetensors"))
    demasker = load_file(str(Path(out) / "demasker" / "model.safetensors"))
    for name, tensor in base.items():
        assert torch.equal(demasker[name], tensor), name
    state = json.loads(next(Path(out).glob("checkpoint-*/trainer_state.json")).read_text())
    assert state["global_step"] == 6


def test_lora_trains_only_adapters_and_new_prefix_parameters(trained, workspace, tmp_path):
    from crocodil_hf import GuidedLLaDAForMaskedLM
    from crocodil_hf.training.run import CrocodilTrainingArguments, apply_lora

    model = GuidedLLaDAForMaskedLM.from_base(str(workspace / "mdm"), num_registers=4, register_dim=32)
    lora = apply_lora(model, CrocodilTrainingArguments(output_dir=str(tmp_path), lora_r=4))
    trainable = {n for n, p in lora.named_parameters() if p.requires_grad}
    assert trainable and all(
        "lora_" in n or any(k in n for k in ("register_proj", "prefix_start", "prefix_end")) for n in trainable
    )
    out = run(
        workspace,
        "autoencoder",
        "lora",
        model_name_or_path=str(workspace / "mdm"),
        num_registers=4,
        prefix_rope_pairs=2,
        encoder_backbone_config={"model_type": "llada", **TINY_LLADA},
        output_dir=str(tmp_path / "lora"),
        max_steps=5,
        save_steps=5,
        use_lora=True,
        lora_r=4,
    )
    checkpoint = load_file(str(next(Path(out).glob("checkpoint-*")) / "model.safetensors"))
    base = load_file(str(Path(workspace / "mdm") / "model.safetensors"))
    for name, tensor in base.items():
        key = "demasker.base_model.model." + name.replace(".weight", ".base_layer.weight")
        key = key if key in checkpoint else "demasker.base_model.model." + name
        assert torch.equal(checkpoint[key], tensor), name
    assert any("lora_B" in k and checkpoint[k].abs().sum() > 0 for k in checkpoint)  # adapters moved off zero
    merged = load_file(str(Path(out) / "demasker" / "model.safetensors"))
    assert not any("lora" in k for k in merged)  # the final demasker is merged and loads as a plain model
    # The adapter loads with peft onto a guided demasker built from the same base, and merges to the same weights.
    from peft import PeftModel

    base = GuidedLLaDAForMaskedLM.from_base(
        str(workspace / "mdm"), num_registers=4, register_dim=32, prefix_rope_pairs=2
    )
    assert (Path(out) / "demasker_adapter" / "adapter_config.json").exists()
    restored = PeftModel.from_pretrained(base, Path(out) / "demasker_adapter").merge_and_unload().state_dict()
    for name, tensor in merged.items():
        assert torch.allclose(restored[name], tensor, atol=1e-6), name


def _cli(*args, env=None, **kwargs):
    return [sys.executable, "-m", "crocodil_hf.cli", *args]


def test_killed_run_resumes_to_the_same_parameters(workspace, tmp_path):
    values = dict(model_config=TINY_LLADA, max_steps=120, save_steps=10, save_total_limit=None, logging_steps=10)
    reference = run(workspace, "mdm", "ref", output_dir=str(tmp_path / "ref"), **values)

    config = stage_args(workspace, "killed", output_dir=str(tmp_path / "killed"), **values)
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    process = subprocess.Popen(
        _cli("train", "mdm", "--config", config), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.time() + 240
    while time.time() < deadline and not (tmp_path / "killed" / "checkpoint-20" / "trainer_state.json").exists():
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()
    assert not (tmp_path / "killed" / "training_complete.json").exists(), "the run finished before it was killed"
    # Each checkpoint records the stage's CPU time so far; the resumed run adds it to its own. Stand-in for a long
    # earlier run: every checkpoint it may resume from says 5000 CPU-seconds were spent before it.
    clocks = list((tmp_path / "killed").glob(f"checkpoint-*/{CPU_CLOCK_FILE}"))
    assert clocks and all(json.loads(c.read_text())["cpu_seconds"] > 0 for c in clocks)
    for clock in clocks:
        clock.write_text(json.dumps({"cpu_seconds": 5000.0}))
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    result = subprocess.run(
        _cli("train", "mdm", "--config", config), env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "resuming from" in result.stderr
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    resumed_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    record = json.loads((tmp_path / "killed" / "training_complete.json").read_text())
    assert 5000 < record["cpu_seconds"] <= 5000 + resumed_cpu + 1, (record["cpu_seconds"], resumed_cpu)
    final, expected = (
        load_file(str(tmp_path / "killed" / "model.safetensors")),
        load_file(str(Path(reference) / "model.safetensors")),
    )
    for name in expected:
        assert torch.allclose(final[name], expected[name], atol=1e-6), name


def test_config_errors_are_clear(workspace):
    with pytest.raises(ValueError, match="unknown argument"):
        parse_stage_arguments(stage_args(workspace, "bad", output_dir="x", not_a_field=1))
    with pytest.raises(ValueError, match="shipped"):
        parse_stage_arguments("no-such/config")
    model_args, data_args, args = parse_stage_arguments("tiny-python/autoencoder", ["--max_steps", "7"])
    assert args.max_steps == 7 and model_args.num_registers == 16 and args.all_mask_prob == 0.25
    for stage in ("mdm", "autoencoder", "registers", "prior", "conditional-prior"):
        parse_stage_arguments(f"paper/{stage}", ["--bf16", "false"])  # bf16 needs a GPU


def test_train_overrides_are_typed_and_bad_ones_stop_before_any_work(workspace, tmp_path, capsys):
    from crocodil_hf.cli import main

    config = stage_args(workspace, "typed", model_config=TINY_LLADA, output_dir=str(tmp_path / "never"))
    for bad in (["--max_steps"], ["--max_steps", "ten"], ["--no_such_field", "1"]):
        assert main(["train", "mdm", "--config", config, *bad]) == 2, bad
        assert not (tmp_path / "never").exists()
    assert "crocodil train mdm" in capsys.readouterr().err
    wrong_type = stage_args(workspace, "wrong", max_steps="ten", output_dir=str(tmp_path / "never"))
    assert main(["train", "mdm", "--config", wrong_type]) == 2 and not (tmp_path / "never").exists()
    assert "invalid int value: 'ten'" in capsys.readouterr().err  # a wrong type in the file, before any work
    _, _, args = parse_stage_arguments(stage_args(workspace, "yaml11", learning_rate="1e-3", output_dir="x"))
    assert args.learning_rate == 1e-3  # YAML reads 1e-3 as text; the field's type makes it a float
    model_args, _, args = parse_stage_arguments(config, ["--prior_config", "{hidden_size: 16}", "--use_lora"])
    assert model_args.prior_config == {"hidden_size": 16} and args.use_lora is True


def test_train_help_lists_every_stage_field_and_config_prints_shipped_paths(capsys):
    from crocodil_hf.cli import main

    assert main(["train", "autoencoder", "--help"]) == 0
    text = capsys.readouterr().out
    assert all(f in text for f in ("--register_noise_cs", "--registers_dtype", "--per_device_train_batch_size"))
    assert main(["config", "accelerate/fsdp"]) == 0
    path = Path(capsys.readouterr().out.strip())
    assert path.is_absolute() and yaml.safe_load(path.read_text())["distributed_type"] == "FSDP"
    assert main(["config", "no/such"]) == 2


def test_corpus_from_jsonl_and_parquet_files_and_folders(tmp_path):
    from datasets import Dataset

    tokenizer = train_bpe_tokenizer(TINY_CORPUS * 5, vocab_size=300)
    rows = Dataset.from_dict({"content": [f"x_{i} = {i}\n" for i in range(30)] + ["   "]})
    rows.to_json(str(tmp_path / "a.jsonl"))
    (tmp_path / "pq").mkdir()
    rows.select(range(15)).to_parquet(str(tmp_path / "pq" / "0.parquet"))
    rows.select(range(15, 31)).to_parquet(str(tmp_path / "pq" / "1.parquet"))
    for source in (tmp_path / "a.jsonl", tmp_path / "pq"):
        corpus, summary = build_program_dataset(
            tokenizer, CorpusConfig(source=str(source), text_column="content", max_length=24, validation_fraction=0.2)
        )
        assert summary.files_used == 30 and summary.skipped_empty == 1, source
        assert sum(summary.programs.values()) == 30
        assert summary.tokens["train"] == sum(len(ids) for ids in corpus["train"]["input_ids"])
    config = CorpusConfig(source=str(tmp_path / "pq"), text_column="content", max_length=24, validation_fraction=0.2)
    parallel, _ = build_program_dataset(tokenizer, CorpusConfig(**{**config.__dict__, "num_proc": 2}))
    assert parallel["train"]["input_ids"] == corpus["train"]["input_ids"]  # map(num_proc=2) builds the same corpus
    with pytest.raises(ValueError, match="no column"):
        build_program_dataset(tokenizer, CorpusConfig(source=str(tmp_path / "a.jsonl"), max_length=24))


def test_a_package_with_data_files_beside_its_code_is_read_as_source_files(tmp_path, caplog):
    """A package or repository holding JSON / CSV beside its `.py` files (most do) is a source tree: its programs are
    read, its data files ignored with a warning; a folder of data files alone stays a dataset."""
    tokenizer = train_bpe_tokenizer(TINY_CORPUS * 5, vocab_size=300)
    package = write_corpus(tmp_path / "pkg", n=10)
    (package / "config.json").write_text('{"vocab_size": 3}')  # not rows of a text column: no dataset
    (package / "data").mkdir()
    (package / "data" / "table.csv").write_text("a,b\n1,2\n")
    expected, _ = build_program_dataset(tokenizer, CorpusConfig(source=str(write_corpus(tmp_path / "plain", n=10))))
    with caplog.at_level("WARNING", logger="crocodil_hf.data.corpus"):
        corpus, summary = build_program_dataset(tokenizer, CorpusConfig(source=str(package)))
    assert summary.files_used == 10 and summary.programs == {k: len(v) for k, v in expected.items()}
    assert sorted(corpus["train"]["text"]) == sorted(expected["train"]["text"])
    assert "2 data file(s)" in caplog.text and "reading the source files" in caplog.text
    data_only = tmp_path / "rows"
    data_only.mkdir()
    (data_only / "a.jsonl").write_text("".join(f'{{"text": "x_{i} = {i}"}}\n' for i in range(20)))
    _, summary = build_program_dataset(tokenizer, CorpusConfig(source=str(data_only), max_length=24))
    assert summary.files_seen == 20  # rows of the data file, not files


def test_a_bf16_base_checkpoint_trains_with_fp32_master_weights(trained, workspace, tmp_path):
    from crocodil_hf import LLaDAModelLM

    LLaDAModelLM.from_pretrained(trained["mdm"], dtype=torch.bfloat16).save_pretrained(tmp_path / "bf16")
    assert all(v.dtype == torch.bfloat16 for v in load_file(str(tmp_path / "bf16" / "model.safetensors")).values())
    out = run(
        workspace, "mdm", "master", model_name_or_path=str(tmp_path / "bf16"), output_dir=str(tmp_path / "fp32"),
        max_steps=2, save_steps=2,
    )  # fmt: skip
    assert all(v.dtype == torch.float32 for v in load_file(str(Path(out) / "model.safetensors")).values())


def test_lora_on_a_pretrained_hf_encoder_backbone_saves_an_adapter_peft_loads(trained, workspace, tmp_path):
    from peft import PeftModel
    from transformers import BertConfig, BertModel

    from crocodil_hf import RegisterEncoderModel

    torch.manual_seed(0)
    bert = BertModel(
        BertConfig(vocab_size=320, hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64)
    )
    bert.save_pretrained(tmp_path / "bert")
    out = run(
        workspace, "autoencoder", "lora-enc", model_name_or_path=str(workspace / "mdm"), num_registers=4,
        prefix_rope_pairs=2, encoder_name_or_path=str(tmp_path / "bert"), output_dir=str(tmp_path / "out"),
        max_steps=4, save_steps=4, use_lora=True, lora_encoder=True, lora_r=4,
    )  # fmt: skip
    checkpoint = load_file(str(next(Path(out).glob("checkpoint-*")) / "model.safetensors"))
    frozen = {k: v for k, v in bert.state_dict().items() if k.endswith("query.weight")}
    for name, tensor in frozen.items():  # adapted layers keep their pretrained weights; the adapters moved
        assert torch.equal(checkpoint[f"encoder.base_model.model.backbone.{name[:-7]}.base_layer.weight"], tensor)
    assert any("encoder." in k and "lora_B" in k and checkpoint[k].abs().sum() > 0 for k in checkpoint)
    saved = RegisterEncoderModel.from_pretrained(Path(out) / "encoder").state_dict()  # merged, loads as a plain model
    base = RegisterEncoderModel.from_backbone(str(tmp_path / "bert"), num_registers=4)
    restored = PeftModel.from_pretrained(base, Path(out) / "encoder_adapter").merge_and_unload().state_dict()
    for name, tensor in saved.items():
        assert torch.allclose(restored[name], tensor, atol=1e-6), name


def test_resume_skips_a_checkpoint_whose_writing_was_interrupted(tmp_path, caplog):
    from crocodil_hf.training.stages.common import last_complete_checkpoint

    for step, files in ((10, {"model.safetensors": "x", "trainer_state.json": "{}"}), (20, {"model.safetensors": "x"}),
                        (30, {"model.safetensors": "x", "trainer_state.json": '{"global_st'})):  # fmt: skip
        (tmp_path / f"checkpoint-{step}").mkdir()
        for name, text in files.items():
            (tmp_path / f"checkpoint-{step}" / name).write_text(text)
    (tmp_path / "checkpoint-x").mkdir()
    assert last_complete_checkpoint(tmp_path) == str(tmp_path / "checkpoint-10")
    assert "skipping incomplete checkpoint" in caplog.text
    assert last_complete_checkpoint(tmp_path / "nothing") is None


def test_a_second_run_into_a_directory_in_use_stops_before_any_work(workspace, tmp_path):
    from crocodil_hf.training.run import output_lock

    model_args, data_args, args = parse_stage_arguments(
        stage_args(workspace, "locked", model_config=TINY_LLADA, output_dir=str(tmp_path / "busy"), max_steps=2)
    )
    with output_lock(args):  # a first run holds the directory
        with pytest.raises(ValueError, match="in use by another `crocodil train` run"):
            run_stage("mdm", model_args, data_args, args)
        assert not list((tmp_path / "busy").glob("checkpoint-*"))
    assert run_stage("mdm", model_args, data_args, args) == str(tmp_path / "busy")  # free again once it ended
    assert not (tmp_path / "busy" / ".crocodil-train.lock").exists()


# ---------------------------------------------------------------- faults: a full disk, a kill mid-save, a stale lock


def _disk_full(*args, **kwargs):
    import errno

    raise OSError(errno.ENOSPC, "No space left on device", "model.safetensors")


def test_a_full_disk_while_checkpointing_leaves_no_partial_checkpoint_and_the_rerun_matches(
    workspace, tmp_path, capsys, monkeypatch
):
    from crocodil_hf.cli import main
    from crocodil_hf.training.trainers import CrocodilTrainer

    values = dict(model_config=TINY_LLADA, max_steps=20, save_steps=10, save_total_limit=None)
    reference = run(workspace, "mdm", "disk-ref", output_dir=str(tmp_path / "ref"), **values)
    config = stage_args(workspace, "disk", output_dir=str(tmp_path / "out"), **values)
    saves = []
    original = CrocodilTrainer._save_rng_state

    def second_save_fails(self, output_dir):
        saves.append(output_dir)
        if len(saves) == 2:
            _disk_full()
        return original(self, output_dir)

    monkeypatch.setattr(CrocodilTrainer, "_save_rng_state", second_save_fails)
    assert main(["train", "mdm", "--config", config]) == 2
    err = capsys.readouterr().err
    assert "no space left on device" in err and "Traceback" not in err
    out = tmp_path / "out"
    assert (out / "checkpoint-10" / "trainer_state.json").exists()
    assert not (out / "checkpoint-20").exists() and not list((out / ".staging").glob("*")), "partial checkpoint"
    assert not (out / "training_complete.json").exists()

    monkeypatch.setattr(CrocodilTrainer, "_save_rng_state", original)  # space freed
    (out / ".staging" / "checkpoint-20").mkdir(parents=True, exist_ok=True)  # as a kill mid-save would leave it
    (out / ".staging" / "checkpoint-20" / "optimizer.pt").write_text("partial")
    (out / ".crocodil-train.lock").write_text("pid 999999")  # a stale lock of a dead process
    assert main(["train", "mdm", "--config", config]) == 0
    assert not (out / ".staging").exists() and not (out / ".crocodil-train.lock").exists()
    final, expected = load_file(str(out / "model.safetensors")), load_file(str(Path(reference) / "model.safetensors"))
    for name in expected:
        assert torch.allclose(final[name], expected[name], atol=1e-6), name


def test_a_full_disk_at_the_final_save_removes_the_partial_model_and_the_rerun_finishes(
    workspace, tmp_path, capsys, monkeypatch
):
    from crocodil_hf.cli import main
    from crocodil_hf.training.stages import common

    config = stage_args(
        workspace, "final", output_dir=str(tmp_path / "out"), model_config=TINY_LLADA, max_steps=4, save_steps=4
    )
    original = common._save_and_verify

    def writes_then_fills_the_disk(component, weights, target, adapter_dir):
        original(component, weights, target, adapter_dir)  # the files are on disk...
        _disk_full()  # ...when the disk fills up

    monkeypatch.setattr(common, "_save_and_verify", writes_then_fills_the_disk)
    assert main(["train", "mdm", "--config", config]) == 2
    assert "no space left on device" in capsys.readouterr().err
    out = tmp_path / "out"
    assert not (out / "model.safetensors").exists() and not (out / "config.json").exists()
    assert not (out / "training_complete.json").exists() and (out / "checkpoint-4" / "trainer_state.json").exists()

    monkeypatch.setattr(common, "_save_and_verify", original)
    assert main(["train", "mdm", "--config", config]) == 0
    assert (out / "training_complete.json").exists()
    from crocodil_hf import LLaDAModelLM

    assert LLaDAModelLM.from_pretrained(out) is not None


# ---------------------------------------------------------------- the GPU recipe


GPU_RECIPE = ("mdm", "autoencoder", "registers", "prior", "conditional-prior")


def test_gpu_recipe_configs_parse_and_size_a_50_to_100m_demasker():
    """`gpu-python-small/*` parse (bf16 switched off: this machine has no GPU) and describe a ~50–100 M parameter
    demasker, built on the meta device."""
    from crocodil_hf import LLaDAConfig, LLaDAModelLM

    parsed = {stage: parse_stage_arguments(f"gpu-python-small/{stage}", ["--bf16", "false"]) for stage in GPU_RECIPE}
    model_args, data_args, args = parsed["mdm"]
    assert data_args.max_length == 129 and args.max_steps > 0
    fields = {**model_args.model_config, "vocab_size": 4096, "embedding_size": 4096, "mask_token_id": 4095}
    with torch.device("meta"):
        count = sum(p.numel() for p in LLaDAModelLM(LLaDAConfig(**fields)).parameters())
    assert 50e6 <= count <= 100e6, count
    assert parsed["autoencoder"][0].num_registers == 32
    assert all(Path(parsed[s][2].output_dir).parts[:2] == ("runs", "gpu-python-small") for s in GPU_RECIPE)


def test_gpu_training_script_runs_its_whole_chain_on_cpu_at_smoke_sizes(tmp_path):
    """`SMOKE=1 bash scripts/train_gpu.sh`: the gpu-python-small configs through every stage with tiny overrides,
    then assembly and generation; without SMOKE and without a GPU the script refuses at once."""
    script = Path(__file__).parents[1] / "scripts" / "train_gpu.sh"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}", "OMP_NUM_THREADS": "1"}
    result = subprocess.run(
        ["bash", str(script), str(tmp_path / "run")], env={**env, "SMOKE": "1"}, capture_output=True, text=True,
        timeout=900,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    for stage in GPU_RECIPE:
        record = json.loads((tmp_path / "run" / stage / "training_complete.json").read_text())
        assert record["stage"] == stage
    assert (tmp_path / "run" / "pipeline" / "model_index.json").exists() and "NFE" in result.stdout
    refused = subprocess.run(["bash", str(script), str(tmp_path / "x")], env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "no CUDA device" in refused.stderr and not (tmp_path / "x").exists()
