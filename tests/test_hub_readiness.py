"""Each transformers model saves with self-contained remote code and loads through the Auto classes."""

import json
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoConfig, AutoModel

from conftest import VOCAB, tiny_llada_kwargs, tiny_qwen3_backbone
from crocodil_hf import (
    GuidedLLaDAConfig,
    GuidedLLaDAForMaskedLM,
    LLaDAConfig,
    LLaDAModelLM,
    RegisterEncoderConfig,
    RegisterEncoderModel,
)


def build(kind: str):
    torch.manual_seed(0)
    if kind == "llada":
        return LLaDAModelLM(LLaDAConfig(**tiny_llada_kwargs(n_kv_heads=2)))
    if kind == "guided":
        return GuidedLLaDAForMaskedLM(GuidedLLaDAConfig(**tiny_llada_kwargs(), num_registers=4, register_dim=32))
    if kind == "encoder-qwen3":
        return RegisterEncoderModel(RegisterEncoderConfig(backbone_config=tiny_qwen3_backbone(), num_registers=4))
    backbone = {"model_type": "llada", **tiny_llada_kwargs(d_model=32)}
    return RegisterEncoderModel(RegisterEncoderConfig(backbone_config=backbone, num_registers=4))


def forward(model, ids):
    if isinstance(model, RegisterEncoderModel):
        return model(ids).registers
    return model(ids).logits


KINDS = ["llada", "guided", "encoder-qwen3", "encoder-llada"]


@pytest.mark.parametrize("kind", KINDS)
def test_save_writes_auto_map_and_copies_modeling_files(tmp_path, kind):
    build(kind).save_pretrained(tmp_path)
    config = json.loads((tmp_path / "config.json").read_text())
    assert set(config["auto_map"]) == {"AutoConfig", "AutoModel"}
    for reference in config["auto_map"].values():
        assert (tmp_path / (reference.split(".")[0] + ".py")).exists()
    assert (tmp_path / "model.safetensors").exists()
    assert not list(tmp_path.glob("*.bin"))


@pytest.mark.parametrize("kind", KINDS)
def test_auto_classes_load_local_code_without_trust_remote_code(tmp_path, kind):
    model = build(kind).eval()
    model.save_pretrained(tmp_path)
    config = AutoConfig.from_pretrained(tmp_path)
    loaded = AutoModel.from_pretrained(tmp_path).eval()
    assert type(config) is type(model.config) and type(loaded) is type(model)
    ids = torch.randint(3, VOCAB - 1, (2, 6))
    with torch.no_grad():
        assert torch.equal(forward(model, ids), forward(loaded, ids))


def test_remote_code_round_trip_in_a_process_that_cannot_import_crocodil_hf(tmp_path):
    ids = torch.randint(3, VOCAB - 1, (2, 6), generator=torch.Generator().manual_seed(0))
    expected = {}
    for kind in KINDS:
        model = build(kind).eval()
        model.save_pretrained(tmp_path / kind)
        with torch.no_grad():
            expected[kind] = forward(model, ids)
        torch.save(expected[kind], tmp_path / f"{kind}.expected.pt")
    torch.save(ids, tmp_path / "ids.pt")
    script = textwrap.dedent(
        f"""
        import sys
        class BlockCrocodil:
            def find_spec(self, name, path=None, target=None):
                if name == "crocodil_hf" or name.startswith("crocodil_hf."):
                    raise ImportError("crocodil_hf must not be importable here")
        sys.meta_path.insert(0, BlockCrocodil())
        import torch
        from transformers import AutoConfig, AutoModel
        root = {str(tmp_path)!r}
        ids = torch.load(root + "/ids.pt")
        for kind in {KINDS!r}:
            AutoConfig.from_pretrained(root + "/" + kind, trust_remote_code=True)
            model = AutoModel.from_pretrained(root + "/" + kind, trust_remote_code=True).eval()
            assert type(model).__module__.startswith("transformers_modules"), type(model).__module__
            with torch.no_grad():
                out = model(ids)
            out = out.registers if hasattr(out, "registers") else out.logits
            assert torch.equal(out, torch.load(root + "/" + kind + ".expected.pt")), kind
            print("ok", kind, type(model).__name__)
        assert not any(name.startswith("crocodil_hf") for name in sys.modules)
        """
    )
    env = {"HF_HUB_OFFLINE": "1", "PATH": "/usr/bin:/bin", "HF_HOME": str(tmp_path / "hf_home")}
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("ok ") == len(KINDS)


@pytest.mark.parametrize("kind", ["llada", "encoder-qwen3"])
def test_loading_a_checkpoint_with_missing_weights_raises(tmp_path, kind):
    from safetensors.torch import load_file, save_file

    model = build(kind)
    model.save_pretrained(tmp_path)
    weights = load_file(str(tmp_path / "model.safetensors"))
    dropped = sorted(weights)[-1]
    del weights[dropped]
    save_file(weights, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="missing"):
        type(model).from_pretrained(tmp_path)
    with pytest.raises(ValueError, match="missing"):
        AutoModel.from_pretrained(tmp_path)
    loose = type(model).from_pretrained(tmp_path, strict=False)  # explicit opt-out initialises instead
    assert isinstance(loose, type(model))
