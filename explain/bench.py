"""Speed of the whole explanation of one case against a naive baseline, in the same run.

FuseLens: every stage of :func:`fuselens.explain.pipeline.explain_case` with cached encoder features
and text SHAP at its default budget. Baseline: the same stages with no feature caching
(every model call re-encodes every modality) and text SHAP at shap's default budget (500),
each masked text re-running the whole model.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from fuselens.explain.pipeline import explain_case
from fuselens.explain.text_shap import DEFAULT_MAX_EVALS
from fuselens.model_zoo.case import PatientCase
from fuselens.model_zoo.contract import ExplainableModel

SHAP_DEFAULT_MAX_EVALS = 500


def _timed_run(model: ExplainableModel, case: PatientCase, **options: Any) -> tuple[float, dict]:
    t0 = time.perf_counter()
    bundle = explain_case(model, case, **options)
    return time.perf_counter() - t0, bundle.timings


def speed_benchmark(
    model: ExplainableModel,
    case: PatientCase,
    repeats: int = 5,
    baseline_repeats: int = 1,
    text_max_evals: int = DEFAULT_MAX_EVALS,
) -> dict[str, Any]:
    """Per-stage p50 seconds, total p50 and the baseline's total p50 (JSON-ready)."""
    _timed_run(model, case, text_max_evals=text_max_evals)  # warm-up
    totals, stages = [], {}
    for _ in range(repeats):
        total, timings = _timed_run(model, case, text_max_evals=text_max_evals)
        totals.append(total)
        for k, v in timings.items():
            stages.setdefault(k, []).append(v)
    base_totals, base_stages = [], {}
    for _ in range(baseline_repeats):
        total, timings = _timed_run(
            model, case, text_max_evals=SHAP_DEFAULT_MAX_EVALS, cached=False
        )
        base_totals.append(total)
        for k, v in timings.items():
            base_stages.setdefault(k, []).append(v)
    total_p50 = statistics.median(totals)
    base_p50 = statistics.median(base_totals)
    return {
        "case": case.case_id,
        "modalities": case.modalities(),
        "stages": {k: round(statistics.median(v), 4) for k, v in stages.items()},
        "total_p50_s": round(total_p50, 4),
        "baseline_stages": {k: round(statistics.median(v), 4) for k, v in base_stages.items()},
        "baseline_total_p50_s": round(base_p50, 4),
        "speedup": round(base_p50 / total_p50, 2),
        "text_max_evals": text_max_evals,
        "baseline_text_max_evals": SHAP_DEFAULT_MAX_EVALS,
        "repeats": repeats,
        "baseline_repeats": baseline_repeats,
        "device": str(model.device),
        "torch_threads": torch.get_num_threads(),
    }
