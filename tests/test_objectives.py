"""Training objectives (loss-returning modules): per-row noise makes the loss independent of how a batch is split,
activation checkpointing changes neither loss nor gradients, FSDP wrap units come from the components."""

import pytest
import torch

from conftest import tiny_llada_kwargs
from crocodil_hf import GuidedLLaDAConfig, GuidedLLaDAForMaskedLM, LLaDAConfig, LLaDAModelLM
from crocodil_hf.modeling.configuration_crocodil import RegisterEncoderConfig
from crocodil_hf.modeling.modeling_register_encoder import RegisterEncoderModel
from crocodil_hf.modeling.modeling_register_prior import RegisterPriorTransformer
from crocodil_hf.training.losses import RowGenerators, forward_mask
from crocodil_hf.training.objectives import AutoencoderObjective, MaskedDiffusionObjective, RegisterPriorObjective

LLADA = tiny_llada_kwargs(
    d_model=32, n_heads=2, n_kv_heads=2, mlp_hidden_size=64, pad_token_id=96
)  # a pad of its own, as real tokenizers have
BERT = {
    "model_type": "bert", "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2,
    "intermediate_size": 64, "vocab_size": 64, "hidden_dropout_prob": 0.0, "attention_probs_dropout_prob": 0.0,
}  # fmt: skip


def build(kind: str):
    """An objective of `kind`; a `-prompt` suffix switches on prompt-aware training (half the rows prompted, half of
    those with a suffix)."""
    if kind.endswith("-prompt"):
        objective = build(kind.removesuffix("-prompt"))
        objective.prompt_prob, objective.suffix_prob = 0.5, 0.5
        return objective
    torch.manual_seed(0)
    encoder = RegisterEncoderModel(
        RegisterEncoderConfig(
            backbone_config=BERT if kind == "autoencoder-bert" else {"model_type": "llada", **LLADA}, num_registers=4
        )
    )
    if kind == "mdm":
        return MaskedDiffusionObjective(LLaDAModelLM(LLaDAConfig(**LLADA)))
    if kind.startswith("autoencoder"):
        demasker = GuidedLLaDAForMaskedLM(
            GuidedLLaDAConfig(**LLADA, num_registers=4, register_dim=32, prefix_rope_pairs=2)
        )
        return AutoencoderObjective(encoder, demasker)
    prior = RegisterPriorTransformer(
        num_registers=4,
        register_dim=32,
        hidden_size=32,
        num_layers=2,
        num_attention_heads=2,
        cross_attention_dim=32 if kind == "conditional-prior" else None,
    )
    return RegisterPriorObjective(prior, encoder if kind == "conditional-prior" else None)


def inputs(kind: str, rows=range(8)) -> dict:
    generator = torch.Generator().manual_seed(1)
    ids = torch.randint(2, 63, (8, 12), generator=generator)
    ids[:, 0] = 0
    registers = torch.randn(8, 4, 32, generator=generator)
    rows = list(rows)
    seeds = torch.tensor([RowGenerators.row_seed(0, 5, r) for r in rows])
    batch = {"input_ids": ids[rows], "encoder_attention_mask": torch.ones(len(rows), 12, dtype=torch.long)}
    if kind.endswith("prior"):
        batch = {"registers": registers[rows], **(batch if kind == "conditional-prior" else {})}
    return {**batch, "row_seeds": seeds}


KINDS = ["mdm", "autoencoder", "autoencoder-bert", "prior", "conditional-prior"]
PROMPTED = ["mdm-prompt", "autoencoder-prompt", "conditional-prior-prompt"]


@pytest.mark.parametrize("kind", KINDS + PROMPTED)
def test_loss_of_a_batch_equals_the_mean_over_its_halves(kind):
    """What makes DDP equal to one process: row b's noise depends on its global row, not on the split."""
    objective = build(kind).train()
    kind = kind.removesuffix("-prompt")
    full = objective(**inputs(kind))["loss"]
    halves = [objective(**inputs(kind, rows))["loss"] for rows in (range(4), range(4, 8))]
    assert full.item() == pytest.approx(((halves[0] + halves[1]) / 2).item(), rel=1e-5)


def test_row_generators_draw_each_row_from_its_own_seed():
    both = RowGenerators.for_rows(seed=0, step=3, first_row=0, num_rows=2)
    second = RowGenerators.for_rows(seed=0, step=3, first_row=1, num_rows=1)
    ids = torch.ones(2, 50, dtype=torch.long)
    _, masked_both, p_both = forward_mask(ids, 7, generator=both)
    _, masked_second, p_second = forward_mask(ids[:1], 7, generator=second)
    assert torch.equal(masked_both[1:], masked_second) and torch.equal(p_both[1:], p_second)
    other_step = RowGenerators.for_rows(seed=0, step=4, first_row=1, num_rows=1)
    assert not torch.equal(forward_mask(ids[:1], 7, generator=other_step)[1], masked_second)


@pytest.mark.parametrize("kind", KINDS)
def test_activation_checkpointing_changes_neither_loss_nor_gradients(kind):
    objective = build(kind).train()

    def step():
        objective.zero_grad()
        loss = objective(**inputs(kind))["loss"]
        loss.backward()
        return loss.item(), {n: p.grad.clone() for n, p in objective.named_parameters() if p.grad is not None}

    plain_loss, plain_grads = step()
    objective.gradient_checkpointing_enable()
    trained = [m for c in objective.components().values() for m in c.modules()]
    assert any(getattr(m, "gradient_checkpointing", False) for m in trained), "checkpointing was not switched on"
    ckpt_loss, ckpt_grads = step()
    assert ckpt_loss == pytest.approx(plain_loss, abs=1e-6)
    assert plain_grads.keys() == ckpt_grads.keys()
    for name, grad in plain_grads.items():
        assert torch.allclose(grad, ckpt_grads[name], atol=1e-6), name


def test_objectives_expose_their_components_wrap_units():
    assert build("mdm")._no_split_modules == ["LLaDABlock"]
    assert set(build("autoencoder-bert")._no_split_modules) >= {"LLaDABlock", "BertLayer"}
    assert build("prior")._no_split_modules == ["RegisterPriorBlock"]


def test_paper_scale_models_build_on_meta_with_official_weight_names():
    """LLaDA-8B-Base sizes (the official config) → an 8.0 B demasker whose names are the official checkpoint's; the
    guided demasker of paper/autoencoder (K = 128, d = 1024 for Qwen3-Embedding-0.6B) and the ~0.4 B prior of
    paper/prior, all on the meta device (no memory)."""
    from crocodil_hf.schedulers.scheduling_register_prior import block_timestep_offsets
    from crocodil_hf.training.arguments import parse_stage_arguments

    official = dict(
        d_model=4096, n_heads=32, n_kv_heads=32, n_layers=32, mlp_hidden_size=12288, vocab_size=126464,
        embedding_size=126464, max_sequence_length=4096, rope_theta=500000.0, mask_token_id=126336,
        eos_token_id=126081, pad_token_id=126081, bos_token_id=126080, weight_tying=False,
    )  # fmt: skip
    model_args, _, _ = parse_stage_arguments("paper/autoencoder", ["--bf16", "false"])
    prior_args, _, _ = parse_stage_arguments("paper/prior", ["--bf16", "false"])
    with torch.device("meta"):
        llada = LLaDAModelLM(LLaDAConfig(**official))
        guided = GuidedLLaDAForMaskedLM(
            GuidedLLaDAConfig(
                **official,
                num_registers=model_args.num_registers,
                register_dim=1024,
                prefix_rope_pairs=model_args.prefix_rope_pairs,
            )
        )
        prior = RegisterPriorTransformer(
            num_registers=128,
            register_dim=1024,
            timestep_offsets=block_timestep_offsets(128, prior_args.max_timestep_offset),
            **prior_args.prior_config,
        )
    count = sum(p.numel() for p in llada.parameters())
    assert 7.9e9 < count < 8.1e9, count
    names = set(llada.state_dict())
    assert {
        "model.transformer.wte.weight",
        "model.transformer.ff_out.weight",
        "model.transformer.ln_f.weight",
    } <= names
    assert (
        "model.transformer.blocks.31.ff_proj.weight" in names and "model.transformer.blocks.31.q_proj.weight" in names
    )
    guided_names = set(guided.state_dict())
    assert names <= guided_names and guided_names - names == set(GuidedLLaDAForMaskedLM._new_parameter_names)
    assert 0.3e9 < sum(p.numel() for p in prior.parameters()) < 0.5e9
    assert model_args.num_registers == 128


# ---------------------------------------------------------------- prompt-aware training (App. H)


def test_prompt_spans_keep_a_prefix_and_a_suffix_visible_at_the_asked_rates():
    from crocodil_hf.training.losses import program_lengths, prompt_spans

    rows, width = 20_000, 24
    lengths = torch.randint(2, width + 1, (rows,), generator=torch.Generator().manual_seed(0))
    ids = torch.full((rows, width), 98)
    for i, n in enumerate(lengths.tolist()):
        ids[i, : n - 1] = torch.arange(n - 1) + 1  # [BOS-like] program, then EOS from n − 1 on
    ids[:, 0] = 97
    assert torch.equal(program_lengths(ids, 98), lengths)
    spans = prompt_spans(lengths, width, 0.6, 0.5, torch.Generator().manual_seed(1))
    prompted = ~spans[:, 0]
    assert prompted.float().mean().item() == pytest.approx(0.6, abs=0.015)
    assert spans[~prompted].all()  # unprompted rows may be masked anywhere (BOS is kept by forward_mask)
    starts = spans.float().argmax(dim=1)
    count = spans.sum(dim=1)
    columns = torch.arange(width)
    assert torch.equal(spans, (columns >= starts[:, None]) & (columns < (starts + count)[:, None]))
    ends = starts + count  # one contiguous maskable span [a, b) per row
    assert ((starts[prompted] >= 1) & (starts[prompted] <= lengths[prompted] - 1)).all()
    with_suffix = prompted & (ends < width)
    assert with_suffix.float().mean().item() == pytest.approx(0.3, abs=0.02)
    # the suffix keeps at least the EOS visible (unless the prompt already took the whole program)
    assert (ends[with_suffix] <= torch.maximum(lengths - 1, starts + 1)[with_suffix]).all()
    long_rows = prompted & (lengths > 12)
    assert starts[long_rows].float().std() > 2  # prompt lengths vary over the program, not a fixed cut


def test_forward_mask_masks_only_where_allowed_and_all_of_it_in_all_mask_rows():
    ids = torch.arange(1, 17).repeat(4000, 1)
    maskable = torch.arange(16) >= torch.randint(1, 16, (4000, 1), generator=torch.Generator().manual_seed(2))
    x_t, masked, p_mask = forward_mask(
        ids, 0, all_mask_prob=0.25, generator=torch.Generator().manual_seed(3), maskable=maskable
    )
    assert not (masked & ~maskable).any() and torch.equal(x_t[~masked], ids[~masked])
    full = p_mask == 1
    assert torch.equal(masked[full], maskable[full])
    # without `maskable` the draws are the same as before the option existed
    plain = forward_mask(ids, 0, all_mask_prob=0.25, generator=torch.Generator().manual_seed(3))
    assert torch.equal(plain[1] & maskable, masked)


@pytest.mark.parametrize("span_pad", [0, 3])
@pytest.mark.parametrize("kind", ["mdm", "autoencoder", "conditional-prior"])
def test_prompt_aware_objectives_keep_the_prompt_visible(kind, span_pad, monkeypatch):
    """Every prompted row: x_t (or the condition's visible tokens) equals x₀ outside its span; with `span_pad` the
    loss's x₀ is the program with EOS between span and suffix, and the rest of the program in order."""
    from crocodil_hf.training import losses as losses_module
    from crocodil_hf.training import objectives

    drawn, targets = [], []
    original_mask, original_loss = losses_module.SpanDraw.mask, losses_module.mdm_loss

    def recording(self, width):
        drawn.append(original_mask(self, width))
        return drawn[-1]

    def recording_loss(logits, input_ids, masked, p_mask):
        targets.append(input_ids)
        return original_loss(logits, input_ids, masked, p_mask)

    monkeypatch.setattr(losses_module.SpanDraw, "mask", recording)
    monkeypatch.setattr(objectives, "mdm_loss", recording_loss)
    monkeypatch.setattr(losses_module, "mdm_loss", recording_loss)
    objective = build(kind).train()
    objective.prompt_prob, objective.suffix_prob, objective.span_pad = 1.0, 0.5, span_pad
    seen = {}
    if kind == "conditional-prior":
        module = objective.encoder
        module.register_forward_pre_hook(lambda m, a, kw: seen.update(kw), with_kwargs=True)
    else:
        module = objective.demasker
        module.register_forward_pre_hook(
            lambda m, a, kw: seen.update(input_ids=a[0] if a else kw["input_ids"]), with_kwargs=True
        )
    batch = inputs(kind)
    objective(**batch)
    (spans,) = drawn
    assert (~spans[:, 0]).all()  # prompt_prob = 1: every row prompted
    if kind == "conditional-prior":
        assert torch.equal(seen["visible_mask"].bool(), ~spans)  # the condition sees exactly prompt and suffix
        return
    (x0,) = targets
    x_t = seen["input_ids"]
    masked = x_t == objective.demasker.config.mask_token_id
    assert masked.any() and not (masked & ~spans).any()
    assert torch.equal(x_t[~spans], x0[~spans])
    pad = losses_module.span_pad_token(objective.demasker)
    assert pad is not None and pad != objective.demasker.config.eos_token_id  # the tokenizer's own pad, never EOS
    padded_rows = 0
    for row, given, maskable in zip(x0.tolist(), batch["input_ids"].tolist(), spans.tolist()):
        if row == given:
            continue
        padded_rows += 1
        # the row is the program with a run of maskable EOS inserted: dropping it gives the program back (less its tail)
        start = next(i for i, (a, b) in enumerate(zip(row, given)) if a != b)
        assert any(
            row[start : start + r] == [pad] * r
            and all(maskable[start : start + r])
            and row[start + r :] == given[start : len(given) - r]
            for r in range(1, span_pad + 1)
        )
    assert (padded_rows > 0) == (span_pad > 0)
