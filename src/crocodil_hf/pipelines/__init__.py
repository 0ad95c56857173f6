"""Pipelines and samplers. The names of the generation modes and remasking rules live here, torch-free, so that the
CLI checks them before anything loads."""

MODES = ("con_then_disc", "con_within_disc", "autoencode", "mdm")  # `CrocodilPipeline.__call__(mode=...)`
GENERATION_MODES = ("con_within_disc", "con_then_disc", "mdm")  # the modes that sample without an input text
REMASKING = ("low_confidence", "random")  # which candidates a `MaskedDiffusionScheduler` step commits
