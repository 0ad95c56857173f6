"""Guided demasker f_θ(x_t, z): prefix layout, mixed k, two-axis RoPE, loading from a base LLaDA."""

import pytest
import torch

from conftest import MASK_ID, VOCAB, tiny_llada_kwargs
from crocodil_hf import GuidedLLaDAConfig, GuidedLLaDAForMaskedLM, LLaDAConfig, LLaDAModelLM


@pytest.fixture
def model(guided_config):
    torch.manual_seed(0)
    return GuidedLLaDAForMaskedLM(guided_config).eval()


def inputs(batch=2, n=9, seed=0):
    g = torch.Generator().manual_seed(seed)
    ids = torch.randint(0, VOCAB - 1, (batch, n), generator=g)
    ids[:, ::2] = MASK_ID
    z = torch.randn(batch, 6, 32, generator=g)
    return ids, z


def test_prefix_off_equals_base_llada_exactly(tmp_path, model):
    ids, _ = inputs()
    model.save_pretrained(tmp_path)
    base = LLaDAModelLM(LLaDAConfig(**tiny_llada_kwargs())).eval()
    base.model.load_state_dict(model.model.state_dict())
    with torch.no_grad():
        assert torch.equal(model(ids).logits, base(ids).logits)


def test_logits_cover_text_positions_only(model):
    ids, z = inputs(n=7)
    out = model(ids, registers=z, num_registers=3)
    assert out.logits.shape == (2, 7, 112)
    assert out.num_registers.tolist() == [3, 3]


def test_logits_to_keep_runs_the_head_on_those_positions_only(model):
    ids, z = inputs(n=7)
    with torch.no_grad():
        full = model(ids, registers=z, num_registers=3).logits
        block = model(ids, registers=z, num_registers=3, logits_to_keep=torch.arange(2, 5)).logits
        last = model(ids, logits_to_keep=2).logits
        base = model(ids).logits
    assert block.shape == (2, 3, 112)
    torch.testing.assert_close(block, full[:, 2:5])
    torch.testing.assert_close(last, base[:, -2:])
    keep = ids == MASK_ID
    with torch.no_grad():
        packed = model(ids, registers=z, num_registers=3, logits_to_keep=keep).logits
    torch.testing.assert_close(packed, full[keep])
    with pytest.raises(ValueError, match="logits_to_keep"):
        model(ids, labels=ids, logits_to_keep=2)
    with pytest.raises(ValueError, match="logits_to_keep"):
        model(ids, logits_to_keep=keep[:, :3])


def test_registers_change_the_prediction(model):
    ids, z = inputs()
    with torch.no_grad():
        a = model(ids, registers=z).logits
        b = model(ids, registers=-z).logits
        plain = model(ids).logits
    assert not torch.allclose(a, b, atol=1e-4)
    assert not torch.allclose(a, plain, atol=1e-4)


def test_mixed_k_batch_equals_each_example_alone(model):
    ids, z = inputs(batch=3)
    k = torch.tensor([1, 6, 3])
    with torch.no_grad():
        batch = model(ids, registers=z, num_registers=k).logits
        for b in range(3):
            alone = model(ids[b : b + 1], registers=z[b : b + 1, : k[b]]).logits
            assert torch.allclose(batch[b], alone[0], atol=1e-5), b


def test_registers_beyond_k_are_invisible(model):
    ids, z = inputs()
    changed = z.clone()
    changed[:, 2:] = torch.randn_like(changed[:, 2:])
    with torch.no_grad():
        assert torch.equal(
            model(ids, registers=z, num_registers=2).logits, model(ids, registers=changed, num_registers=2).logits
        )


def test_text_padding_does_not_change_real_tokens(model):
    ids, z = inputs(n=10)
    mask = torch.ones(2, 10, dtype=torch.long)
    mask[1, 6:] = 0
    with torch.no_grad():
        batch = model(ids, attention_mask=mask, registers=z, num_registers=4).logits
        alone = model(ids[1:, :6], registers=z[1:], num_registers=4).logits
    assert torch.allclose(batch[1, :6], alone[0], atol=1e-5)


def test_two_axis_rope_keeps_text_on_global_positions_and_prefix_on_local_axis(model):
    k = torch.tensor([2, 4])
    global_pos, local, valid = model.prefix_positions(k, prefix_len=6)
    assert local[0].tolist()[:3] == [0, 1, 2] and local[0, -1] == 3 and local[1, -1] == 5
    assert global_pos[0, 0] == -4 and global_pos[0, -1] == -1 and global_pos[1, 0] == -6
    assert valid[0].tolist() == [True, True, True, False, False, True]
    text = torch.arange(5).expand(2, 5)
    cos, _ = model.two_axis_rope(text, global_pos, local)
    base_cos, _ = model.model.rotary_emb(text)
    assert torch.equal(cos[:, 6:], base_cos)  # text: standard positions on every pair
    r, half = model.config.prefix_rope_pairs, model.config.head_dim // 2
    local_cos, _ = model.model.rotary_emb(local)
    global_cos, _ = model.model.rotary_emb(global_pos)
    assert torch.equal(cos[:, :6, :r], local_cos[..., :r])  # reserved pairs: prefix-local index
    assert torch.equal(cos[:, :6, r:half], global_cos[..., r:half])  # the rest: global axis


def test_from_base_loads_every_base_weight_and_initialises_only_new_ones(tmp_path):
    torch.manual_seed(1)
    base = LLaDAModelLM(LLaDAConfig(**tiny_llada_kwargs()))
    base.save_pretrained(tmp_path)
    guided = GuidedLLaDAForMaskedLM.from_base(str(tmp_path), num_registers=4, register_dim=16).eval()
    assert guided.config.num_registers == 4 and guided.config.register_dim == 16
    for name, tensor in base.state_dict().items():
        assert torch.equal(guided.state_dict()[name], tensor), name
    assert guided.register_proj.weight.abs().sum() > 0 and guided.prefix_start.abs().sum() > 0
    ids = torch.randint(0, VOCAB, (1, 6))
    with torch.no_grad():
        assert torch.equal(guided(ids).logits, base.eval()(ids).logits)


def test_from_base_rejects_incompatible_checkpoint(tmp_path):
    base = LLaDAModelLM(LLaDAConfig(**tiny_llada_kwargs()))
    base.save_pretrained(tmp_path)
    from safetensors.torch import load_file, save_file

    sd = load_file(str(tmp_path / "model.safetensors"))
    del sd["model.transformer.blocks.1.q_proj.weight"]
    save_file(sd, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ValueError, match="q_proj"):
        GuidedLLaDAForMaskedLM.from_base(str(tmp_path), num_registers=4, register_dim=16)


def test_gradients_flow_into_projection_and_boundaries(model):
    ids, z = inputs()
    model.train()
    out = model(ids, registers=z, num_registers=torch.tensor([2, 5]), labels=torch.where(ids == MASK_ID, 3, -100))
    out.loss.backward()
    assert model.register_proj.weight.grad.abs().sum() > 0
    assert model.prefix_start.grad.abs().sum() > 0 and model.prefix_end.grad.abs().sum() > 0


def test_bad_inputs_raise_naming_the_argument(model):
    ids, z = inputs()
    with pytest.raises(ValueError, match="num_registers"):
        model(ids, registers=z, num_registers=7)
    with pytest.raises(ValueError, match="num_registers"):
        model(ids, registers=z, num_registers=0)
    with pytest.raises(ValueError, match="K=6"):
        model(ids, registers=torch.randn(2, 8, 32))
    with pytest.raises(ValueError, match="registers"):
        model(ids, registers=torch.randn(2, 3, 31))
    with pytest.raises(ValueError, match="num_registers"):
        model(ids, num_registers=2)
    with pytest.raises(ValueError, match="num_registers"):
        model(ids, registers=z, num_registers=torch.tensor([1, 2, 3]))


@pytest.mark.parametrize(("field", "value"), [("num_registers", 0), ("register_dim", -1), ("prefix_rope_pairs", 8)])
def test_bad_guided_config_raises(field, value):
    with pytest.raises(ValueError, match=field):
        GuidedLLaDAConfig(**tiny_llada_kwargs(), **{field: value})
