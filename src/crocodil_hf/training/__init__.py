"""Training: loss-returning objective modules, the CrocodilTrainer, one module per stage (`stages/`), configs."""
