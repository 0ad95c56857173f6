"""CrocodilPipeline: every mode, NFE accounting, reproducibility, save/load, callbacks, bad input, guidance."""

import random

import pytest
import torch
from transformers import AutoModel

from conftest import gens
from crocodil_hf import CrocodilPipeline, GuidedLLaDAForMaskedLM, RegisterEncoderModel
from crocodil_hf.schedulers.scheduling_masked_diffusion import MaskedDiffusionScheduler, get_num_transfer_tokens
from crocodil_hf.testing import TINY_CORPUS, build_tiny_pipeline

PRIOR_STEPS = 4
EXTRA = 1  # offsets of 0.1 need ceil(0.1 * 1000 / (1000 / 4)) = 1 extra DDIM step


@pytest.mark.parametrize("mode", ["mdm", "con_then_disc", "con_within_disc"])
def test_every_generation_mode_runs_with_exact_call_counts(pipe, mode):
    out = pipe(mode=mode, num_samples=2, gen_length=16, steps=8, prior_steps=PRIOR_STEPS)
    assert len(out.texts) == 2 and out.sequences.shape == (2, 16)
    assert not (out.sequences == pipe.mask_token_id).any()
    assert out.nfe["demasker_calls"] == 8
    expected_prior = {"mdm": 0, "con_then_disc": PRIOR_STEPS + EXTRA, "con_within_disc": 2 * (PRIOR_STEPS + EXTRA)}
    assert out.nfe["prior_calls"] == expected_prior[mode]
    assert out.nfe["encoder_calls"] == (1 if mode == "con_within_disc" else 0)
    assert out.nfe["total"] >= out.nfe["demasker_calls"] + out.nfe["prior_total"]
    assert (out.nfe["prior_total"] > 0) == (mode != "mdm")
    assert (out.registers is None) == (mode == "mdm")


def test_prior_flops_count_each_call_at_the_size_of_the_prior_that_made_it(pipe):
    """ConWithinDisc calls the unconditional prior once per step and the (larger: cross-attention) conditional prior
    as often again: its prior FLOPs are ConThenDisc's times (f_prior + f_conditional) / f_prior."""
    from crocodil_hf.pipelines.accounting import forward_flops

    kwargs = dict(num_samples=2, gen_length=16, steps=8, prior_steps=PRIOR_STEPS)
    ctd, cwd = pipe(mode="con_then_disc", **kwargs).nfe, pipe(mode="con_within_disc", **kwargs).nfe
    k = pipe.prior.config.num_registers
    small, large = forward_flops(pipe.prior, k), forward_flops(pipe.conditional_prior, k)
    assert large > small
    assert cwd["prior_total"] / ctd["prior_total"] == pytest.approx((small + large) / small, rel=1e-9)


def test_autoencode_encodes_the_text_once(pipe):
    out = pipe(mode="autoencode", text=["def add(a, b):\n    return a + b\n", "x = 1\n"], steps=4, gen_length=16)
    assert out.nfe == {**out.nfe, "demasker_calls": 4, "encoder_calls": 1, "prior_calls": 0}
    assert torch.allclose(out.registers, pipe.encode(["def add(a, b):\n    return a + b\n", "x = 1\n"]))


def test_semi_autoregressive_blocks_fill_left_to_right(pipe):
    seen = []

    def record(p, step, block, kwargs):
        seen.append((block, (kwargs["sequences"] == p.mask_token_id).clone()))
        return {}

    pipe(mode="mdm", num_samples=1, gen_length=16, block_length=8, steps=4, callback_on_step_end=record)
    assert [b for b, _ in seen] == [0, 0, 1, 1]
    assert not seen[1][1][0, :8].any() and seen[1][1][0, 8:].all()  # block 0 done before block 1 starts


def test_confidence_threshold_uses_fewer_calls(pipe):
    fixed = pipe(mode="mdm", num_samples=2, gen_length=16, steps=16)
    fast = pipe(mode="mdm", num_samples=2, gen_length=16, steps=16, threshold=1e-4)
    strict = pipe(mode="mdm", num_samples=2, gen_length=16, steps=16, threshold=1.0)
    assert fixed.nfe["demasker_calls"] == 16
    assert fast.nfe["demasker_calls"] < 4
    assert strict.nfe["demasker_calls"] == 16  # nothing is that confident: one token per call
    assert not (fast.sequences == pipe.mask_token_id).any()


def test_same_generator_same_output_and_batch_equals_alone(pipe):
    kwargs = dict(mode="con_within_disc", gen_length=16, steps=8, prior_steps=PRIOR_STEPS, temperature=1.0, eta=0.5)
    a = pipe(num_samples=3, generator=gens(1, 2, 3), **kwargs)
    b = pipe(num_samples=3, generator=gens(1, 2, 3), **kwargs)
    alone = pipe(num_samples=1, generator=gens(2), **kwargs)
    assert torch.equal(a.sequences, b.sequences) and torch.equal(a.registers, b.registers)
    assert torch.equal(a.sequences[1], alone.sequences[0])
    assert torch.allclose(a.registers[1], alone.registers[0], atol=1e-5)
    other = pipe(num_samples=3, generator=gens(4, 5, 6), **kwargs)
    assert not torch.equal(a.sequences, other.sequences)


def test_random_remasking_and_greedy_differ(pipe):
    greedy = pipe(mode="mdm", num_samples=1, gen_length=16, steps=8, generator=gens(0))
    rand = pipe(mode="mdm", num_samples=1, gen_length=16, steps=8, remasking="random", generator=gens(0))
    assert greedy.nfe["demasker_calls"] == rand.nfe["demasker_calls"] == 8
    assert not torch.equal(greedy.sequences, rand.sequences)


def test_mdm_mode_runs_the_mdm_baseline_when_the_pipeline_has_one(tmp_path, pipe):
    """With an `mdm_demasker` component, `mode="mdm"` runs it (the same tokens as a pipeline whose demasker it is),
    `use_mdm_demasker=False` runs the guided demasker without registers as before, the guided modes do not change,
    and the component survives save/load."""
    torch.manual_seed(1)
    baseline = GuidedLLaDAForMaskedLM(pipe.demasker.config).eval()
    with_baseline = CrocodilPipeline(**{**pipe.components, "mdm_demasker": baseline})
    with_baseline.set_progress_bar_config(disable=True)
    as_demasker = CrocodilPipeline(**{**pipe.components, "demasker": baseline})
    as_demasker.set_progress_bar_config(disable=True)
    kwargs = dict(num_samples=2, gen_length=16, steps=8, remasking="random", temperature=1.0)
    out = with_baseline(mode="mdm", generator=gens(0, 1), **kwargs)
    assert torch.equal(out.sequences, as_demasker(mode="mdm", generator=gens(0, 1), **kwargs).sequences)
    guided = pipe(mode="mdm", generator=gens(0, 1), **kwargs).sequences
    assert not torch.equal(out.sequences, guided)
    assert torch.equal(
        with_baseline(mode="mdm", generator=gens(0, 1), use_mdm_demasker=False, **kwargs).sequences, guided
    )
    assert out.nfe["total"] == out.nfe["demasker_calls"] == 8  # the same size: one demasker forward per call
    for mode in ("con_then_disc", "con_within_disc"):
        call = dict(mode=mode, prior_steps=PRIOR_STEPS, **kwargs)
        assert torch.equal(
            with_baseline(generator=gens(2, 3), **call).sequences, pipe(generator=gens(2, 3), **call).sequences
        )
    with_baseline.save_pretrained(tmp_path)
    loaded = CrocodilPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert torch.equal(loaded(mode="mdm", generator=gens(0, 1), **kwargs).sequences, out.sequences)
    with pytest.raises(ValueError, match="no `mdm_demasker` component"):
        pipe(mode="mdm", use_mdm_demasker=True, **kwargs)
    other = GuidedLLaDAForMaskedLM(type(pipe.demasker.config)(**{**pipe.demasker.config.to_dict(), "vocab_size": 7}))
    with pytest.raises(ValueError, match="share the demasker's vocabulary.*vocab_size"):
        CrocodilPipeline(**{**pipe.components, "mdm_demasker": other})


def test_save_load_round_trip_gives_same_output(tmp_path, pipe):
    pipe.save_pretrained(tmp_path)
    loaded = CrocodilPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    kwargs = dict(
        mode="con_within_disc", num_samples=2, gen_length=16, steps=8, prior_steps=PRIOR_STEPS, temperature=0.7
    )
    assert torch.equal(
        pipe(generator=gens(7, 8), **kwargs).sequences, loaded(generator=gens(7, 8), **kwargs).sequences
    )
    # transformers components stay loadable alone from their subfolders
    assert isinstance(AutoModel.from_pretrained(tmp_path / "demasker", trust_remote_code=True), GuidedLLaDAForMaskedLM)
    assert isinstance(AutoModel.from_pretrained(tmp_path / "encoder", trust_remote_code=True), RegisterEncoderModel)
    assert isinstance(loaded.mask_scheduler, MaskedDiffusionScheduler)


def test_the_prior_solver_is_a_call_option_a_saved_choice_and_a_saved_default_step_count(tmp_path, pipe):
    """`prior_scheduler="dpmsolver++"` samples exactly as a pipeline whose scheduler was swapped the diffusers way;
    that pipeline saves the solver and its `default_prior_steps`, and calls without `prior_steps` use them."""
    from diffusers import DPMSolverMultistepScheduler

    kwargs = dict(mode="con_within_disc", num_samples=2, gen_length=16, steps=8, generator=None)
    by_name = pipe(**{**kwargs, "generator": gens(1, 2)}, prior_steps=PRIOR_STEPS, prior_scheduler="dpmsolver++")
    ddim = pipe(**{**kwargs, "generator": gens(1, 2)}, prior_steps=PRIOR_STEPS)
    dpm = DPMSolverMultistepScheduler.from_config(pipe.scheduler.config, algorithm_type="dpmsolver++", solver_order=2)
    swapped = CrocodilPipeline(**{**pipe.components, "scheduler": dpm}, default_prior_steps=PRIOR_STEPS)
    swapped.set_progress_bar_config(disable=True)
    by_default = swapped(**{**kwargs, "generator": gens(1, 2)})
    assert torch.equal(by_default.registers, by_name.registers)
    assert not torch.allclose(by_default.registers, ddim.registers)
    assert by_default.nfe["prior_calls"] == 2 * (PRIOR_STEPS + EXTRA)
    swapped.save_pretrained(tmp_path)
    index = __import__("json").loads((tmp_path / "model_index.json").read_text())
    assert index["scheduler"] == ["diffusers", "DPMSolverMultistepScheduler"] and index["default_prior_steps"] == 4
    loaded = CrocodilPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert isinstance(loaded.scheduler, DPMSolverMultistepScheduler) and loaded.config.default_prior_steps == 4
    assert torch.equal(loaded(**{**kwargs, "generator": gens(1, 2)}).registers, by_name.registers)


def test_sampled_registers_use_the_saved_default_k_and_encoded_or_given_ones_all_k(tmp_path, pipe):
    """`default_num_registers` (docs/results.md "Registers for generation"): the prior-based modes show the demasker the first
    k registers when a call gives none, exactly as `num_registers=k`; `autoencode` and given registers keep all K;
    an explicit `num_registers` wins; saved and loaded; a pipeline saved without it uses K; out of range refused."""
    import json

    seen = []
    hook = pipe.demasker.register_forward_hook(
        lambda module, args, kwargs, out: seen.append(kwargs["registers"].shape[1]), with_kwargs=True
    )
    try:
        few = CrocodilPipeline(**pipe.components, default_prior_steps=PRIOR_STEPS, default_num_registers=2)
        few.set_progress_bar_config(disable=True)
        kwargs = dict(num_samples=2, gen_length=16, steps=4)
        for mode in ("con_then_disc", "con_within_disc"):
            seen.clear()
            by_default = few(mode=mode, **kwargs, generator=gens(3, 4))
            assert seen == [2] * 4
            explicit = pipe(mode=mode, **kwargs, generator=gens(3, 4), prior_steps=PRIOR_STEPS, num_registers=2)
            assert torch.equal(by_default.sequences, explicit.sequences)
            seen.clear()
            few(mode=mode, **kwargs, generator=gens(3, 4), num_registers=3)
            assert seen == [3] * 4
        from crocodil_hf.pipelines.modes import MODES

        assert {name for name, source in MODES.items() if source.samples_from_prior} == {
            "con_then_disc",
            "con_within_disc",
        }
        K = pipe.num_registers_max
        seen.clear()
        few(mode="autoencode", text=["x = 1\n"], steps=4)
        assert seen == [K] * 4
        seen.clear()
        few.decode(pipe.encode(["x = 1\n"]), gen_length=8, steps=2)
        assert seen == [K] * 2
        seen.clear()
        few(mode="con_then_disc", registers=pipe.encode(["x = 1\n"]), num_samples=1, gen_length=8, steps=2)
        assert seen == [K] * 2
    finally:
        hook.remove()
    few.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["default_num_registers"] == 2
    assert CrocodilPipeline.from_pretrained(tmp_path).sampled_num_registers_default == 2
    del index["default_num_registers"]  # as saved before the option existed
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    assert CrocodilPipeline.from_pretrained(tmp_path).sampled_num_registers_default == K
    for bad in (0, K + 1, 1.5):
        with pytest.raises(ValueError, match="default_num_registers"):
            CrocodilPipeline(**pipe.components, default_num_registers=bad)


def test_the_conditional_prior_has_its_own_saved_default_step_count(tmp_path, pipe):
    """`default_conditional_prior_steps` (the paper samples its conditional prior with fewer steps than the
    unconditional one): calls that give no steps use it for the conditional prior and `default_prior_steps` for the
    other, exactly as the explicit call would; an explicit `prior_steps` still sets both; saved and loaded; a
    pipeline saved without it falls back to `default_prior_steps`."""
    import json

    split = CrocodilPipeline(**pipe.components, default_prior_steps=PRIOR_STEPS, default_conditional_prior_steps=2)
    split.set_progress_bar_config(disable=True)
    kwargs = dict(mode="con_within_disc", num_samples=2, gen_length=16, steps=8)
    by_default = split(**kwargs, generator=gens(5, 6))
    explicit = pipe(**kwargs, generator=gens(5, 6), prior_steps=PRIOR_STEPS, conditional_prior_steps=2)
    assert torch.equal(by_default.sequences, explicit.sequences)
    assert torch.equal(by_default.registers, explicit.registers)
    assert by_default.nfe["prior_calls"] == (PRIOR_STEPS + EXTRA) + (2 + EXTRA)
    both = split(**kwargs, generator=gens(5, 6), prior_steps=3)
    assert both.nfe["prior_calls"] == 2 * (3 + EXTRA)
    split.save_pretrained(tmp_path)
    index = json.loads((tmp_path / "model_index.json").read_text())
    assert index["default_conditional_prior_steps"] == 2
    loaded = CrocodilPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert torch.equal(loaded(**kwargs, generator=gens(5, 6)).sequences, by_default.sequences)
    del index["default_conditional_prior_steps"]  # as saved before the option existed
    (tmp_path / "model_index.json").write_text(json.dumps(index))
    older = CrocodilPipeline.from_pretrained(tmp_path)
    assert older.conditional_prior_default_steps == PRIOR_STEPS
    with pytest.raises(ValueError, match="default_conditional_prior_steps"):
        CrocodilPipeline(**pipe.components, default_conditional_prior_steps=0)


def test_distilled_priors_are_used_by_default_at_their_own_steps_and_can_be_switched_off(tmp_path, pipe):
    from crocodil_hf import RegisterPriorTransformer

    def student(teacher):
        model = RegisterPriorTransformer.from_config(teacher.config, distilled_steps=2)
        model.load_state_dict(teacher.state_dict())
        torch.nn.init.normal_(model.proj_out.weight, std=0.2)  # a different network from its teacher
        return model.eval()

    students = {"distilled_prior": student(pipe.prior), "distilled_conditional_prior": student(pipe.conditional_prior)}
    fast = CrocodilPipeline(**{**pipe.components, **students}, default_prior_steps=PRIOR_STEPS)
    fast.set_progress_bar_config(disable=True)
    calls = {name: 0 for name in ("prior", "conditional_prior", *students)}
    for name in calls:
        module = getattr(fast, name)
        module.register_forward_hook(lambda *_, name=name: calls.__setitem__(name, calls[name] + 1))
    kwargs = dict(mode="con_within_disc", num_samples=2, gen_length=16, steps=8)
    out = fast(**kwargs, generator=gens(3, 4))
    assert out.nfe["prior_calls"] == 2 * (2 + 1)  # 2 steps + 1 extra for the offsets, per prior
    assert calls == {"prior": 0, "conditional_prior": 0, "distilled_prior": 3, "distilled_conditional_prior": 3}
    teacher = fast(**kwargs, generator=gens(3, 4), use_distilled_prior=False)
    assert teacher.nfe["prior_calls"] == 2 * (PRIOR_STEPS + EXTRA) and calls["prior"] == PRIOR_STEPS + EXTRA
    assert torch.equal(teacher.registers, pipe(**kwargs, generator=gens(3, 4), prior_steps=PRIOR_STEPS).registers)
    assert fast(**kwargs, generator=gens(3, 4), prior_steps=4).nfe["prior_calls"] == 2 * (4 + 1)
    fast.save_pretrained(tmp_path)
    loaded = CrocodilPipeline.from_pretrained(tmp_path)
    loaded.set_progress_bar_config(disable=True)
    assert loaded.distilled_prior.config.distilled_steps == 2
    assert torch.equal(loaded(**kwargs, generator=gens(3, 4)).registers, out.registers)
    with pytest.raises(ValueError, match="not a distilled student"):
        CrocodilPipeline(**{**pipe.components, "distilled_prior": pipe.prior})
    with pytest.raises(ValueError, match="`distilled_prior` is a conditional prior"):
        CrocodilPipeline(**{**pipe.components, "distilled_prior": students["distilled_conditional_prior"]})


def test_callback_sees_and_changes_the_state(pipe):
    calls = []
    fill = 42

    def callback(p, step, block, kwargs):
        calls.append((step, sorted(kwargs)))
        sequences = kwargs["sequences"].clone()
        sequences[sequences == p.mask_token_id] = fill
        return {"sequences": sequences, "registers": torch.zeros_like(kwargs["registers"])}

    out = pipe(
        mode="con_then_disc",
        num_samples=2,
        gen_length=16,
        steps=8,
        prior_steps=PRIOR_STEPS,
        callback_on_step_end=callback,
    )
    assert calls == [(1, ["registers", "sequences"])]  # everything filled after the first step: the loop stops
    assert out.nfe["demasker_calls"] == 1 and (out.sequences == fill).sum() >= 14
    assert torch.equal(out.registers, torch.zeros_like(out.registers))


def test_decode_and_interpolate(pipe):
    z = pipe.encode(TINY_CORPUS[:2])
    assert z.shape == (2, 4, 32)
    decoded = pipe.decode(z, gen_length=8, steps=4)
    assert len(decoded.texts) == 2 and decoded.nfe["prior_calls"] == 0
    texts = pipe.interpolate(TINY_CORPUS[0], TINY_CORPUS[1], alphas=[0.0, 0.5, 1.0], steps=4, gen_length=16)
    assert len(texts) == 3


def test_eos_truncates_decoded_text(pipe):
    tok = pipe.tokenizer
    ids = tok("x = 1", add_special_tokens=False)["input_ids"] + [tok.eos_token_id] + tok("junk")["input_ids"]
    assert pipe.decode_sequences(torch.tensor([ids])) == ["x = 1"]


def test_transfer_schedule_matches_llada():
    mask = torch.zeros(2, 10, dtype=torch.bool)
    mask[0, :10] = True
    mask[1, :7] = True
    assert get_num_transfer_tokens(mask, 4).tolist() == [[3, 3, 2, 2], [2, 2, 2, 1]]


def _reference_step(logits, sample, counts_column, mask_id, active, threshold):
    """LLaDA's reference rule, one row at a time: float64 softmax confidence, top-n or threshold per row."""
    probs = torch.softmax(logits.double(), dim=-1)
    candidates = logits.argmax(-1)
    conf = torch.gather(probs, -1, candidates[..., None]).squeeze(-1)
    out = sample.clone()
    for b in range(sample.shape[0]):
        masked = (sample[b] == mask_id) & bool(active[b])
        if not masked.any():
            continue
        row_conf = torch.where(masked, conf[b], torch.tensor(float("-inf"), dtype=torch.float64))
        if threshold is not None:
            chosen = row_conf > threshold
            if not chosen.any():
                chosen[row_conf.argmax()] = True
        else:
            chosen = torch.zeros_like(masked)
            chosen[torch.topk(row_conf, k=min(int(counts_column[b]), int(masked.sum()))).indices] = True
        out[b] = torch.where(chosen & masked, candidates[b], sample[b])
    return out


@pytest.mark.parametrize("threshold", [None, 0.2])
def test_vectorised_step_equals_the_per_row_reference(threshold):
    g = torch.Generator().manual_seed(3)
    batch, length, vocab, mask_id = 6, 12, 50, 49
    scheduler = MaskedDiffusionScheduler(mask_token_id=mask_id)
    sample = torch.randint(0, mask_id, (batch, length), generator=g)
    sample[torch.rand(batch, length, generator=g) < 0.6] = mask_id
    sample[2] = mask_id  # a fully masked row
    sample[3] = 7  # a row with nothing left to demask
    active = torch.tensor([True, True, True, True, False, True])
    scheduler.set_timesteps(3, block_mask=sample == mask_id)
    for step in range(3):
        logits = torch.randn(batch, length, vocab, generator=g) * 3
        logits[..., mask_id] = float("-inf")  # the demasker never proposes [MASK]
        expected = _reference_step(logits, sample, scheduler.num_transfer_tokens[:, step], mask_id, active, threshold)
        out = scheduler.step(logits, step, sample, threshold=threshold, active=active)
        assert torch.equal(out.prev_sample, expected)
        packed = logits[(sample == mask_id) & active[:, None]]  # (N, V): what the pipeline passes
        assert torch.equal(
            scheduler.step(packed, step, sample, threshold=threshold, active=active).prev_sample, expected
        )
        assert torch.equal(out.prev_sample[4], sample[4])  # inactive rows untouched
        sample = out.prev_sample
    if threshold is None:
        assert not (sample[active] == mask_id).any()  # the schedule commits every masked token of active rows


def test_step_rejects_logits_of_the_wrong_shape():
    scheduler = MaskedDiffusionScheduler(mask_token_id=9)
    sample = torch.full((2, 4), 9)
    scheduler.set_timesteps(2, block_mask=sample == 9)
    with pytest.raises(ValueError, match="model_output"):
        scheduler.step(torch.randn(5, 10), 0, sample)  # 8 masked positions, not 5


def test_eos_penalty_lowers_the_eos_logit_and_is_a_no_op_at_zero():
    """EOS argmax by a margin of 1: a penalty of 2 picks the runner-up, and EOS confidences are those of the
    penalised distribution; 0 gives exactly the unpenalised step."""
    eos, mask_id = 3, 29
    logits = torch.randn(2, 5, 30, generator=torch.Generator().manual_seed(0))
    logits[..., mask_id] = -10.0  # the runner-up is a real token (the mask token is never a candidate anyway)
    logits[..., eos] = logits.max(dim=-1).values + 1.0
    sample = torch.full((2, 5), mask_id)
    scheduler = MaskedDiffusionScheduler(mask_token_id=mask_id)
    scheduler.set_timesteps(5, block_mask=sample == mask_id)
    plain = scheduler.step(logits, 0, sample)
    assert (plain.pred_original_sample == eos).all()
    same = scheduler.step(logits, 0, sample, eos_penalty=0.0, eos_token_id=eos)
    assert torch.equal(same.prev_sample, plain.prev_sample) and torch.equal(same.confidence, plain.confidence)
    penalised = scheduler.step(logits, 0, sample, eos_penalty=2.0, eos_token_id=eos)
    shifted = logits.clone()
    shifted[..., eos] -= 2.0
    shifted[..., mask_id] = float("-inf")  # the mask token is never a candidate
    assert (
        torch.equal(penalised.pred_original_sample, shifted.argmax(-1))
        and not (penalised.pred_original_sample == eos).any()
    )
    assert torch.allclose(penalised.confidence, torch.softmax(shifted, -1).max(-1).values, atol=1e-6)
    with pytest.raises(ValueError, match="eos_token_id"):
        scheduler.step(logits, 0, sample, eos_penalty=2.0)


def test_greedy_confidence_is_the_softmax_probability_of_the_candidate():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(2, 5, 30, generator=g) * 4
    sample = torch.full((2, 5), 29)
    scheduler = MaskedDiffusionScheduler(mask_token_id=29)
    scheduler.set_timesteps(5, block_mask=sample == 29)
    out = scheduler.step(logits, 0, sample)
    candidates = logits.clone()
    candidates[..., 29] = float("-inf")  # the mask token (29) is never a candidate
    expected = torch.softmax(candidates.double(), -1).max(-1).values
    assert torch.allclose(out.confidence.double(), expected, atol=1e-6)
    assert torch.equal(out.pred_original_sample, candidates.argmax(-1))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"mode": "bogus"}, "mode"),
        ({"mode": "autoencode"}, "text"),
        ({"gen_length": 16, "block_length": 5}, "block_length"),
        ({"gen_length": 16, "block_length": 4, "steps": 6}, "steps"),
        ({"gen_length": 8, "steps": 16}, "steps"),
        ({"num_registers": 5}, "num_registers"),
        ({"threshold": 0.0}, "threshold"),
        ({"threshold": 1.5}, "threshold"),
        ({"refresh_at": [1.0]}, "refresh_at"),
        ({"temperature": -1.0}, "temperature"),
        ({"remasking": "top"}, "remasking"),
        ({"num_samples": 2, "generator": [torch.Generator()]}, "generators"),
        ({"prior_scheduler": "euler"}, "unknown `prior_scheduler` 'euler'"),
        ({"prior_steps": 0}, "prior_steps"),
        ({"conditional_prior_steps": 2.5}, "conditional_prior_steps"),
        ({"prior_scheduler": "unipc", "eta": 0.5}, "eta"),
        ({"use_distilled_prior": True}, "no distilled prior"),
        ({"use_distilled_prior": "yes"}, "use_distilled_prior"),
    ],
)
def test_bad_input_raises_before_compute(pipe, kwargs, match):
    calls = []
    original = pipe.demasker.forward
    pipe.demasker.forward = lambda *a, **k: calls.append(1) or original(*a, **k)
    try:
        with pytest.raises(ValueError, match=match):
            pipe(**{"mode": "mdm", "gen_length": 16, "steps": 8, **kwargs})
    finally:
        pipe.demasker.forward = original
    assert not calls


def test_con_within_disc_without_conditional_prior_raises():
    pipe = build_tiny_pipeline(conditional=False)
    with pytest.raises(ValueError, match="conditional_prior"):
        pipe(mode="con_within_disc", gen_length=8, steps=4)


WORDS = "apple river stone cloud tiger lemon piano rocket maple ocean falcon violet".split()


def word_text(rng):
    return " ".join(rng.choice(WORDS) for _ in range(6))


def test_guidance_carries_the_answer_after_training():
    """A tiny encoder + guided demasker trained for a few hundred steps on random word sequences: registers of a
    held-out sequence let `autoencode` reconstruct it far better than unguided `mdm` at the same number of calls."""
    jiwer = pytest.importorskip("jiwer")
    from crocodil_hf import GuidedLLaDAConfig, RegisterEncoderConfig, RegisterPriorTransformer
    from crocodil_hf.data.tokenizer import train_bpe_tokenizer
    from crocodil_hf.schedulers.scheduling_register_prior import make_sampling_scheduler

    rng = random.Random(0)
    tok = train_bpe_tokenizer([word_text(rng) for _ in range(2000)], vocab_size=300)
    torch.manual_seed(0)
    ids = dict(
        vocab_size=len(tok),
        embedding_size=len(tok),
        mask_token_id=tok.mask_token_id,
        eos_token_id=tok.eos_token_id,
        pad_token_id=tok.pad_token_id,
        bos_token_id=tok.bos_token_id,
        rope_theta=10000.0,
        max_sequence_length=64,
    )
    demasker = GuidedLLaDAForMaskedLM(
        GuidedLLaDAConfig(
            d_model=64,
            n_heads=4,
            n_layers=2,
            mlp_hidden_size=128,
            num_registers=4,
            register_dim=64,
            prefix_rope_pairs=2,
            **ids,
        )
    )
    encoder = RegisterEncoderModel(
        RegisterEncoderConfig(
            backbone_config=dict(model_type="llada", d_model=64, n_heads=4, n_layers=2, mlp_hidden_size=128, **ids),
            num_registers=4,
        )
    )

    def batch(texts):
        rows = [[tok.bos_token_id] + tok(t, add_special_tokens=False)["input_ids"] + [tok.eos_token_id] for t in texts]
        x = torch.full((len(rows), max(map(len, rows))), tok.eos_token_id)
        for i, r in enumerate(rows):
            x[i, : len(r)] = torch.tensor(r)
        return x

    optimizer = torch.optim.AdamW([*demasker.parameters(), *encoder.parameters()], lr=3e-3)
    for _ in range(300):
        x0 = batch([word_text(rng) for _ in range(64)])
        masked = torch.rand(x0.shape) < torch.rand(x0.shape[0], 1)
        masked[torch.rand(x0.shape[0]) < 0.25] = True  # all-mask rows force the use of the registers (App. C)
        masked[:, 0] = False
        logits = demasker(torch.where(masked, tok.mask_token_id, x0), registers=encoder(x0).registers).logits
        loss = torch.nn.functional.cross_entropy(logits[masked], x0[masked])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()

    pipe = CrocodilPipeline(
        demasker=demasker.eval(),
        encoder=encoder.eval(),
        tokenizer=tok,
        scheduler=make_sampling_scheduler(),
        prior=RegisterPriorTransformer(
            num_registers=4, register_dim=64, hidden_size=32, num_layers=1, num_attention_heads=4
        ),
    )
    pipe.set_progress_bar_config(disable=True)
    held_out = [word_text(random.Random(10_000 + i)) for i in range(16)]
    gen_length = batch(held_out).shape[1] - 1
    steps = max(1, gen_length // 4)
    autoencoded = pipe(mode="autoencode", text=held_out, gen_length=gen_length, steps=steps)
    unguided = pipe(mode="mdm", num_samples=len(held_out), gen_length=gen_length, steps=steps)
    assert autoencoded.nfe["demasker_calls"] == unguided.nfe["demasker_calls"] == steps
    cer_guided, cer_plain = jiwer.cer(held_out, autoencoded.texts), jiwer.cer(held_out, unguided.texts)
    assert cer_guided < 0.65 and cer_guided < 0.7 * cer_plain, (cer_guided, cer_plain)


def test_a_new_mode_is_one_class_and_one_table_entry_as_the_docs_show(monkeypatch):
    import re

    from crocodil_hf.pipelines import modes

    monkeypatch.setitem(modes.MODES, "mean_of_examples", None)  # removed again after the test
    example = re.search(r"```python\n(.*?)```", modes.__doc__, re.S).group(1)
    example = example.replace("pipe(mode=", "out = pipe(mode=")
    namespace = {}
    exec(example, namespace)  # the module docstring's worked example, verbatim (on the shipped pipeline)
    out = namespace["out"]
    assert len(out.texts) == 4 and out.nfe["encoder_calls"] == 1 and out.nfe["prior_calls"] == 0
    assert torch.allclose(out.registers[0], out.registers[3]) and out.registers.shape[0] == 4
    assert "mean_of_examples" not in modes.generation_modes()  # it reads text: not a `crocodil generate` choice


# ---------------------------------------------------------------- prompted completion and infilling (App. H)

PROMPTS = ["def add(a, b):\n", "import os\nprint(os.getcwd())\nfor i in range(10):\n"]
SUFFIXES = ["    return a\n", "\n"]


@pytest.mark.parametrize("mode", ["mdm", "con_then_disc", "con_within_disc"])
def test_prompt_and_suffix_stay_fixed_and_a_batch_equals_each_sample_alone(mode):
    pipe = build_tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    kwargs = dict(mode=mode, gen_length=16, steps=8, prior_steps=3, temperature=0.5)
    seen = []

    def record(pipe_, step, block, tensors):
        seen.append(pipe_)  # the callback sees the span only
        assert tensors["sequences"].shape[1] == 16
        return {}

    both = pipe(prompt=PROMPTS, suffix=SUFFIXES, generator=[torch.Generator().manual_seed(s) for s in (1, 2)],
                callback_on_step_end=record, **kwargs)  # fmt: skip
    assert seen and both.sequences.shape == (2, 16)
    for i, (prompt, suffix) in enumerate(zip(PROMPTS, SUFFIXES)):
        alone = pipe(prompt=prompt, suffix=suffix, generator=torch.Generator().manual_seed(i + 1), **kwargs)
        assert torch.equal(both.sequences[i], alone.sequences[0])
        assert both.full_texts[i].startswith(prompt) and both.full_texts[i].endswith(suffix)
        assert both.full_texts[i] == prompt + both.texts[i] + suffix


def test_nothing_is_written_after_the_first_eos_and_the_call_stops_when_all_ended():
    pipe = build_tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    eos = pipe.tokenizer.eos_token_id

    def force_eos(pipe_, step, block, tensors):  # a sample that commits EOS at span position 3 on the first step
        sequences = tensors["sequences"].clone()
        if step == 1:
            sequences[:, 3] = eos
        return {"sequences": sequences}

    # prompts as given (heal=False): the callback then overwrites the position the first step committed, so a call
    # that does not stop at EOS makes all 16 calls
    kwargs = dict(prompt="x = 1\n", gen_length=16, steps=16, callback_on_step_end=force_eos, heal=False)
    out = pipe(mode="mdm", num_samples=2, **kwargs)
    assert (out.sequences[:, 3:] == eos).all()  # everything after the first EOS is EOS
    assert out.nfe["demasker_calls"] < 16  # stopped once every sample had ended
    plain = pipe(mode="mdm", eos_fill=False, **kwargs)
    assert plain.nfe["demasker_calls"] == 16


def test_bad_prompts_are_refused_before_any_compute():
    pipe = build_tiny_pipeline()
    limit = pipe.max_gen_length
    with pytest.raises(ValueError, match="exceed the"):
        pipe(mode="mdm", prompt="x = 1\n" * 40, gen_length=limit - 4, steps=4)
    with pytest.raises(ValueError, match="non-empty"):
        pipe(mode="mdm", prompt="", gen_length=8, steps=4)
    with pytest.raises(ValueError, match="needs a `prompt`"):
        pipe(mode="mdm", suffix="x\n", gen_length=8, steps=4)
    with pytest.raises(ValueError, match="generation modes"):
        pipe(mode="autoencode", text=["x = 1\n"], prompt="y\n")
    with pytest.raises(ValueError, match="one per sample"):
        pipe(mode="mdm", prompt=["a\n", "b\n"], num_samples=3, gen_length=8, steps=4)
    no_conditional = build_tiny_pipeline(conditional=False)
    with pytest.raises(ValueError, match="needs a `conditional_prior`"):
        no_conditional(mode="con_then_disc", prompt="x\n", gen_length=8, steps=4)


@pytest.mark.parametrize("threshold", [None, 0.9])
@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_the_mask_token_is_never_committed_even_when_the_demasker_prefers_it(threshold, temperature):
    """Adversarial logits (the mask token the most likely everywhere): every step commits real tokens, and a block
    run for its steps holds no mask (before the fix a threshold step "committed" the mask and the block stayed
    masked, silently dropped from the text)."""
    mask_id, vocab, length, steps = 3, 12, 8, 4
    scheduler = MaskedDiffusionScheduler(mask_token_id=mask_id)
    block = torch.full((2, length), mask_id)
    scheduler.set_timesteps(steps if threshold is None else length, block_mask=block == mask_id)
    logits = torch.zeros(2, length, vocab)
    logits[..., mask_id] = 50.0  # a stub demasker that always prefers [MASK]
    logits[..., 7] = 1.0
    for step, _ in enumerate(scheduler.timesteps):
        if not (block == mask_id).any():
            break
        out = scheduler.step(logits, step, block, temperature=temperature, threshold=threshold,
                             generator=[torch.Generator().manual_seed(i) for i in range(2)])  # fmt: skip
        assert ((out.prev_sample == mask_id).sum()) < ((block == mask_id).sum())  # progress at every step
        block = out.prev_sample
    assert not (block == mask_id).any()
