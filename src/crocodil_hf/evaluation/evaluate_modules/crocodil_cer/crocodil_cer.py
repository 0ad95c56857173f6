"""CER of crocodil_hf as an `evaluate` module (the computation is `crocodil_hf.evaluation.metrics.cer`).

Example:
    ```python
    >>> import evaluate
    >>> from crocodil_hf.evaluation.metrics import evaluate_module_path
    >>> cer = evaluate.load(evaluate_module_path("cer"))
    >>> cer.compute(predictions=["def f(x): return x"], references=["def f(y): return y"])["cer"]
    ```
"""

import datasets
import evaluate

from crocodil_hf.evaluation.metrics import cer


class CrocodilCER(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Micro-averaged character error rate: total character edits / total reference characters.",
            citation="",
            inputs_description="predictions: reconstructed texts; references: the texts they reconstruct.",
            features=datasets.Features(
                {"predictions": datasets.Value("string"), "references": datasets.Value("string")}
            ),
        )

    def _compute(self, predictions, references):
        return cer(references, predictions)
