"""Shared tiny fixtures.

The Hub is never contacted: before anything imports `huggingface_hub` (which reads its endpoint once, at import),
`pytest_configure` points `HF_ENDPOINT` at a free port on 127.0.0.1, where the Hub tests start a local Hub-compatible
server (tests/hub_server.py), and `HF_HOME` at a temporary directory removed at the end of the session.
"""

import os
import shutil
import tempfile

import pytest
import torch

_HF_HOME = None


def pytest_configure(config):
    global _HF_HOME
    from hub_server import free_port

    for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "HF_DATASETS_OFFLINE"):
        os.environ.pop(name, None)  # "offline" would also block the loopback Hub; nothing else is reachable
    os.environ["CROCODIL_TEST_HUB_PORT"] = str(free_port())
    os.environ["HF_ENDPOINT"] = f"http://127.0.0.1:{os.environ['CROCODIL_TEST_HUB_PORT']}"
    _HF_HOME = tempfile.mkdtemp(prefix="crocodil-hf-home-")
    os.environ["HF_HOME"] = _HF_HOME
    os.environ["HF_TOKEN"] = "hf_crocodil_test_token"
    os.environ["HF_HUB_DISABLE_TELEMETRY"] = "1"
    torch.set_num_threads(min(2, torch.get_num_threads()))
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()


def pytest_unconfigure(config):
    if _HF_HOME:
        shutil.rmtree(_HF_HOME, ignore_errors=True)


VOCAB = 100
MASK_ID = 99


def tiny_llada_kwargs(**overrides) -> dict:
    kwargs = dict(
        d_model=64,
        n_heads=4,
        n_kv_heads=4,
        n_layers=2,
        mlp_hidden_size=96,
        vocab_size=VOCAB,
        embedding_size=112,
        mask_token_id=MASK_ID,
        eos_token_id=98,
        pad_token_id=98,
        bos_token_id=97,
        rope_theta=10000.0,
        max_sequence_length=256,
    )
    kwargs.update(overrides)
    return kwargs


def tiny_qwen3_backbone(**overrides) -> dict:
    kwargs = dict(
        model_type="qwen3",
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        num_key_value_heads=2,
        head_dim=8,
        intermediate_size=64,
        vocab_size=VOCAB,
        max_position_embeddings=256,
        pad_token_id=0,
        bos_token_id=1,
        eos_token_id=2,
    )
    kwargs.update(overrides)
    return kwargs


def tiny_bert_backbone(**overrides) -> dict:
    kwargs = dict(
        model_type="bert",
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=4,
        intermediate_size=64,
        vocab_size=VOCAB,
        max_position_embeddings=128,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    kwargs.update(overrides)
    return kwargs


@pytest.fixture
def llada_config():
    from crocodil_hf import LLaDAConfig

    return LLaDAConfig(**tiny_llada_kwargs())


@pytest.fixture
def guided_config():
    from crocodil_hf import GuidedLLaDAConfig

    return GuidedLLaDAConfig(**tiny_llada_kwargs(), num_registers=6, register_dim=32, prefix_rope_pairs=2)


@pytest.fixture
def generator():
    return torch.Generator().manual_seed(0)


@pytest.fixture(scope="module")
def pipe():
    """The random tiny pipeline (`crocodil_hf.testing.build_tiny_pipeline`), progress bars off, one per module."""
    from crocodil_hf.testing import build_tiny_pipeline

    pipe = build_tiny_pipeline()
    pipe.set_progress_bar_config(disable=True)
    return pipe


def gens(*seeds):
    """One generator per seed: per-sample generators for a pipeline call."""
    return [torch.Generator().manual_seed(s) for s in seeds]
