"""The canvas of a call and the text around it: tokens in, the layout of `[PAD…] [BOS] prompt [MASK × L] suffix
[PAD…]`, what the encoder sees of it (h_φ(x_t) reads the visible tokens only, App. E), and tokens out.

`TextCanvas` holds the tokenizers and special tokens; `CanvasLayout` is where the generated span lies in a canvas and
how the padding of a prompted batch is hidden (so that a sample's result does not depend on its batch).

**Healed boundaries.** A prompt cut where the tokenizer never cuts (at a line start, mid-identifier, after a space)
ends with a token the whole program would not have: this tokenizer merges a newline with the next line's indentation
(`"\n   "` is one token) and a space with the next word (`" if"`). `TextCanvas.heal` finds, by tokenizing the prompt
followed by probe continuations, the last token boundary of the prompt that no continuation moves; the characters
after it (`start`) leave the prompt, and the span's first token must start with them. Likewise the suffix's first
characters whose token depends on what precedes them (`end`, e.g. the indentation of a line) leave the suffix, and a
masked slot before the suffix must end with them. Tokens of the healed prompt + the true span + the healed suffix are
then the tokens of the whole program (`tests/test_healing.py` checks it at random cut points of real programs).
"""

import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field

import torch
from torch.nn.utils.rnn import pad_sequence

# continuations that probe which of a prompt's last tokens a following text may merge into, and prefixes that probe
# which of a suffix's first tokens the text before it may merge into
PROBE_AFTER = ("a", " a", "1", " 1", "_", "(", " (", ".", ":", "=", " =", "'", '"', " ", "  ", "\n", "\n    a", "\t")
PROBE_BEFORE = ("a", " ", "  ", "1", "_", "(", ")", ":", "=", "'", '"', ".", "\n", "\n    ", "\t", "# x")
_TOKEN_STRINGS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


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
    # healed boundaries (`TextCanvas.heal`): per row, the text the span must start with and the text the slot before
    # the suffix must end with ("" where nothing was healed); the slot is the column right after the span
    starts: tuple[str, ...] | None = None
    ends: tuple[str, ...] | None = None
    allowed: dict[tuple[int, int], torch.Tensor] = field(default_factory=dict)  # (row, column) -> (V,) bool

    @property
    def span(self) -> slice:
        return slice(self.offset, self.offset + self.gen_length)

    @property
    def healed_end(self) -> bool:
        """Whether some row has a masked slot before its suffix (the last block then includes that column)."""
        return bool(self.ends) and any(self.ends)

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
        self, prompts: Sequence[str], suffixes: Sequence[str] | None, gen_length: int, heal: bool = True
    ) -> tuple[torch.Tensor, CanvasLayout]:
        """`[PAD…] [BOS] prompt [MASK × gen_length] suffix [PAD…]` per row: the left padding aligns the spans, the
        attention mask hides the padding and the position ids are those of each row alone. With `heal`, prompt and
        suffix are cut at healed boundaries (`heal`) and a row whose suffix lost its first characters gets a masked
        slot before it."""
        suffixes = list(suffixes) if suffixes is not None else [None] * len(prompts)
        parts = [
            self.healed_ids(p, s) if heal else (self.ids(p), "", "", self.ids(s or ""))
            for p, s in zip(prompts, suffixes)
        ]
        heads = [([self.bos] if self.bos is not None else []) + ids for ids, _, _, _ in parts]
        tails = [([self.mask_token_id] if end else []) + ids for _, _, end, ids in parts]
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
        starts, ends = tuple(part[1] for part in parts), tuple(part[2] for part in parts)
        allowed = {}
        for row, (start, end) in enumerate(zip(starts, ends)):
            if start:
                allowed[(row, width_head)] = self._tokens_where(lambda s, start=start: s.startswith(start))
            if end:
                allowed[(row, width_head + gen_length)] = self._tokens_where(lambda s, end=end: s.endswith(end))
        layout = CanvasLayout(
            offset=width_head,
            gen_length=gen_length,
            attention_mask=torch.tensor(mask, dtype=torch.long, device=self.device),
            position_ids=positions.clamp(min=0),
            left_pad=left_pad,
            starts=starts if heal else None,
            ends=ends if heal else None,
            allowed=allowed,
        )
        return canvas, layout

    def fit_context(self, prompt: str, suffix: str | None, budget: int) -> tuple[str, str | None]:
        """The lines of `prompt` and `suffix` nearest the span whose tokens fit `budget` (prompt + suffix): whole
        lines are dropped from the far ends, each time from the side that holds more tokens, so a long file is
        seen as the window around the span a short-context model was trained on. The line next to the span is
        always kept.

        Example:
            ```python
            >>> canvas = CrocodilPipeline.from_configs("crocodil-python-tiny").text_canvas
            >>> prompt, suffix = "import os\\n\\ndef f(x):\\n    y = x + 1\\n", "    return y\\n\\nprint(f(2))\\n"
            >>> canvas.fit_context(prompt, suffix, budget=12)
            ('    y = x + 1\\n', '    return y\\n\\n')
            ```
        """
        head = prompt.splitlines(keepends=True)
        tail = suffix.splitlines(keepends=True) if suffix else []
        sizes_head = [len(self.ids(line)) for line in head]
        sizes_tail = [len(self.ids(line)) for line in tail]
        while sum(sizes_head) + sum(sizes_tail) > budget and (len(head) > 1 or len(tail) > 1):
            if len(tail) > 1 and (sum(sizes_tail) >= sum(sizes_head) or len(head) <= 1):
                tail.pop(), sizes_tail.pop()
            else:
                head.pop(0), sizes_head.pop(0)
        return "".join(head), ("".join(tail) if suffix is not None else None)

    # ---------------------------------------------------------------- healed boundaries

    def token_strings(self) -> list[str]:
        """The text of every token id (special tokens included), computed once per tokenizer."""
        if self.tokenizer not in _TOKEN_STRINGS:
            ids = [[i] for i in range(len(self.tokenizer))]
            _TOKEN_STRINGS[self.tokenizer] = self.tokenizer.batch_decode(ids, skip_special_tokens=False)
        return _TOKEN_STRINGS[self.tokenizer]

    def _tokens_where(self, rule) -> torch.Tensor:
        """`(V,)` bool: the non-special tokens whose text satisfies `rule`."""
        special = set(self.tokenizer.all_special_ids)
        keep = [i not in special and rule(s) for i, s in enumerate(self.token_strings())]
        return torch.tensor(keep, dtype=torch.bool, device=self.device)

    def _spellable(self, text: str, at_start: bool) -> bool:
        """Whether one token can carry `text` at the start (or the end) of its own text."""
        strings = self.token_strings()
        return any(s.startswith(text) if at_start else s.endswith(text) for s in strings)

    def _pretoken_bounds(self, text: str) -> list[tuple[int, int]] | None:
        """Character spans of the pre-tokens of `text` (tokens never cross them), or None without a fast
        pre-tokenizer. Only the last pre-token of a prompt can change when text follows it, and only the first
        pre-token of a suffix when text precedes it."""
        backend = getattr(self.tokenizer, "backend_tokenizer", None)
        pre = getattr(backend, "pre_tokenizer", None) if backend is not None else None
        if pre is None or not text:
            return None
        return [span for _, span in pre.pre_tokenize_str(text)]

    def _probe_start(self, prompt: str) -> str | None:
        """The prompt's text after its last token boundary that no `PROBE_AFTER` continuation moves."""
        ids = self.ids(prompt)
        probes = [self.ids(prompt + probe) for probe in PROBE_AFTER]
        cut = next(c for c in range(len(ids), -1, -1) if all(p[:c] == ids[:c] for p in probes))
        head = self.tokenizer.decode(ids[:cut]) if cut else ""
        return prompt[len(head) :] if prompt.startswith(head) else None

    def _probe_end(self, suffix: str) -> str | None:
        """The suffix's text before its first token boundary that no `PROBE_BEFORE` prefix moves."""
        ids = self.ids(suffix)
        probes = [self.ids(probe + suffix) for probe in PROBE_BEFORE]
        cut = next(
            c
            for c in range(len(ids) + 1)
            if all(len(p) >= len(ids) - c and p[len(p) - len(ids) + c :] == ids[c:] for p in probes)
        )
        rest = self.tokenizer.decode(ids[cut:]) if cut < len(ids) else ""
        return suffix[: len(suffix) - len(rest)] if suffix.endswith(rest) else None

    def _pick(self, pretoken: str | None, probe, at_start: bool) -> str:
        """The boundary text to heal: the pre-token (exact), or within a run of whitespace the shorter text `probe()`
        finds (`"\n"` of `"\n\n\n"`: BPE splits whitespace runs alike whatever follows; the probes are tokenized
        only then); "" when no token carries it."""
        if pretoken is None:
            pretoken = probe()
        elif pretoken.isspace():
            probed = probe()
            if probed and probed.isspace() and len(probed) < len(pretoken) and self._spellable(probed, at_start):
                return probed
        return pretoken if pretoken and self._spellable(pretoken, at_start) else ""

    def heal(self, prompt: str, suffix: str | None) -> tuple[str, str, str, str]:
        """`(prompt kept, start, end, suffix kept)`: `prompt == kept + start`, `suffix == end + kept`.

        `start` is the prompt's last pre-token (tokens never cross pre-tokens, and only the last one can change when
        text follows), or within a whitespace run the shorter text after the last token boundary that no probe
        continuation moves (the last newline of a run of blank lines); `end` likewise at the suffix's start. Each is healed only
        when one token can carry it (the span's first token starts with `start`, the slot before the suffix ends with
        `end`); otherwise that side is tokenized as given (`start` or `end` is then "").

        Example:
            ```python
            >>> pipe.text_canvas.heal("def f(x):\n", "    return x\n")
            ('def f(x):', '\n', '   ', ' return x\n')
            ```
        """
        bounds = self._pretoken_bounds(prompt)
        start = self._pick(
            prompt[bounds[-1][0] :] if bounds else None, lambda: self._probe_start(prompt), at_start=True
        )
        end = ""
        if suffix:
            bounds = self._pretoken_bounds(suffix)
            end = self._pick(
                suffix[: bounds[0][1]] if bounds else None, lambda: self._probe_end(suffix), at_start=False
            )
        return prompt[: len(prompt) - len(start)], start, end, (suffix or "")[len(end) :]

    def healed_ids(self, prompt: str, suffix: str | None) -> tuple[list[int], str, str, list[int]]:
        """`(prompt ids, start, end, suffix ids)` of `heal`: the kept prompt's ids are the leading ids of the whole
        prompt's tokenization (as the whole program has them: a kept text re-tokenized alone could end otherwise,
        e.g. a blank line's newlines merged), and the kept suffix's ids the trailing ids of the suffix's."""
        _, start, end, _ = self.heal(prompt, suffix)
        head, tail = self.ids(prompt), self.ids(suffix) if suffix else []
        cut = 0  # the prompt's last tokens that spell `start` (it begins at a token boundary of the prompt)
        while cut < len(head) and len(self.tokenizer.decode(head[len(head) - cut :])) < len(start):
            cut += 1
        skip = 0  # the suffix's first tokens that spell `end`
        while skip < len(tail) and len(self.tokenizer.decode(tail[:skip])) < len(end):
            skip += 1
        return head[: len(head) - cut], start, end, tail[skip:]

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
        """Token ids → text, dropping everything from the first EOS on. Pad tokens (a span trained with
        `--prompt_span_pad` ends in them) carry no text and are dropped where they stand: measured, cutting at a
        stray pad shortened autoencoded programs (docs/results.md, "Spans of unknown length")."""
        texts = []
        for row in sequences.tolist():
            if self.eos is not None and self.eos in row:
                row = row[: row.index(self.eos)]
            row = [t for t in row if t != self.mask_token_id]
            texts.append(self.tokenizer.decode(row, skip_special_tokens=True))
        return texts

    def healed_texts(self, canvas: torch.Tensor, layout: CanvasLayout, texts: list[str]) -> list[str]:
        """The generated span of each row as text between the prompt and the suffix the caller gave: the span's text
        (cut at its first EOS) and the slot before a healed suffix, less the healed `start` and `end` characters
        that belong to the prompt and the suffix. `texts` (the span decoded alone) is returned where nothing was
        healed."""
        if layout.starts is None:
            return texts
        healed = []
        for row, (text, start, end) in enumerate(zip(texts, layout.starts, layout.ends)):
            if end:
                slot = int(canvas[row, layout.offset + layout.gen_length])
                text += self.tokenizer.decode([slot], skip_special_tokens=True)
            if text.startswith(start) and text.endswith(end) and len(text) >= len(start) + len(end):
                text = text[len(start) : len(text) - len(end)]
            healed.append(text)
        return healed

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
