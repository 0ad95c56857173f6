"""Push to and load from a real Hub-compatible server on loopback (olah + the adapter in tests/hub_server.py)."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from crocodil_hf import CrocodilPipeline
from crocodil_hf.testing import build_tiny_pipeline

pytest.importorskip("olah")

KWARGS = dict(mode="con_within_disc", num_samples=2, gen_length=16, steps=4, prior_steps=3, temperature=0.8)


def gens():
    return [torch.Generator().manual_seed(s) for s in (11, 12)]


@pytest.fixture(scope="module")
def hub():
    from hub_server import HubServer

    server = HubServer(port=int(os.environ["CROCODIL_TEST_HUB_PORT"])).start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def pushed(hub):
    """Two versions of a pipeline pushed to org/crocodil-test; returns (sha_v1, outputs_v1, outputs_v2)."""
    from huggingface_hub import HfApi

    api = HfApi()
    v1 = build_tiny_pipeline(seed=0)
    v1.set_progress_bar_config(disable=True)
    v1.push_to_hub("org/crocodil-test")
    sha_v1 = api.model_info("org/crocodil-test").sha
    v2 = build_tiny_pipeline(seed=1)
    v2.set_progress_bar_config(disable=True)
    v2.push_to_hub("org/crocodil-test", commit_message="v2")
    return sha_v1, v1(generator=gens(), **KWARGS).sequences, v2(generator=gens(), **KWARGS).sequences


def test_push_then_from_pretrained_gives_identical_outputs(pushed):
    _, _, expected = pushed
    loaded = CrocodilPipeline.from_pretrained("org/crocodil-test")
    loaded.set_progress_bar_config(disable=True)
    assert torch.equal(loaded(generator=gens(), **KWARGS).sequences, expected)


def test_pinned_revision_loads_the_old_version_after_a_new_push(pushed):
    sha_v1, expected_v1, expected_v2 = pushed
    old = CrocodilPipeline.from_pretrained("org/crocodil-test", revision=sha_v1)
    old.set_progress_bar_config(disable=True)
    sequences = old(generator=gens(), **KWARGS).sequences
    assert torch.equal(sequences, expected_v1) and not torch.equal(sequences, expected_v2)


def load_components_where_crocodil_hf_cannot_be_imported(repo_id: str, tmp_path) -> str:
    """Load the demasker and encoder of a pushed pipeline with `trust_remote_code` in a fresh process that cannot
    import crocodil_hf (nothing cached: everything from the server); returns its stdout."""
    script = textwrap.dedent(
        f"""
        import sys
        class Block:
            def find_spec(self, name, path=None, target=None):
                if name == "crocodil_hf" or name.startswith("crocodil_hf."):
                    raise ImportError("blocked")
        sys.meta_path.insert(0, Block())
        import torch
        from transformers import AutoModel
        for sub in ("demasker", "encoder"):
            model = AutoModel.from_pretrained({repo_id!r}, subfolder=sub, trust_remote_code=True)
            assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
            print("loaded", sub, type(model).__name__)
        assert not any(m.startswith("crocodil_hf") for m in sys.modules)
        """
    )
    env = {**os.environ, "HF_HOME": str(tmp_path / "fresh-home")}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout


def test_components_load_alone_with_remote_code_where_crocodil_hf_cannot_be_imported(pushed, tmp_path):
    stdout = load_components_where_crocodil_hf_cannot_be_imported("org/crocodil-test", tmp_path)
    assert "loaded demasker GuidedLLaDAForMaskedLM" in stdout
    assert "loaded encoder RegisterEncoderModel" in stdout


def test_model_card_is_pushed_with_its_eval_results(hub):
    from huggingface_hub import ModelCard

    from crocodil_hf.evaluation.model_card import build_model_card

    sweep = {
        "scorer": "test-scorer",
        "config": {"gen_length": 16, "num_samples": 2},
        "points": [
            {
                "mode": "mdm",
                "block_length": 16,
                "steps": 4,
                "nfe": {"total": 4.0},
                "metrics": {"gen_ppl": 12.5, "entropy": 3.1, "mauve": 0.4},
            }
        ],
    }
    pipe = build_tiny_pipeline()
    pipe.push_to_hub("org/crocodil-card")
    build_model_card(sweep, repo_id="org/crocodil-card").push_to_hub("org/crocodil-card")
    card = ModelCard.load("org/crocodil-card")
    assert {(r.metric_type, r.metric_value) for r in card.data.eval_results} == {
        ("gen_ppl", 12.5),
        ("entropy", 3.1),
        ("mauve", 0.4),
    }
    assert card.data.library_name == "crocodil_hf"


def test_missing_repo_and_missing_revision_raise_the_hubs_own_errors(pushed):
    from huggingface_hub import hf_hub_download
    from huggingface_hub.errors import EntryNotFoundError, RepositoryNotFoundError, RevisionNotFoundError

    with pytest.raises(RepositoryNotFoundError):
        hf_hub_download("org/does-not-exist", "model_index.json")
    with pytest.raises(RevisionNotFoundError):
        hf_hub_download("org/crocodil-test", "model_index.json", revision="no-such-branch")
    with pytest.raises(EntryNotFoundError):
        hf_hub_download("org/crocodil-test", "no-such-file.json")
    with pytest.raises((RepositoryNotFoundError, OSError)):
        CrocodilPipeline.from_pretrained("org/does-not-exist")


def test_crocodil_push_cli_pushes_a_stage_output_with_a_card_to_a_branch(hub, tmp_path, capsys):
    from huggingface_hub import HfApi, ModelCard

    from crocodil_hf.cli import main

    stage = tmp_path / "prior"
    build_tiny_pipeline().prior.save_pretrained(stage)
    (stage / "training_complete.json").write_text('{"stage": "prior", "metrics": {"train_loss": 0.5}}')
    assert main(["push", str(stage), "org/crocodil-prior", "--revision", "dev", "--commit-message", "prior v1"]) == 0
    assert "revision dev" in capsys.readouterr().out
    files = HfApi().list_repo_files("org/crocodil-prior", revision="dev")
    assert {"config.json", "diffusion_pytorch_model.safetensors", "README.md"} <= set(files)
    from huggingface_hub import hf_hub_download

    card = ModelCard.load(hf_hub_download("org/crocodil-prior", "README.md", revision="dev"))
    assert "train_loss" in card.text
    assert main(["push", str(tmp_path / "missing"), "org/x"]) == 2


def test_crocodil_push_of_the_shipped_pipeline_writes_remote_code_equal_to_the_package_source(hub, tmp_path):
    import shutil

    from huggingface_hub import HfApi, hf_hub_download

    from crocodil_hf.cli import main
    from crocodil_hf.pipelines.remote_code import MODELING_DIR
    from crocodil_hf.utils.locate import SHIPPED_DIR

    shipped = tmp_path / "shipped"
    shutil.copytree(SHIPPED_DIR / "crocodil-python-tiny", shipped)
    assert not list(shipped.rglob("*.py"))  # the shipped pipeline holds no code
    assert main(["push", str(shipped), "org/crocodil-shipped"]) == 0
    pushed = [f for f in HfApi().list_repo_files("org/crocodil-shipped") if f.endswith(".py")]
    assert {"demasker/modeling_guided_llada.py", "encoder/modeling_register_encoder.py", "modeling_llada.py"} <= set(
        pushed
    )
    for name in [n for n in pushed if Path(n).name.startswith(("modeling_", "configuration_"))]:
        downloaded = hf_hub_download("org/crocodil-shipped", name, cache_dir=tmp_path / "cache")
        assert open(downloaded, "rb").read() == (MODELING_DIR / name.split("/")[-1]).read_bytes(), name
    # the pipeline's own code: tests/test_remote_pipeline.py
    stdout = load_components_where_crocodil_hf_cannot_be_imported("org/crocodil-shipped", tmp_path)
    assert "loaded demasker GuidedLLaDAForMaskedLM" in stdout and "loaded encoder RegisterEncoderModel" in stdout
