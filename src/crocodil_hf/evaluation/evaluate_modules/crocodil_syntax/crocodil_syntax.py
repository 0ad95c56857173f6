"""Syntax validity of crocodil_hf as an `evaluate` module (the computation is
`crocodil_hf.evaluation.metrics.syntax_validity`).

Example:
    ```python
    >>> import evaluate
    >>> from crocodil_hf.evaluation.metrics import evaluate_module_path
    >>> syntax = evaluate.load(evaluate_module_path("syntax"))
    >>> syntax.compute(predictions=["x = 1\n", "def f(:\n"])["syntax"]
    0.5
    ```
"""

import datasets
import evaluate

from crocodil_hf.evaluation.metrics import syntax_validity


class CrocodilSyntax(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="The fraction of programs Python parses (each cut after its last complete line, dedented).",
            citation="",
            inputs_description="predictions: generated programs.",
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions):
        return syntax_validity(predictions)
