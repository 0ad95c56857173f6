"""The canvas of a call and the text around it: tokens in, the layout of `[PAD…] [BOS] prompt [MASK × L] suffix
[PAD…]`, what the encoder sees of it (h_φ(x_t) reads the visible tokens only, App. E), and tokens out.

`TextCanvas` holds the tokenizers and special tokens; `CanvasLayout` is where the generated span lies in a canvas and
how the padding of a prompted batch is hidden (so that a sample's result does not depend on its batch).
"""

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch.nn.utils.rnn import pad_sequence


@dataclass(frozen=True)
class CanvasLayout:
    """Where the generated span lies: canvas positions `offset … offset + gen_length`. Prompted batches also carry
    the attention mask that hides the left padding aligning their spans, each row's own position ids, and the
    padding before each row's BOS."""

    offset: int
    gen_length: int
    attention_mask: torch.Tensor | None = None  # (B, n) 0 on padding
    position_ids: torch.Tensor | None = None  # (B, n) the positions a row would have alone
    left_pad: torch.Tensor | None = None  # (B,)

    @property
    def span(self) -> slice:
        return slice(self.offset, self.offset + self.gen_length)

    def demasker_inputs(self) -> dict[str, torch.Tensor]:
        """The padding-aware keyword arguments of a demasker call (none for an unpadded canvas)."""
        if self.attention_mask is None:
            return {}
        return {"attention_mask": self.attention_mask, "position_ids": self.position_ids}


class TextCanvas:
    """Tokenization around the demasker's canvas.

    Args:
        tokenizer: The demasker's tokenizer.
        mask_token_id: The demasker's mask token.
        eos_token_id: EOS when the tokenizer has none (the demasker's).
        encoder_tokenizer: The encoder's tokenizer when it differs from the demasker's.
        device: Where tensors are made.
    """

    def __init__(self, tokenizer, mask_token_id: int, eos_token_id: int | None, encoder_tokenizer=None, device=None):
        self.tokenizer = tokenizer
        self.encoder_tokenizer = encoder_tokenizer
        self.mask_token_id = mask_token_id
        self.device = device
        self.bos = getattr(tokenizer, "bos_token_id", None)
        eos = getattr(tokenizer, "eos_token_id", None)
        self.eos = eos_token_id if eos is None else eos
        self.pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.eos

    def ids(self, text: str) -> list[int]:
        """Token ids of a text, without special tokens."""
        return self.tokenizer(text, add_special_tokens=False)["input_ids"] if text else []

    def blank(self, num_samples: int, gen_length: int) -> tuple[torch.Tensor, CanvasLayout]:
        """`[BOS] [MASK × gen_length]` per row."""
        prefix = [self.bos] if self.bos is not None else []
        canvas = torch.full((num_samples, len(prefix) + gen_length), self.mask_token_id, dtype=torch.long)
        if prefix:
            canvas[:, 0] = self.bos
        return canvas.to(self.device), CanvasLayout(offset=len(prefix), gen_length=gen_length)

    def prompted(
        self, prompts: Sequence[str], suffixes: Sequence[str] | None, gen_length: int
    ) -> tuple[torch.Tensor, CanvasLayout]:
        """`[PAD…] [BOS] prompt [MASK × gen_length] suffix [PAD…]` per row: the left padding aligns the spans, the
        attention mask hides the padding and the position ids are those of each row alone."""
        heads = [([self.bos] if self.bos is not None else []) + self.ids(p) for p in prompts]
        tails = [self.ids(x) for x in suffixes] if suffixes is not None else [[] for _ in heads]
        width_head, width_tail = max(map(len, heads)), max(map(len, tails))
        rows, mask, left = [], [], []
        for head, tail in zip(heads, tails):
            pad_left, pad_right = width_head - len(head), width_tail - len(tail)
            rows.append(
                [self.pad] * pad_left + head + [self.mask_token_id] * gen_length + tail + [self.pad] * pad_right
            )
            mask.append([0] * pad_left + [1] * (len(head) + gen_length + len(tail)) + [0] * pad_right)
            left.append(pad_left)
        canvas = torch.tensor(rows, dtype=torch.long, device=self.device)
        left_pad = torch.tensor(left, dtype=torch.long, device=self.device)
        positions = torch.arange(canvas.shape[1], device=self.device)[None, :] - left_pad[:, None]
        layout = CanvasLayout(
            offset=width_head,
            gen_length=gen_length,
            attention_mask=torch.tensor(mask, dtype=torch.long, device=self.device),
            position_ids=positions.clamp(min=0),
            left_pad=left_pad,
        )
        return canvas, layout

    def fill_after_eos(self, canvas: torch.Tensor, layout: CanvasLayout) -> torch.Tensor:
        """Every position of a row's span after its first committed EOS becomes EOS (committed: not computed again)."""
        span = canvas[:, layout.span]
        is_eos = span == self.eos
        if self.eos is None or not bool(is_eos.any()):
            return canvas
        first = torch.where(is_eos.any(dim=1), is_eos.long().argmax(dim=1), layout.gen_length)
        after = torch.arange(layout.gen_length, device=canvas.device)[None, :] > first[:, None]
        canvas[:, layout.span] = torch.where(after, self.eos, span)
        return canvas

    def decode(self, sequences: torch.LongTensor) -> list[str]:
        """Token ids → text, dropping everything from the first EOS on."""
        texts = []
        for row in sequences.tolist():
            if self.eos is not None and self.eos in row:
                row = row[: row.index(self.eos)]
            row = [t for t in row if t != self.mask_token_id]
            texts.append(self.tokenizer.decode(row, skip_special_tokens=True))
        return texts

    def encoder_inputs(self, texts: Sequence[str], max_length: int | None = None) -> dict[str, torch.Tensor]:
        """Tokenise texts for the encoder: the encoder's own tokenizer, or the demasker's as `[BOS] text [EOS]`."""
        if self.encoder_tokenizer is not None:
            batch = self.encoder_tokenizer(
                list(texts), padding=True, truncation=max_length is not None, max_length=max_length,
                return_tensors="pt",
            )  # fmt: skip
            return {k: batch[k].to(self.device) for k in ("input_ids", "attention_mask")}
        rows = []
        for text in texts:
            ids = ([self.bos] if self.bos is not None else []) + self.ids(text) + [self.eos]
            rows.append(ids[:max_length] if max_length else ids)
        tensors = [torch.tensor(r, dtype=torch.long) for r in rows]
        input_ids = pad_sequence(tensors, batch_first=True, padding_value=self.pad)  # right padding
        attention_mask = pad_sequence([torch.ones_like(t) for t in tensors], batch_first=True, padding_value=0)
        return {"input_ids": input_ids.to(self.device), "attention_mask": attention_mask.to(self.device)}

    def visible_condition(self, canvas: torch.Tensor, layout: CanvasLayout) -> dict[str, torch.Tensor]:
        """Encoder inputs for h_φ(x_t): only the visible (unmasked) tokens count (App. E)."""
        if self.encoder_tokenizer is None and layout.left_pad is not None:
            # prompted batch: shift each row left past its padding (the encoder reads right-padded rows)
            n = canvas.shape[1]
            columns = torch.arange(n, device=canvas.device)[None, :]
            canvas = canvas.gather(1, (columns + layout.left_pad[:, None]).clamp(max=n - 1))
            attention = columns < layout.attention_mask.sum(dim=1, keepdim=True)
            visible = (canvas != self.mask_token_id) & attention
            return {
                "input_ids": torch.where(visible, canvas, 0),
                "attention_mask": attention.long(),
                "visible_mask": visible.long(),
            }
        visible = canvas != self.mask_token_id
        if self.encoder_tokenizer is None:
            return {"input_ids": torch.where(visible, canvas, 0), "visible_mask": visible.long()}
        inputs = self.encoder_inputs(self._visible_texts(canvas, visible))
        mask_id = getattr(self.encoder_tokenizer, "mask_token_id", None)
        if mask_id is not None:
            inputs["visible_mask"] = (inputs["input_ids"] != mask_id).long()
        return inputs

    def _visible_texts(self, canvas: torch.Tensor, visible: torch.Tensor) -> list[str]:
        """For an encoder with its own tokenizer: the visible spans decoded, each masked run one encoder mask token."""
        enc_mask = getattr(self.encoder_tokenizer, "mask_token", None) or ""
        texts = []
        for row, vis in zip(canvas.tolist(), visible.tolist()):
            pieces, span = [], []
            for token, seen in zip(row, vis):
                if seen:
                    span.append(token)
                    continue
                if span:
                    pieces.append(self.tokenizer.decode(span, skip_special_tokens=True))
                    span = []
                if not pieces or pieces[-1] != enc_mask:
                    pieces.append(enc_mask)
            if span:
                pieces.append(self.tokenizer.decode(span, skip_special_tokens=True))
            texts.append("".join(pieces))
        return texts


__all__ = ["CanvasLayout", "TextCanvas"]
