"""Behaviour unchanged, proven: a fixed set of calls on the shipped pipeline (and a tiny one with distilled priors)
gives exactly the tokens and NFE recorded in `tests/data/reference_calls.json` (see `reference_calls.py`)."""

import json
import math

import pytest

from reference_calls import RECORD, run_all


@pytest.fixture(scope="module")
def results():
    return run_all()


@pytest.mark.parametrize("name", sorted(json.loads(RECORD.read_text())))
def test_a_reference_call_gives_its_recorded_tokens_and_nfe(results, name):
    expected = json.loads(RECORD.read_text())[name]
    got = results[name]
    assert got["sequences"] == expected["sequences"]
    assert got["texts"] == expected["texts"]
    assert got["nfe"].keys() == expected["nfe"].keys()
    for key, value in expected["nfe"].items():
        assert math.isclose(got["nfe"][key], value, rel_tol=1e-9, abs_tol=1e-12), key
