"""MAUVE with scorer features of crocodil_hf as an `evaluate` module (`crocodil_hf.evaluation.metrics.mauve_score`).

Example:
    ```python
    >>> import evaluate
    >>> from crocodil_hf.evaluation.metrics import evaluate_module_path
    >>> mauve = evaluate.load(evaluate_module_path("mauve"))
    >>> mauve.compute(predictions=samples, references=held_out)["mauve"]
    ```
"""

import datasets
import evaluate

from crocodil_hf.evaluation.metrics import mauve_score
from crocodil_hf.evaluation.scorer import Scorer, load_scorer


class CrocodilMAUVE(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="MAUVE between generated and reference texts, on the scorer's last-token hidden states.",
            citation="",
            inputs_description="predictions: generated texts; references: as many held-out texts; scorer (optional).",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references, scorer=None):
        scorer = scorer if isinstance(scorer, Scorer) else load_scorer(scorer)
        return mauve_score(scorer, predictions, references)
