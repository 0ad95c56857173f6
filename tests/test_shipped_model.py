"""The shipped default pipeline `crocodil-python-tiny`: resolvable by name, runs offline, and behaves."""

import pytest
import torch

from crocodil_hf.pipelines.pipeline_crocodil import CrocodilPipeline
from crocodil_hf.utils.locate import SHIPPED_DIR, locate_pipeline

SHIPPED = SHIPPED_DIR / "crocodil-python-tiny"
pytestmark = pytest.mark.skipif(not (SHIPPED / "model_index.json").exists(), reason="no shipped pipeline")


@pytest.fixture(scope="module")
def pipe():
    pipe = CrocodilPipeline.from_pretrained("crocodil-python-tiny")
    pipe.set_progress_bar_config(disable=True)
    return pipe


def test_name_resolves_to_the_shipped_directory():
    assert locate_pipeline("crocodil-python-tiny") == SHIPPED


def test_shipped_pipeline_has_every_component_and_a_card(pipe):
    assert pipe.conditional_prior is not None and pipe.demasker.config.default_gen_length == 64
    card = (SHIPPED / "README.md").read_text()
    assert "eval_results" in card or "model-index" in card


def test_the_shipped_mdm_baseline_is_the_guided_demasker_s_size_and_training_budget(pipe):
    """`mode="mdm"` runs the fair baseline: a demasker of the guided one's architecture, trained with no registers
    for as many steps as the guided demasker has seen over the whole history (stage 0 plus every autoencoder
    step)."""
    import json

    baseline, guided = pipe.mdm_demasker, pipe.demasker
    assert baseline is not None
    for key in ("d_model", "n_layers", "n_heads", "mlp_hidden_size", "vocab_size"):
        assert getattr(baseline.config, key) == getattr(guided.config, key), key
    history = json.loads((SHIPPED / "training_history.json").read_text())
    steps = {name: sum(run["stages"].get(name, {}).get("steps") or 0 for run in history) for name in
             ("mdm", "autoencoder", "mdm-baseline")}  # fmt: skip
    assert steps["mdm-baseline"] == steps["mdm"] + steps["autoencoder"] > 0, steps
    out = pipe(mode="mdm", num_samples=1, gen_length=64, steps=4)
    assert out.nfe["demasker_calls"] == 4 and out.nfe["prior_calls"] == 0


def test_shipped_model_generates_python_offline(pipe):
    out = pipe(
        mode="con_within_disc",
        num_samples=2,
        steps=16,
        gen_length=64,
        prior_steps=20,
        generator=[torch.Generator().manual_seed(s) for s in (0, 1)],
    )
    assert out.nfe["demasker_calls"] == 16 and len(out.texts) == 2
    assert sum(len(t) for t in out.texts) > 20


def test_shipped_defaults_keep_the_priors_under_a_tenth_of_a_sample_s_flops(pipe):
    """Issue 17's check, with the shipped defaults (docs/results.md "Few-step priors", "Prefix priors"): DPM-Solver++ at 16
    steps over prefix priors that sample the k = 2 registers the demasker reads, i.e. 16 + 1 offset steps per prior;
    a ConWithinDisc sample's prior FLOP share, the pipeline's own accounting, is <= 10 % (7.4 %). The DDIM-era
    sampler stays reachable with `prior_scheduler="ddim", prior_steps=50` (53 calls per prior)."""
    assert type(pipe.scheduler).__name__ == "DPMSolverMultistepScheduler" and pipe.config.default_prior_steps == 16
    assert pipe.prior_num_registers == pipe.sampled_num_registers_default == 2 < pipe.num_registers_max
    kwargs = dict(mode="con_within_disc", num_samples=1, steps=16, generator=torch.Generator().manual_seed(0))
    out = pipe(**kwargs)
    assert out.nfe["prior_calls"] == 2 * (16 + 1) and out.registers.shape[1] == 2
    assert out.nfe["prior_total"] / out.nfe["total"] <= 0.10
    kwargs["generator"] = torch.Generator().manual_seed(0)
    ddim = pipe(**kwargs, prior_scheduler="ddim", prior_steps=50)
    assert ddim.nfe["prior_calls"] == 2 * (50 + 3) and ddim.nfe["prior_total"] / ddim.nfe["total"] > 0.15


def test_shipped_weights_are_stored_in_half_precision_and_load_as_float32(pipe):
    from safetensors import safe_open

    for weights in SHIPPED.glob("*/*.safetensors"):
        with safe_open(str(weights), "pt") as f:
            assert {f.get_slice(k).get_dtype() for k in f.keys()} <= {"F16", "I64", "BOOL"}, weights
    for name in ("demasker", "encoder", "prior", "conditional_prior", "mdm_demasker"):
        assert {p.dtype for p in getattr(pipe, name).parameters()} == {torch.float32}, name


def test_the_card_adds_up_the_training_history():
    """Cumulative training: the shipped folder lists every run behind its weights; its card states their total."""
    import json

    history = json.loads((SHIPPED / "training_history.json").read_text())
    assert history[0]["init_from"] is None and all(run["init_from"] for run in history[1:])
    cpu = sum(
        run.get("cpu_minutes") or sum(s.get("cpu_minutes") or 0 for s in run["stages"].values()) for run in history
    )
    assert f"{cpu / 60:.1f} CPU-hours" in (SHIPPED / "README.md").read_text()


def test_registers_carry_the_program(pipe):
    """Guidance works in the shipped model: each reconstruction is closer to its own program than to the other one,
    and the same demasker with as many calls but no registers reconstructs far less. (The fair MDM baseline is not
    the comparison: it writes a short generic program whose CER on two tiny programs says little.)"""
    import jiwer

    texts = ["def add(a, b):\n    return a + b\n", "import os\nimport sys\n\nprint(os.getcwd())\n"]
    auto = pipe(mode="autoencode", text=texts, gen_length=64, steps=16).texts
    assert all(jiwer.cer(texts[i], auto[i]) < jiwer.cer(texts[1 - i], auto[i]) for i in range(2)), auto
    unguided = pipe(mode="mdm", num_samples=2, gen_length=64, steps=16, use_mdm_demasker=False).texts
    assert jiwer.cer(texts, auto) < 0.8 * jiwer.cer(texts, unguided)


def test_eos_penalty_turns_the_empty_greedy_mdm_output_into_text(pipe):
    """The shipped guided demasker without registers (`use_mdm_demasker=False`), greedy, commits EOS early (up to run
    7's weights it wrote no program, or one indented line, before it; run 8's writes a degenerate line, then EOS);
    a penalty on EOS (16 for the continued weights) commits fewer EOS tokens and leaves every sample a program of
    more than 20 characters; the number of demasker calls does not change. The fair baseline (`mdm_demasker`) greedy
    writes a short program and a penalty makes it longer."""
    guided = dict(mode="mdm", num_samples=2, gen_length=64, steps=16, use_mdm_demasker=False)
    plain = pipe(**guided)
    penalised = pipe(**guided, eos_penalty=16.0)
    eos = pipe.tokenizer.eos_token_id
    plain_eos, penalised_eos = ((out.sequences == eos).sum(dim=1) for out in (plain, penalised))
    assert bool((plain_eos > 0).all()) and bool((penalised_eos < plain_eos).all()), (plain_eos, penalised_eos)
    assert all(len(t.strip()) > 20 for t in penalised.texts), penalised.texts
    assert penalised.nfe["demasker_calls"] == plain.nfe["demasker_calls"] == 16
    baseline = pipe(mode="mdm", num_samples=1, gen_length=64, steps=16).texts[0]
    longer = pipe(mode="mdm", num_samples=1, gen_length=64, steps=16, eos_penalty=4.0).texts[0]
    assert 0 < len(baseline.strip()) < len(longer.strip()), (baseline, longer)
