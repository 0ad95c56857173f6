"""Data: program corpora built with `datasets` (files, saved datasets, Hub datasets, streaming) and byte-level BPE
tokenizers (see docs/architecture.md)."""
