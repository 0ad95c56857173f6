"""`benchmarks/prior_steps.py`'s `recommend`: the rule that picks the shipped prior sampler (issue 17, deliverable 4)."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
prior_steps = pytest.importorskip("prior_steps")

REFERENCE_PRDC = {"precision": 0.90, "recall": 0.95, "density": 0.60, "coverage": 0.76}
NOISE = {"con_then_disc": 0.10, "con_within_disc": 0.10}


def _pair(solver, steps, share, mauve=(0.50, 0.50), gen_ppl=(150.0, 150.0), **prdc):
    values = {f"register_{k}": v for k, v in {**REFERENCE_PRDC, **prdc}.items()}
    return [
        {
            "solver": solver,
            "prior_steps": steps,
            "mode": mode,
            "mauve": m,
            "gen_ppl": ppl,
            "prior_flop_share": share * (i + 1),
            **values,
        }
        for i, (mode, m, ppl) in enumerate(zip(prior_steps.MODES, mauve, gen_ppl))
    ]


def test_the_cheapest_setting_no_worse_than_the_reference_is_recommended():
    reference = _pair("ddim", 50, 0.40)
    rows = (
        _pair("dpmsolver++", 2, 0.01, recall=0.80)  # collapsed towards the mean: recall 0.15 below
        + _pair("dpmsolver++", 4, 0.02, recall=0.98, density=0.63)  # better coverage of the registers: passes
        + _pair("unipc", 3, 0.015, precision=0.87)  # spread out: precision 0.03 below
        + _pair("unipc", 2, 0.012, mauve=(0.50, 0.35))  # MAUVE 0.15 below, more than the noise
        + _pair("dpmsolver++", 16, 0.07)
    )
    # a point measured for PRDC and cost alone (not a `--downstream-steps` one) is never recommended
    rows += [{k: v for k, v in row.items() if k not in ("mauve", "gen_ppl")} for row in _pair("unipc", 1, 0.005)]
    chosen = prior_steps.recommend(rows, reference, NOISE)
    assert chosen == {
        "solver": "dpmsolver++",
        "prior_steps": 4,
        "conditional_prior_steps": 4,
        "prior_flop_share": 0.04,
    }
    # Gen-PPL held to its measured spread: 4 steps now fail on ConWithinDisc (30 above, spread 20), 16 steps pass
    worse_ppl = [
        {**row, "gen_ppl": 180.0} if row["solver"] == "dpmsolver++" and row["prior_steps"] == 4 else row
        for row in rows
    ]
    assert prior_steps.recommend(worse_ppl, reference, NOISE, {"con_then_disc": 40.0, "con_within_disc": 20.0}) == {
        "solver": "dpmsolver++",
        "prior_steps": 16,
        "conditional_prior_steps": 16,
        "prior_flop_share": 0.14,
    }
    # nothing passes: no recommendation, the shipped default stays
    assert prior_steps.recommend(_pair("dpmsolver++", 2, 0.01, coverage=0.70), reference, NOISE) is None
