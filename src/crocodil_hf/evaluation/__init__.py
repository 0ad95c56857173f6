"""Evaluation: the offline scorer, metrics (Gen-PPL, MAUVE, CER), NFE sweeps and plots, model cards (see
docs/architecture.md)."""
