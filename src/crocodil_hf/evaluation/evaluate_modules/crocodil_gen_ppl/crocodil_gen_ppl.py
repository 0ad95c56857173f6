"""Gen-PPL with unigram entropy of crocodil_hf as an `evaluate` module (`crocodil_hf.evaluation.metrics.gen_ppl`).

`scorer`: a `Scorer`, a causal LM directory or Hub id, or `None` for the offline default (SmolLM2-135M-Instruct).

Example:
    ```python
    >>> import evaluate
    >>> from crocodil_hf.evaluation.metrics import evaluate_module_path
    >>> gen_ppl = evaluate.load(evaluate_module_path("gen_ppl"))
    >>> gen_ppl.compute(predictions=["import os\\nprint(os.getcwd())\\n"])["gen_ppl"]
    ```
"""

import datasets
import evaluate

from crocodil_hf.evaluation.metrics import gen_ppl
from crocodil_hf.evaluation.scorer import Scorer, load_scorer


class CrocodilGenPPL(evaluate.Metric):
    def _info(self):
        return evaluate.MetricInfo(
            description="Corpus-level generative perplexity under a scorer LM, with the mean unigram entropy.",
            citation="",
            inputs_description="predictions: generated texts; scorer (optional): the scoring causal LM.",
            features=datasets.Features({"predictions": datasets.Value("string")}),
        )

    def _compute(self, predictions, scorer=None, batch_size: int = 8):
        scorer = scorer if isinstance(scorer, Scorer) else load_scorer(scorer)
        return gen_ppl(scorer, predictions, batch_size=batch_size)
