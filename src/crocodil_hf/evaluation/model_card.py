"""Model cards from sweep results: a `huggingface_hub.ModelCard` with `eval_results` in its metadata."""

import math
from pathlib import Path

from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .metrics import METRICS

TEMPLATE = Path(__file__).parent / "templates" / "modelcard_template.md"


def _fmt(value, digits: int = 3) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def _cell(metric, value) -> str:
    if value is not None and not math.isfinite(value):
        return "undefined"  # e.g. Gen-PPL when every sample is empty: no token to score
    return metric.format(value)


def _results_and_rows(sweep: dict, dataset_name: str, dataset_type: str) -> tuple[list[EvalResult], list[dict]]:
    """The Hub's `EvalResult`s (one per point and defined metric) and the card table's rows."""
    points = sweep["points"]
    eval_results, rows = [], []
    for point in points:
        metrics = point["metrics"]
        config_name = f"{point['mode']}-block{point['block_length']}-steps{point['steps']}"
        for metric in METRICS.values():
            # a metric undefined at this point (Gen-PPL of samples that are all empty: NaN) is no result to publish
            if metrics.get(metric.name) is None or not math.isfinite(metrics[metric.name]):
                continue
            eval_results.append(
                EvalResult(
                    task_type="text-generation",
                    task_name=f"{point['mode']} generation",
                    dataset_type=dataset_type,
                    dataset_name=dataset_name,
                    dataset_config=config_name,
                    metric_type=metric.name,
                    metric_name=f"{metric.label} ({config_name}, NFE {point['nfe']['total']:.1f})",
                    metric_value=round(float(metrics[metric.name]), 4),
                    metric_config=f"scorer={sweep.get('scorer')}",
                )
            )
        rows.append(
            {
                "mode": point["mode"],
                "block_length": point["block_length"],
                "steps": point["steps"],
                "nfe": _fmt(point["nfe"]["total"], 1),
                "cells": [_cell(metric, metrics.get(metric.name)) for metric in METRICS.values()],
            }
        )
    return eval_results, rows


def build_model_card(
    sweep: dict,
    model_name: str = "crocodil-python-tiny",
    *,
    repo_id: str = "crocodil-python-tiny",
    model_description: str = "",
    training_description: str = "",
    limitations: str = "",
    dataset_name: str = "CPython standard library (validation split by file hash)",
    dataset_type: str = "cpython-stdlib",
) -> ModelCard:
    """Build the card of a pipeline from a sweep JSON (`crocodil eval` output) and a description of its training.

    Every measured point becomes an `EvalResult` per registered metric (`metrics.METRICS`) whose config names the mode,
    block length and steps, so the Hub shows the NFE/quality trade-off.
    """
    points = sweep.get("points")
    if not points:
        raise ValueError("the sweep holds no measured points.")
    eval_results, rows = _results_and_rows(sweep, dataset_name, dataset_type)
    config = sweep.get("config", {})
    call_kwargs = config.get("call_kwargs") or {}
    temperature = config.get("temperature", 0.0)
    sampling = (
        f"temperature {temperature:g}"
        + (" (greedy)" if not temperature else "")
        + f", {call_kwargs.get('remasking', 'low_confidence')} remasking"
        + (f"; priors: {config['prior']}" if config.get("prior") else "")
        + "".join(f"; {k} {v}" for k, v in call_kwargs.items() if k != "remasking")
    )
    card_data = ModelCardData(
        language="code",
        license="apache-2.0",
        library_name="crocodil_hf",
        model_name=model_name,
        tags=["crocodil", "masked-diffusion", "llada", "text-generation", "code"],
        datasets=[dataset_type],
        pipeline_tag="text-generation",
        eval_results=eval_results,
    )
    return ModelCard.from_template(
        card_data,
        template_path=str(TEMPLATE),
        model_name=model_name,
        repo_id=repo_id,
        gen_length=config.get("gen_length", 64),
        example_steps=max(1, int(config.get("gen_length", 64)) // 4),
        model_description=model_description or "See `model_index.json` for the components.",
        training_description=training_description or "Not recorded.",
        eval_command=sweep.get("command", "crocodil eval"),
        scorer=sweep.get("scorer"),
        num_samples=config.get("num_samples"),
        sampling=sampling,
        references=sweep.get("references", {}).get("description", "held-out programs"),
        rows=rows,
        metric_labels=[metric.label for metric in METRICS.values()],
        limitations=limitations or "A research artefact; samples are not guaranteed to run.",
    )


def minimal_card(folder: str | Path, repo_id: str) -> ModelCard:
    """A card for a directory pushed without one: what it is (pipeline or stage) and how it was trained."""
    import json

    folder = Path(folder)
    kind = "CrocodilPipeline" if (folder / "model_index.json").exists() else "crocodil_hf stage output"
    record = folder / "training_complete.json"
    training = json.loads(record.read_text()) if record.exists() else None
    data = ModelCardData(library_name="crocodil_hf", tags=["crocodil", "masked-diffusion"], license="apache-2.0")
    body = f"# {repo_id}\n\nA {kind} built with crocodil_hf (CRoCoDiL, arXiv 2603.20210).\n"
    if training is not None:
        body += f"\n## Training\n\n```json\n{json.dumps(training, indent=2, default=str)}\n```\n"
    return ModelCard(f"---\n{data.to_yaml()}\n---\n\n{body}")


__all__ = ["build_model_card", "minimal_card"]
