"""FuseLens: an explainability workstation for multimodal cardiac and chest models.

The public API a user's own model and scripts import (see the README, "Explain your own
model"): the case, the model contract and its standard inputs, loading, and explaining.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fuselens.model_zoo.case import ECHO_VIEWS, MODALITIES, STANDARD_LEADS, PatientCase
    from fuselens.model_zoo.contract import (
        AttentionReader,
        Batch,
        CachedFeatures,
        ExplainableModel,
        GeneratedReport,
        GradientModel,
        ModelAttention,
        ReportWriter,
        capabilities,
    )
    from fuselens.model_zoo.standard_inputs import standard_batch

_SOURCES = (
    "fuselens.model_zoo.case",
    "fuselens.model_zoo.contract",
    "fuselens.model_zoo.standard_inputs",
)
"""Where the public names of ``__all__`` live: imported on first use, so that
``fuselens --help`` or ``fuselens inspect`` does not wait for PyTorch."""

__all__ = [
    "ECHO_VIEWS",
    "MODALITIES",
    "STANDARD_LEADS",
    "AttentionReader",
    "Batch",
    "CachedFeatures",
    "ExplainableModel",
    "GeneratedReport",
    "GradientModel",
    "ModelAttention",
    "PatientCase",
    "ReportWriter",
    "capabilities",
    "explain_case",
    "load_case",
    "load_model",
    "standard_batch",
]


def load_model(spec: str = "demo", device: str | None = None) -> ExplainableModel:
    """``"demo"``, a FuseLens checkpoint folder or ``"MODULE:FACTORY"`` as a model."""
    from fuselens.model_zoo.loading import load_explainable

    return load_explainable(spec, device)


def load_case(path: str):
    """A case folder (or one file) as a :class:`PatientCase` (identifiers kept apart)."""
    from fuselens.app.ingest import load_case as _load

    return _load(path)[0]


def explain_case(model: ExplainableModel, case: PatientCase, **options):
    """Every explanation the model's tier and capabilities allow, as one bundle."""
    from fuselens.explain.pipeline import explain_case as _explain

    return _explain(model, case, **options)


def __getattr__(name: str) -> Any:
    for source in _SOURCES if name in __all__ else ():
        module = importlib.import_module(source)
        if hasattr(module, name):
            globals()[name] = value = getattr(module, name)
            return value
    raise AttributeError(f"module 'fuselens' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
