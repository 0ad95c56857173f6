"""Offline evaluation: Gen-PPL with entropy, MAUVE, CER, the NFE sweep with plots, and model cards."""

import json
import math
import random

import pytest
import torch

from crocodil_hf.evaluation.metrics import cer, gen_ppl, mauve_score, unigram_entropy
from crocodil_hf.evaluation.model_card import build_model_card
from crocodil_hf.evaluation.sweep import check_sweep, plot_sweep, run_sweep, write_sweep
from crocodil_hf.testing import TINY_CORPUS, build_tiny_pipeline


@pytest.fixture(scope="session")
def scorer(tmp_path_factory):
    from crocodil_hf.evaluation.scorer import load_scorer, smollm2_gguf_path

    try:
        smollm2_gguf_path()
    except FileNotFoundError as err:
        pytest.skip(str(err))
    import os

    cache = os.environ.get("CROCODIL_CACHE")  # reuse a converted scorer when the environment provides one
    return load_scorer(cache_dir=None if cache else tmp_path_factory.mktemp("scorer-cache"))


@pytest.fixture(scope="session")
def programs():
    from crocodil_hf.data.corpus import read_source_files, split_program, stdlib_dir
    from crocodil_hf.data.tokenizer import train_bpe_tokenizer

    tok = train_bpe_tokenizer(TINY_CORPUS * 5, vocab_size=300)
    pieces = []
    for _, text in read_source_files(stdlib_dir() / "json"):
        pieces.extend(p for p in split_program(text, tok, 120) if len(p) > 80)
    random.Random(0).shuffle(pieces)
    assert len(pieces) >= 48
    return pieces[:48]


def shuffle_tokens(scorer, text: str, seed: int) -> str:
    ids = scorer.tokenizer(text, add_special_tokens=False)["input_ids"]
    random.Random(seed).shuffle(ids)
    return scorer.tokenizer.decode(ids)


def test_gen_ppl_of_real_code_is_far_below_shuffled_code(scorer, programs):
    real = gen_ppl(scorer, programs[:8])
    shuffled = gen_ppl(scorer, [shuffle_tokens(scorer, t, i) for i, t in enumerate(programs[:8])])
    assert real["scorer"] == "smollm2-135m-instruct" and real["num_tokens"] > 100
    assert real["gen_ppl"] < 0.25 * shuffled["gen_ppl"], (real, shuffled)
    # shuffling keeps the token multiset: the entropy is the same, only the order changed
    assert real["entropy"] == pytest.approx(shuffled["entropy"], rel=0.1)  # re-tokenising shifts it a little


def test_entropy_exposes_repetitive_text(scorer, programs):
    repeated = ["return x\n" * 30] * 4
    assert gen_ppl(scorer, repeated)["entropy"] < 0.5 * gen_ppl(scorer, programs[:4])["entropy"]
    assert unigram_entropy([1, 1, 1, 1]) == 0.0
    assert unigram_entropy([1, 2]) == pytest.approx(0.6931, abs=1e-4)


def test_empty_generations_are_counted_not_dropped(scorer, programs):
    result = gen_ppl(scorer, ["", programs[0], "   "])
    assert result["num_samples"] == 3 and result["num_empty"] == 2


def test_mauve_separates_real_from_shuffled(scorer, programs):
    real_a, real_b = programs[:24], programs[24:48]
    shuffled = [shuffle_tokens(scorer, t, i) for i, t in enumerate(real_b)]
    same = mauve_score(scorer, real_b, real_a, num_buckets=4)
    different = mauve_score(scorer, shuffled, real_a, num_buckets=4)
    assert same["num_samples"] == 24 and same["settings"]["num_buckets"] == 4
    assert same["mauve"] > different["mauve"] + 0.3, (same["mauve"], different["mauve"])


def test_cer_matches_hand_computed_values():
    assert cer(["abcd"], ["abed"])["cer"] == pytest.approx(0.25)
    # micro-average: 1 edit over 2 + 4 reference characters, not the mean of per-pair rates
    assert cer(["ab", "cdef"], ["ab", "cxef"])["cer"] == pytest.approx(1 / 6)
    assert cer(["abc"], [""])["cer"] == pytest.approx(1.0)
    assert cer(["abc"], [""])["num_empty"] == 1


def test_bad_metric_inputs_raise():
    with pytest.raises(ValueError, match="empty"):
        cer([], [])
    with pytest.raises(ValueError, match="pair up"):
        cer(["a", "b"], ["a"])
    with pytest.raises(TypeError, match="list"):
        cer("abc", "abd")


def test_bad_metric_inputs_raise_with_scorer(scorer):
    with pytest.raises(ValueError, match="empty"):
        gen_ppl(scorer, [])
    with pytest.raises(ValueError, match="equally sized"):
        mauve_score(scorer, ["a"] * 5, ["b"] * 6)


@pytest.fixture(scope="module")
def sweep(scorer, tmp_path_factory):
    pipe = build_tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    references = {"texts": TINY_CORPUS[:4], "description": "4 tiny programs"}
    result = run_sweep(
        pipe,
        scorer,
        modes=["mdm", "con_then_disc", "con_within_disc", "autoencode"],
        steps=[4, 8],
        block_lengths=[16],
        gen_length=16,
        num_samples=4,
        batch_size=4,
        prior_steps=3,
        references=references,
    )
    out = tmp_path_factory.mktemp("sweep")
    return result, write_sweep(result, out), plot_sweep(result, out)


def test_sweep_writes_valid_json_and_plots(sweep):
    result, path, plots = sweep
    loaded = json.loads(path.read_text())
    assert loaded["scorer"] == "smollm2-135m-instruct" and loaded["config"]["num_samples"] == 4
    assert len(loaded["points"]) == 8
    for point in loaded["points"]:
        assert point["nfe"]["demasker_calls"] == point["steps"]
        assert "gen_ppl" in point["metrics"] and "entropy" in point["metrics"]
        assert ("cer" in point["metrics"]) == (point["mode"] == "autoencode")
        assert ("mauve" in point["metrics"]) == (point["mode"] != "autoencode")
    assert sorted(p.name for p in plots) == [
        "cer_vs_nfe.png",
        "gen_ppl_vs_nfe.png",
        "mauve_vs_nfe.png",
        "syntax_vs_nfe.png",
    ]
    for png in plots:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_model_card_from_sweep_validates(sweep, tmp_path):
    from huggingface_hub import ModelCard

    result, _, _ = sweep
    card = build_model_card(result, training_description="tiny random components")
    card.save(tmp_path / "README.md")
    reloaded = ModelCard.load(tmp_path / "README.md")
    results = reloaded.data.eval_results
    # (Gen-PPL, entropy, MAUVE, syntax) x 6 generation points, (Gen-PPL, entropy, CER, syntax) x 2
    assert len(results) == 4 * 6 + 4 * 2
    assert {r.metric_type for r in results} == {"gen_ppl", "entropy", "mauve", "cer", "syntax"}
    assert reloaded.data.library_name == "crocodil_hf"
    assert "| autoencode | 16 | 8 |" in reloaded.text
    assert "`crocodil demo --pipeline " in reloaded.text  # the card links the demo
    # Gen-PPL is undefined (NaN) when every sample is empty: no result published for it, "undefined" in the table
    empty = json.loads(json.dumps(result))
    empty["points"][0]["metrics"].update(gen_ppl=float("nan"), entropy=0.0)
    empty_card = build_model_card(empty)
    empty_card.save(tmp_path / "EMPTY.md")
    kept = ModelCard.load(tmp_path / "EMPTY.md").data.eval_results
    assert len(kept) == len(results) - 1 and all(math.isfinite(r.metric_value) for r in kept)
    assert ".nan" not in (tmp_path / "EMPTY.md").read_text() and "| undefined | 0.00 |" in empty_card.text
    with pytest.raises(ValueError, match="no measured points"):
        build_model_card({"points": []})


def test_sweep_passes_call_kwargs_to_every_pipeline_call():
    pipe = build_tiny_pipeline(conditional=False)
    references = {"texts": TINY_CORPUS[:2], "description": "2 tiny programs"}
    common = dict(modes=["mdm"], steps=[4], block_lengths=[16], gen_length=16, num_samples=2, references=references)
    with pytest.raises(ValueError, match="remasking"):  # reaches the pipeline's own input check
        run_sweep(pipe, None, call_kwargs={"remasking": "bogus"}, **common)
    with pytest.raises(ValueError, match="must not set"):
        run_sweep(pipe, None, call_kwargs={"steps": 3}, **common)


def test_sweep_rejects_bad_grids_before_compute():
    pipe = build_tiny_pipeline(conditional=False)
    with pytest.raises(ValueError, match="unknown mode"):
        check_sweep(pipe, ["bogus"], [4], [16], gen_length=16, num_samples=4, references=None)
    with pytest.raises(ValueError, match="conditional_prior"):
        check_sweep(pipe, ["con_within_disc"], [4], [16], gen_length=16, num_samples=4, references=None)
    with pytest.raises(ValueError, match="`steps` \\(6\\) must be a positive multiple"):
        check_sweep(pipe, ["mdm"], [6], [4], gen_length=16, num_samples=4, references=None)
    with pytest.raises(ValueError, match="num_registers"):  # every rule of a call: here k > K
        check_sweep(pipe, ["con_then_disc"], [4], [16], gen_length=16, num_samples=4, references=None,
                    call_kwargs={"num_registers": 99})  # fmt: skip
    # k is for the guided modes: the mdm points of the same sweep run without it
    check_sweep(pipe, ["mdm", "con_then_disc"], [4], [16], gen_length=16, num_samples=4, references=None,
                call_kwargs={"num_registers": 2})  # fmt: skip
    with pytest.raises(ValueError, match="references"):
        check_sweep(pipe, ["mdm"], [4], [16], gen_length=16, num_samples=8, references=["a"] * 3)
    torch.manual_seed(0)


def test_a_new_metric_is_one_registry_entry_read_by_the_sweep_plots_and_card(scorer, tmp_path, monkeypatch):
    from crocodil_hf.evaluation import metrics

    length = metrics.Metric(
        "chars", "samples scored", True, 1, plot_by="mode", compute=lambda c: {"chars": float(len(c.texts))}
    )
    monkeypatch.setitem(metrics.METRICS, "chars", length)
    pipe = build_tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    references = {"texts": TINY_CORPUS[:4], "description": "4 tiny programs"}
    result = run_sweep(pipe, scorer, modes=["mdm"], steps=[4], block_lengths=[16], gen_length=16, num_samples=4,
                       batch_size=4, prior_steps=2, references=references, compute_mauve=False)  # fmt: skip
    assert result["points"][0]["metrics"]["chars"] == 4.0
    assert "chars_vs_nfe.png" in {p.name for p in plot_sweep(result, tmp_path)}
    card = str(build_model_card(result, repo_id="org/x"))
    assert "- type: chars" in card and "samples scored |" in card and "| 4.0 |" in card


def test_metrics_load_as_evaluate_modules_offline_and_agree(scorer):
    import evaluate

    from crocodil_hf.evaluation.metrics import METRICS, evaluate_module_path

    refs, hyps = ["def f(x):\n    return x\n", "x = 1\n"], ["def f(y):\n    return y\n", "x = 2\n"]
    assert evaluate.load(evaluate_module_path("cer")).compute(predictions=hyps, references=refs) == cer(refs, hyps)
    ppl = evaluate.load(evaluate_module_path("gen_ppl")).compute(predictions=TINY_CORPUS[:4], scorer=scorer)
    assert ppl["gen_ppl"] == pytest.approx(gen_ppl(scorer, TINY_CORPUS[:4])["gen_ppl"])
    syntax = evaluate.load(evaluate_module_path("syntax")).compute(predictions=TINY_CORPUS[:4] + ["def f(:\n"])
    assert syntax == {"syntax": 0.8}
    assert all(m.evaluate_module for m in METRICS.values())  # every registered metric has its module
    with pytest.raises(ValueError, match="no evaluate module"):
        evaluate_module_path("bleu")


def test_reference_programs_of_a_corpus_the_pipeline_never_saw(tmp_path):
    """The validation split of a small outside corpus is too small; the error says so and names `split='all'`,
    which returns every program of it (both splits, no duplicates)."""
    from types import SimpleNamespace

    from crocodil_hf.data.tokenizer import train_bpe_tokenizer
    from crocodil_hf.evaluation.sweep import reference_programs

    pipe = SimpleNamespace(tokenizer=train_bpe_tokenizer(TINY_CORPUS * 5, vocab_size=300))
    corpus = tmp_path / "outside"
    corpus.mkdir()
    for i in range(12):
        (corpus / f"m{i}.py").write_text(f"def f_{i}(x):\n    return x + {i}\n")
    with pytest.raises(ValueError, match=r"validation split of .*outside.*--corpus-split all"):
        reference_programs(pipe, 12, 32, str(corpus))
    refs = reference_programs(pipe, 12, 32, str(corpus), split="all")
    assert sorted(refs["texts"]) == sorted(f"def f_{i}(x):\n    return x + {i}\n" for i in range(12))
    assert refs["description"] == f"12 programs of {corpus} (<= 32 tokens)"
    with pytest.raises(ValueError, match="only 12 programs .*13 requested; ask for fewer"):
        reference_programs(pipe, 13, 32, str(corpus), split="all")


def test_syntax_counts_programs_python_parses_after_their_last_complete_line():
    from crocodil_hf.evaluation.metrics import METRICS, syntax_validity

    texts = [
        "import os\nprint(os.getcwd())\nfor i in (",  # the unfinished last line is cut: parses
        "        return x\n",  # inside a block: dedented, parses
        "def f(:\n    pass\n",  # does not parse
        "",  # empty: does not parse
    ]
    assert syntax_validity(texts)["syntax"] == 0.5
    assert syntax_validity(["x = (\n"])["syntax"] == 0.0
    assert METRICS["syntax"].applies_to("con_within_disc") and METRICS["syntax"].plot_by == "mode"
