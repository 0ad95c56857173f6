"""The approximate key/value cache (issue 36): a window call reads exactly the keys/values of the whole-canvas call
(model level); refilling before every call gives the uncached tokens in every mode, prompted and infill batches
included (pipeline level); one unprompted block is exact; batch = alone; bad values are refused before compute."""

import pytest
import torch

from conftest import MASK_ID, gens, tiny_llada_kwargs
from crocodil_hf import GuidedLLaDAForMaskedLM, LLaDAConfig, LLaDAModelLM
from crocodil_hf.modeling.modeling_llada import CanvasCache
from crocodil_hf.pipelines.caching import DemaskerCalls

PROMPTS = ["def add(a, b):\n", "import os\nprint(os.getcwd())\nfor i in range(10):\n"]
SUFFIXES = ["    return a\n", "\n"]


def _padded_batch(seq_len=14, pad=3):
    torch.manual_seed(0)
    ids = torch.randint(4, 90, (2, seq_len))
    ids[:, 6:11] = MASK_ID
    mask = torch.ones(2, seq_len, dtype=torch.long)
    mask[0, :pad] = 0  # row 0 is left-padded, with its own positions
    positions = (torch.arange(seq_len)[None] - torch.tensor([[pad], [0]])).clamp(min=0)
    return ids, mask, positions


@pytest.mark.parametrize("window", [(6, 11), (6, 14), (0, 3)])
def test_a_window_call_reads_the_whole_canvas_keys_and_values(window):
    """The native LLaDA: a call on a window of positions, reading the cache a whole-canvas call filled, gives that
    call's logits at those positions (padding and per-row positions included)."""
    model = LLaDAModelLM(LLaDAConfig(**tiny_llada_kwargs())).eval()
    ids, mask, positions = _padded_batch()
    reference = model(ids, attention_mask=mask, position_ids=positions).logits
    cache = CanvasCache(model.config.n_layers, ids.shape[1])
    filled = model(ids, attention_mask=mask, position_ids=positions, past_key_values=cache).logits
    assert torch.equal(filled, reference)
    where = torch.arange(*window)
    part = model(
        ids[:, where], attention_mask=mask, position_ids=positions[:, where], past_key_values=cache,
        cache_position=where,
    ).logits  # fmt: skip
    torch.testing.assert_close(part, reference[:, where], atol=1e-5, rtol=1e-5)
    stale = ids.clone()
    stale[:, 0] = 5  # a window call sees the cached keys of position 0, not the new token there
    changed = model(stale[:, where], attention_mask=mask, past_key_values=cache, cache_position=where,
                    position_ids=positions[:, where]).logits  # fmt: skip
    if 0 not in where:
        torch.testing.assert_close(changed, part)


@pytest.mark.parametrize("num_registers", [torch.tensor([1, 3]), None])
def test_a_guided_window_call_reads_the_register_prefix_from_the_cache(guided_config, num_registers):
    model = GuidedLLaDAForMaskedLM(guided_config).eval()
    ids, mask, positions = _padded_batch()
    registers = torch.randn(2, guided_config.num_registers, guided_config.register_dim)
    call = dict(registers=registers, num_registers=num_registers, attention_mask=mask)
    reference = model(ids, position_ids=positions, **call).logits
    cache = CanvasCache(model.config.n_layers, model.cache_length(ids.shape[1], registers, num_registers))
    model(ids, position_ids=positions, past_key_values=cache, **call)
    where = torch.arange(6, 11)
    part = model(ids[:, where], position_ids=positions[:, where], past_key_values=cache, cache_position=where,
                 **call).logits  # fmt: skip
    torch.testing.assert_close(part, reference[:, where], atol=1e-5, rtol=1e-5)
    # the register prefix lives in the cache: a window call reads z from there (its `registers` give k only), so
    # the pipeline must refill when z₀ changes (tested below)
    other = model(ids[:, where], position_ids=positions[:, where], past_key_values=cache, cache_position=where,
                  **{**call, "registers": torch.randn_like(registers)}).logits  # fmt: skip
    assert torch.equal(other, part)


def test_cache_misuse_is_refused_with_a_clear_error():
    model = LLaDAModelLM(LLaDAConfig(**tiny_llada_kwargs())).eval()
    ids = torch.randint(4, 90, (1, 8))
    with pytest.raises(ValueError, match="empty"):
        model(ids[:, :2], past_key_values=CanvasCache(2, 8), cache_position=torch.arange(2))
    with pytest.raises(ValueError, match="whole canvas"):
        model(ids[:, :5], past_key_values=CanvasCache(2, 8))
    with pytest.raises(ValueError, match="without `past_key_values`"):
        model(ids, cache_position=torch.arange(8))


CALLS = {
    "mdm": dict(mode="mdm"),
    "mdm, random remasking": dict(mode="mdm", remasking="random"),
    "con_then_disc": dict(mode="con_then_disc", prior_steps=3),
    "con_within_disc": dict(mode="con_within_disc", prior_steps=3, refresh_at=(0.3, 0.7)),
    "autoencode": dict(mode="autoencode", text=["def add(a, b):\n    return a + b\n", "x = 1\n"]),
}


@pytest.mark.parametrize("kv_cache", ["dual", "prefix"])
@pytest.mark.parametrize("mode", list(CALLS))
def test_refilling_before_every_call_gives_the_uncached_tokens(pipe, mode, kv_cache):
    """The invariant that proves the window calls read the right keys/values: refilled before every call, the
    cache gives the uncached path's tokens (4 blocks, sampled at temperature 1 so every logit matters)."""
    call = dict(CALLS[mode], gen_length=16, block_length=4, steps=8, temperature=1.0)
    if "text" not in call:
        call["num_samples"] = 2
    plain = pipe(generator=gens(1, 2), **call)
    checked = pipe(generator=gens(1, 2), kv_cache=kv_cache, kv_cache_refresh="step", **call)
    assert torch.equal(checked.sequences, plain.sequences)
    cached = pipe(generator=gens(1, 2), kv_cache=kv_cache, **call)
    assert cached.nfe["demasker_calls"] == plain.nfe["demasker_calls"]
    assert cached.nfe["demasker_flops"] < plain.nfe["demasker_flops"]  # the window calls did less work


@pytest.mark.parametrize("kv_cache", ["dual", "prefix"])
@pytest.mark.parametrize("mode", ["mdm", "con_within_disc"])
def test_prompted_and_infill_batches_of_different_lengths_match_uncached_and_alone(pipe, mode, kv_cache):
    """Left-padded prompt batches (per-row positions, padding masks), the healed slot before the suffix, eos_fill
    and threshold decoding: refilled every call = uncached; with the cache, each sample equals its result alone."""
    call = dict(CALLS[mode], gen_length=12, block_length=4, steps=6, temperature=0.7)
    for extra in ({}, {"threshold": 0.5}):
        plain = pipe(prompt=PROMPTS, suffix=SUFFIXES, generator=gens(1, 2), **call, **extra)
        checked = pipe(prompt=PROMPTS, suffix=SUFFIXES, generator=gens(1, 2), kv_cache=kv_cache,
                       kv_cache_refresh="step", **call, **extra)  # fmt: skip
        assert torch.equal(checked.sequences, plain.sequences)
    both = pipe(prompt=PROMPTS, suffix=SUFFIXES, generator=gens(1, 2), kv_cache=kv_cache, **call)
    for i, (prompt, suffix) in enumerate(zip(PROMPTS, SUFFIXES)):
        alone = pipe(prompt=prompt, suffix=suffix, generator=gens(i + 1), kv_cache=kv_cache, **call)
        assert torch.equal(both.sequences[i], alone.sequences[0])
        assert both.full_texts[i] == prompt + both.texts[i] + suffix


@pytest.mark.parametrize("mode", ["mdm", "con_then_disc"])
def test_one_unprompted_block_is_exact(pipe, mode):
    """Nothing but BOS and the register prefix lies outside a single block: the cache is not used."""
    call = dict(CALLS[mode], num_samples=2, gen_length=16, steps=8, temperature=1.0)
    plain = pipe(generator=gens(3, 4), **call)
    for kv_cache in ("dual", "prefix"):
        cached = pipe(generator=gens(3, 4), kv_cache=kv_cache, **call)
        assert torch.equal(cached.sequences, plain.sequences)
        assert cached.nfe["demasker_flops"] == plain.nfe["demasker_flops"]


def test_the_cache_is_refilled_when_what_it_holds_goes_stale(guided_config):
    """Refilled at a new window, new registers, or a changed position outside the window (eos_fill, a callback);
    reused otherwise."""
    model = GuidedLLaDAForMaskedLM(guided_config).eval()
    calls = DemaskerCalls("dual", offset=1)
    canvas = torch.randint(4, 90, (2, 13))
    keep = torch.zeros_like(canvas, dtype=torch.bool)
    keep[:, 1:5] = True
    registers = torch.randn(2, 2, guided_config.register_dim)
    calls(model, canvas, keep, block=(1, 5), registers=registers)
    calls(model, canvas, keep, block=(1, 5), registers=registers.clone())  # equal registers: reused
    assert calls.fills == 1
    calls(model, canvas, keep, block=(1, 5), registers=registers + 1)  # ConWithinDisc's refresh: refilled
    assert calls.fills == 2
    calls(model, canvas, keep, block=(1, 5))  # another model call (unguided): refilled
    assert calls.fills == 3
    calls = DemaskerCalls("dual", offset=1)
    calls(model, canvas, keep, block=(1, 5))
    edited = canvas.clone()
    edited[:, 3] = 7  # inside the window: the cache stays
    calls(model, edited, keep, block=(1, 5))
    assert calls.fills == 1
    edited[:, 9] = 7  # outside the window: refilled
    calls(model, edited, keep, block=(1, 5))
    assert calls.fills == 2
    keep2 = torch.zeros_like(keep)
    keep2[:, 5:9] = True
    calls(model, edited, keep2, block=(5, 9))  # a new block
    assert calls.fills == 3


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"kv_cache": "triple"}, "unknown `kv_cache`"),
        ({"kv_cache": True}, "unknown `kv_cache`"),
        ({"kv_cache": "dual", "kv_cache_refresh": "always"}, "kv_cache_refresh"),
    ],
)
def test_bad_cache_options_are_refused_before_compute(pipe, kwargs, match):
    with pytest.raises(ValueError, match=match):
        pipe.validate("mdm", gen_length=8, steps=4, **kwargs)


def test_the_shipped_fair_mdm_baseline_reads_the_cache_right():
    """`mode="mdm"` runs the shipped pipeline's separate `mdm_demasker`: refilled every call, the cache gives its
    uncached tokens; with the cache it executes fewer FLOPs for the same calls."""
    from crocodil_hf import CrocodilPipeline

    shipped = CrocodilPipeline.from_pretrained("crocodil-python-tiny")
    shipped.set_progress_bar_config(disable=True)
    assert shipped.mdm_demasker is not None
    call = dict(num_samples=2, gen_length=64, block_length=16, steps=16, temperature=1.0)
    plain = shipped("mdm", generator=gens(5, 6), **call)
    checked = shipped("mdm", generator=gens(5, 6), kv_cache="dual", kv_cache_refresh="step", **call)
    assert torch.equal(checked.sequences, plain.sequences)
    cached = shipped("mdm", generator=gens(5, 6), kv_cache="dual", **call)
    assert cached.nfe["demasker_flops"] < 0.5 * plain.nfe["demasker_flops"]
