"""The extension point for map methods (the role of pytorch-grad-cam's ``BaseCAM`` and
captum's ``Attribution``).

A method is one module that defines a :class:`MapMethod` and registers it: it says which
modalities it applies to and what it needs of the model, runs on the shared
:class:`~fuselens.explain.context.CaseContext`, and returns a map shaped like the modality's
input (no batch axis). The pipeline's map stages, the bundle's ``maps`` and the workstation's
method picker all come from :data:`REGISTRY`.
"""

from __future__ import annotations

import numpy as np

from fuselens.explain.context import CaseContext

REGISTRY: dict[str, MapMethod] = {}


class MapMethod:
    """One explanation method that draws a map on a modality's input."""

    name: str = ""  # registry key, e.g. "gradcam_pp"
    label: str = ""  # what the workstation shows, e.g. "Grad-CAM++"
    modalities: tuple[str, ...] = ("ecg", "echo", "cxr")

    def unavailable(self, ctx: CaseContext, modality: str) -> str | None:
        """Why the method cannot run on this model and modality (``None``: it can)."""
        if modality not in self.modalities:
            return f"{self.label} does not apply to {modality}"
        return None

    def attribute(self, ctx: CaseContext, modality: str) -> np.ndarray:
        """Attribution of the explained answer, shaped like the modality's input."""
        raise NotImplementedError


def register(method: MapMethod) -> MapMethod:
    """Add ``method`` to :data:`REGISTRY` under its name (once)."""
    if not method.name or method.name in REGISTRY:
        raise ValueError(f"map method name {method.name!r} is empty or taken")
    REGISTRY[method.name] = method
    return method


def to_heat(a: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Positive evidence for the answer in [0, 1]: the positive part over its maximum, zero
    where the input is not real (missing leads and views)."""
    out = np.clip(np.nan_to_num(np.asarray(a, dtype=np.float64)), 0.0, None) * valid
    peak = float(out.max()) if out.size else 0.0
    return (out / peak if peak > 0 else out).astype(np.float32)
