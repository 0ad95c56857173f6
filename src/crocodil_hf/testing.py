"""Test helpers: a tiny CrocodilPipeline from random components (for tests, docs and speed checks on a laptop CPU)
and the small program corpus it is built on. Not used by the library itself."""

import torch

from .data.tokenizer import train_bpe_tokenizer
from .modeling.configuration_crocodil import GuidedLLaDAConfig, RegisterEncoderConfig
from .modeling.modeling_guided_llada import GuidedLLaDAForMaskedLM
from .modeling.modeling_register_encoder import RegisterEncoderModel
from .modeling.modeling_register_prior import RegisterPriorTransformer
from .pipelines.pipeline_crocodil import CrocodilPipeline
from .schedulers.scheduling_register_prior import block_timestep_offsets, make_sampling_scheduler

TINY_CORPUS = [
    "def add(a, b):\n    return a + b\n",
    "def mul(a, b):\n    return a * b\n",
    "import os\nprint(os.getcwd())\n",
    "for i in range(10):\n    print(i)\n",
    "class Point:\n    def __init__(self, x, y):\n        self.x = x\n        self.y = y\n",
    "if x > 0:\n    y = x\nelse:\n    y = -x\n",
    "with open(path) as f:\n    data = f.read()\n",
    "return [x for x in items if x]\n",
]


def build_tiny_pipeline(
    seed: int = 0, num_registers: int = 4, d_model: int = 64, register_dim: int = 32, conditional: bool = True
) -> CrocodilPipeline:
    """Random tiny components sharing one byte-level BPE tokenizer (vocab ≈ 300)."""
    torch.manual_seed(seed)
    tokenizer = train_bpe_tokenizer(TINY_CORPUS * 4, vocab_size=300, min_frequency=2)
    vocab = len(tokenizer)
    demasker = GuidedLLaDAForMaskedLM(
        GuidedLLaDAConfig(
            d_model=d_model,
            n_heads=4,
            n_kv_heads=2,
            n_layers=2,
            mlp_hidden_size=2 * d_model,
            vocab_size=vocab,
            embedding_size=vocab,
            mask_token_id=tokenizer.mask_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            rope_theta=10000.0,
            max_sequence_length=512,
            num_registers=num_registers,
            register_dim=register_dim,
            prefix_rope_pairs=2,
        )
    ).eval()
    encoder = RegisterEncoderModel(
        RegisterEncoderConfig(
            backbone_config={
                "model_type": "llada",
                "d_model": register_dim,
                "n_heads": 4,
                "n_kv_heads": 4,
                "n_layers": 1,
                "mlp_hidden_size": 2 * register_dim,
                "vocab_size": vocab,
                "embedding_size": vocab,
                "mask_token_id": tokenizer.mask_token_id,
                "eos_token_id": tokenizer.eos_token_id,
                "pad_token_id": tokenizer.pad_token_id,
                "bos_token_id": tokenizer.bos_token_id,
                "rope_theta": 10000.0,
                "max_sequence_length": 512,
            },
            num_registers=num_registers,
        )
    ).eval()
    prior_kwargs = dict(
        num_registers=num_registers,
        register_dim=register_dim,
        hidden_size=32,
        num_layers=1,
        num_attention_heads=4,
        timestep_offsets=block_timestep_offsets(num_registers, 0.1),
    )
    prior = RegisterPriorTransformer(**prior_kwargs).eval()
    conditional_prior = (
        RegisterPriorTransformer(**prior_kwargs, cross_attention_dim=register_dim).eval() if conditional else None
    )
    for p in (prior, conditional_prior):
        if p is not None:  # zero-initialised outputs would make every sampled bank identical
            torch.nn.init.normal_(p.proj_out.weight, std=0.2)
    return CrocodilPipeline(
        demasker=demasker,
        encoder=encoder,
        prior=prior,
        scheduler=make_sampling_scheduler(),
        tokenizer=tokenizer,
        conditional_prior=conditional_prior,
    )


__all__ = ["TINY_CORPUS", "build_tiny_pipeline"]
