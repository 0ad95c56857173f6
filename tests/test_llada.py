"""Native LLaDA: official checkpoint format, equivalence with a reference forward, masks, attention backends."""

import json
import math

import pytest
import torch
from safetensors.torch import save_file

from conftest import MASK_ID, VOCAB, tiny_llada_kwargs
from crocodil_hf import LLaDAConfig, LLaDAModelLM


def official_config_json(**overrides) -> dict:
    """A config.json with every field of the official LLaDA-8B-Base file, sized down."""
    config = {
        "activation_type": "silu",
        "alibi": False,
        "alibi_bias_max": 8.0,
        "architectures": ["LLaDAModelLM"],
        "attention_dropout": 0.0,
        "attention_layer_norm": False,
        "attention_layer_norm_with_affine": True,
        "auto_map": {
            "AutoConfig": "configuration_llada.LLaDAConfig",
            "AutoModelForCausalLM": "modeling_llada.LLaDAModelLM",
            "AutoModel": "modeling_llada.LLaDAModelLM",
        },
        "bias_for_layer_norm": False,
        "block_group_size": 1,
        "block_type": "llama",
        "d_model": 64,
        "embedding_dropout": 0.0,
        "embedding_size": 112,
        "eos_token_id": 98,
        "flash_attention": False,
        "include_bias": False,
        "include_qkv_bias": False,
        "init_cutoff_factor": None,
        "init_device": "meta",
        "init_fn": "mitchell",
        "init_std": 0.02,
        "input_emb_norm": False,
        "layer_norm_type": "rms",
        "layer_norm_with_affine": True,
        "mask_token_id": MASK_ID,
        "max_sequence_length": 256,
        "mlp_hidden_size": 96,
        "mlp_ratio": 4,
        "model_type": "llada",
        "multi_query_attention": None,
        "n_heads": 4,
        "n_kv_heads": 2,
        "n_layers": 2,
        "pad_token_id": 98,
        "precision": "amp_bf16",
        "residual_dropout": 0.0,
        "rms_norm_eps": 1e-05,
        "rope": True,
        "rope_full_precision": True,
        "rope_theta": 500000.0,
        "scale_logits": False,
        "torch_dtype": "float32",
        "transformers_version": "4.46.3",
        "use_cache": False,
        "vocab_size": VOCAB,
        "weight_tying": False,
    }
    config.update(overrides)
    return config


def official_state_dict(cfg: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    d, hd = cfg["d_model"], cfg["d_model"] // cfg["n_heads"]
    kv = cfg["n_kv_heads"] * hd
    h = cfg["mlp_hidden_size"]

    def rnd(*shape, scale=0.1):
        return torch.randn(*shape, generator=g) * scale

    sd = {
        "model.transformer.wte.weight": rnd(cfg["embedding_size"], d, scale=0.5),
        "model.transformer.ln_f.weight": 1 + rnd(d),
        "model.transformer.ff_out.weight": rnd(cfg["embedding_size"], d),
    }
    for i in range(cfg["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        sd |= {
            p + "attn_norm.weight": 1 + rnd(d),
            p + "ff_norm.weight": 1 + rnd(d),
            p + "q_proj.weight": rnd(d, d),
            p + "k_proj.weight": rnd(kv, d),
            p + "v_proj.weight": rnd(kv, d),
            p + "attn_out.weight": rnd(d, d),
            p + "ff_proj.weight": rnd(h, d),
            p + "up_proj.weight": rnd(h, d),
            p + "ff_out.weight": rnd(d, h),
        }
    return sd


def reference_forward(sd: dict, cfg: dict, input_ids: torch.Tensor) -> torch.Tensor:
    """The official LLaDA forward written out functionally (OLMo-style RMSNorm, half-split RoPE, SwiGLU with
    `ff_proj` as gate, bidirectional attention, GQA by repeat_interleave, untied head)."""
    d, nh, nkv = cfg["d_model"], cfg["n_heads"], cfg["n_kv_heads"]
    hd = d // nh
    eps = cfg["rms_norm_eps"]

    def rms(x, w):
        x32 = x.float()
        return w * (x32 * torch.rsqrt(x32.pow(2).mean(-1, keepdim=True) + eps)).to(x.dtype)

    def rope(t):  # t: (B, H, T, hd)
        T = t.shape[2]
        inv = 1.0 / (cfg["rope_theta"] ** (torch.arange(0, hd, 2, dtype=torch.float) / hd))
        freqs = torch.einsum("i,j->ij", torch.arange(T, dtype=torch.float), inv)
        pos = torch.cat((freqs, freqs), dim=-1)
        x1, x2 = t.view(*t.shape[:-1], 2, hd // 2).unbind(-2)
        rot = torch.cat((-x2, x1), dim=-1)
        return t * pos.cos() + rot * pos.sin()

    x = sd["model.transformer.wte.weight"][input_ids]
    B, T, _ = x.shape
    for i in range(cfg["n_layers"]):
        p = f"model.transformer.blocks.{i}."
        xn = rms(x, sd[p + "attn_norm.weight"])
        q = (xn @ sd[p + "q_proj.weight"].T).view(B, T, nh, hd).transpose(1, 2)
        k = (xn @ sd[p + "k_proj.weight"].T).view(B, T, nkv, hd).transpose(1, 2)
        v = (xn @ sd[p + "v_proj.weight"].T).view(B, T, nkv, hd).transpose(1, 2)
        q, k = rope(q), rope(k)
        k = k.repeat_interleave(nh // nkv, dim=1)
        v = v.repeat_interleave(nh // nkv, dim=1)
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(hd), dim=-1) @ v
        x = x + att.transpose(1, 2).reshape(B, T, d) @ sd[p + "attn_out.weight"].T
        xn = rms(x, sd[p + "ff_norm.weight"])
        hidden = torch.nn.functional.silu(xn @ sd[p + "ff_proj.weight"].T) * (xn @ sd[p + "up_proj.weight"].T)
        x = x + hidden @ sd[p + "ff_out.weight"].T
    x = rms(x, sd["model.transformer.ln_f.weight"])
    return x @ sd["model.transformer.ff_out.weight"].T


@pytest.fixture
def official_dir(tmp_path):
    cfg = official_config_json()
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    sd = official_state_dict(cfg)
    save_file(sd, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    return tmp_path, cfg, sd


def test_official_checkpoint_loads_unchanged_and_matches_reference(official_dir):
    path, cfg, sd = official_dir
    model = LLaDAModelLM.from_pretrained(path).eval()
    assert model.config.n_kv_heads == 2 and model.config.rope_theta == 500000.0
    # every official weight name maps onto a parameter, with nothing left over
    assert set(model.state_dict()) == set(sd)
    ids = torch.randint(0, VOCAB, (2, 11), generator=torch.Generator().manual_seed(1))
    ids[:, 3:7] = MASK_ID
    with torch.no_grad():
        ours = model(ids).logits
        ref = reference_forward(sd, cfg, ids)
    assert ours.shape == (2, 11, cfg["embedding_size"])
    assert (ours - ref).abs().max().item() < 1e-4


def test_automodel_loads_official_directory_with_local_code(official_dir):
    from transformers import AutoModel

    path, _, _ = official_dir
    model = AutoModel.from_pretrained(path)  # crocodil_hf imported: no remote code needed
    assert isinstance(model, LLaDAModelLM)


def test_padding_does_not_change_logits_of_real_tokens(llada_config):
    model = LLaDAModelLM(llada_config).eval()
    ids = torch.randint(0, VOCAB, (2, 9), generator=torch.Generator().manual_seed(2))
    mask = torch.ones(2, 9, dtype=torch.long)
    mask[1, 6:] = 0
    padded = ids.clone()
    padded[1, 6:] = 98
    with torch.no_grad():
        batch = model(padded, attention_mask=mask).logits
        alone = model(ids[1:, :6]).logits
        full = model(ids[:1]).logits
    assert torch.allclose(batch[1, :6], alone[0], atol=1e-5)
    assert torch.allclose(batch[0], full[0], atol=1e-5)


def test_eager_and_sdpa_give_equal_outputs_with_padding(llada_config):
    model = LLaDAModelLM(llada_config).eval()
    ids = torch.randint(0, VOCAB, (2, 8), generator=torch.Generator().manual_seed(3))
    mask = torch.tensor([[1] * 8, [1] * 5 + [0] * 3])
    with torch.no_grad():
        model.set_attn_implementation("sdpa")
        sdpa = model(ids, attention_mask=mask).logits
        model.set_attn_implementation("eager")
        eager = model(ids, attention_mask=mask).logits
    assert torch.allclose(sdpa, eager, atol=1e-5)


def test_attention_is_bidirectional(llada_config):
    model = LLaDAModelLM(llada_config).eval()
    ids = torch.randint(0, VOCAB, (1, 8), generator=torch.Generator().manual_seed(4))
    changed = ids.clone()
    changed[0, -1] = (ids[0, -1] + 1) % VOCAB
    with torch.no_grad():
        first_a, first_b = model(ids).logits[0, 0], model(changed).logits[0, 0]
    assert not torch.allclose(first_a, first_b)  # position 0 sees the last token


def test_inputs_embeds_equal_input_ids(llada_config):
    model = LLaDAModelLM(llada_config).eval()
    ids = torch.randint(0, VOCAB, (2, 7))
    with torch.no_grad():
        a = model(ids).logits
        b = model(inputs_embeds=model.get_input_embeddings()(ids)).logits
    assert torch.equal(a, b)


def test_gqa_runs_with_fewer_kv_heads():
    model = LLaDAModelLM(LLaDAConfig(**tiny_llada_kwargs(n_kv_heads=1))).eval()
    assert model.model.transformer.blocks[0].k_proj.out_features == 16
    assert model(torch.randint(0, VOCAB, (1, 5))).logits.shape == (1, 5, 112)


def test_gradient_checkpointing_gives_same_gradients(llada_config):
    torch.manual_seed(0)
    model = LLaDAModelLM(llada_config)
    ids = torch.randint(0, VOCAB, (2, 8))
    labels = ids.clone()

    def grads():
        model.zero_grad()
        model(ids, labels=labels).loss.backward()
        return {n: p.grad.clone() for n, p in model.named_parameters()}

    plain = grads()
    model.gradient_checkpointing_enable()
    assert model.model.transformer.blocks[0].gradient_checkpointing
    model.train()
    ckpt = grads()
    for name in plain:
        assert torch.allclose(plain[name], ckpt[name], atol=1e-6), name


def test_from_scratch_initialisation_follows_official_mitchell_scheme(llada_config):
    torch.manual_seed(0)
    model = LLaDAModelLM(llada_config)
    d, h = llada_config.d_model, llada_config.mlp_hidden_size
    block1 = model.model.transformer.blocks[1]
    trunc = 0.9866  # std of a standard normal truncated at ±3
    expected = {
        model.model.transformer.wte.weight: 1 / math.sqrt(d),
        block1.q_proj.weight: 1 / math.sqrt(d),
        block1.attn_out.weight: 1 / math.sqrt(d) / math.sqrt(2 * 2),
        block1.ff_out.weight: 1 / math.sqrt(h) / math.sqrt(2 * 2),
        model.model.transformer.ff_out.weight: 1 / math.sqrt(d),
    }
    for weight, std in expected.items():
        assert weight.std().item() == pytest.approx(std * trunc, rel=0.1)
        assert weight.abs().max().item() <= 3 * std + 1e-6
    assert torch.equal(block1.attn_norm.weight, torch.ones(d))


def test_save_and_load_round_trip(tmp_path, llada_config):
    model = LLaDAModelLM(llada_config).eval()
    model.save_pretrained(tmp_path)
    loaded = LLaDAModelLM.from_pretrained(tmp_path).eval()
    ids = torch.randint(0, VOCAB, (1, 6))
    assert torch.equal(model(ids).logits, loaded(ids).logits)
    assert json.loads((tmp_path / "config.json").read_text())["d_model"] == 64


def test_masked_lm_loss_ignores_minus_100(llada_config):
    model = LLaDAModelLM(llada_config)
    ids = torch.randint(0, VOCAB, (1, 6))
    labels = torch.full_like(ids, -100)
    labels[0, 2] = ids[0, 2]
    out = model(ids, labels=labels)
    expected = torch.nn.functional.cross_entropy(out.logits[0, 2:3], ids[0, 2:3])
    assert torch.allclose(out.loss, expected)


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"d_model": 66}, "d_model"),
        ({"n_kv_heads": 3}, "n_heads"),
        ({"n_layers": 0}, "n_layers"),
        ({"embedding_size": 50}, "embedding_size"),
        ({"mask_token_id": 500}, "mask_token_id"),
        ({"block_type": "sequential"}, "block_type"),
        ({"rms_norm_eps": 0.0}, "rms_norm_eps"),
        ({"attention_dropout": 1.5}, "attention_dropout"),
    ],
)
def test_bad_config_values_raise_naming_the_field(overrides, field):
    with pytest.raises(ValueError, match=field):
        LLaDAConfig(**tiny_llada_kwargs(**overrides))


def test_bad_inputs_raise_before_compute(llada_config):
    model = LLaDAModelLM(llada_config)
    with pytest.raises(ValueError, match="exactly one"):
        model()
    with pytest.raises(ValueError, match="input_ids"):
        model(torch.zeros(2, 3, 4, dtype=torch.long))
    with pytest.raises(ValueError, match="inputs_embeds"):
        model(inputs_embeds=torch.zeros(1, 3, 7))
    with pytest.raises(ValueError, match="attention_mask"):
        model(torch.zeros(1, 3, dtype=torch.long), attention_mask=torch.ones(1, 4))
