"""Byte-level BPE tokenizers for from-scratch tiny demaskers, with the special tokens masked diffusion needs."""

from collections.abc import Iterable

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import PreTrainedTokenizerFast

SPECIAL_TOKENS = {"bos_token": "<|bos|>", "eos_token": "<|eos|>", "pad_token": "<|pad|>", "mask_token": "<|mask|>"}


def train_bpe_tokenizer(
    texts: Iterable[str], vocab_size: int = 8192, min_frequency: int = 2
) -> PreTrainedTokenizerFast:
    """Train a byte-level BPE tokenizer (GPT-2 style, whitespace kept) with BOS, EOS, PAD and MASK.

    The special tokens take ids 0–3 (`<|bos|>`, `<|eos|>`, `<|pad|>`, `<|mask|>`); `add_special_tokens=True`
    wraps a text as `<|bos|> text <|eos|>`.

    Example:
        ```python
        >>> tok = train_bpe_tokenizer(["def f(x):\\n    return x\\n"] * 10, vocab_size=300)
        >>> tok.mask_token_id, tok.decode(tok("x = 1")["input_ids"], skip_special_tokens=True)
        (3, 'x = 1')
        ```
    """
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(
            f"`vocab_size` must be >= {256 + len(SPECIAL_TOKENS)} for a byte-level BPE, got {vocab_size}."
        )
    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=min_frequency,
        special_tokens=list(SPECIAL_TOKENS.values()),
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tokenizer.train_from_iterator(texts, trainer=trainer)
    bos, eos = SPECIAL_TOKENS["bos_token"], SPECIAL_TOKENS["eos_token"]
    tokenizer.post_processor = processors.TemplateProcessing(
        single=f"{bos} $A {eos}",
        special_tokens=[(bos, tokenizer.token_to_id(bos)), (eos, tokenizer.token_to_id(eos))],
    )
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, **SPECIAL_TOKENS)


__all__ = ["SPECIAL_TOKENS", "train_bpe_tokenizer"]
