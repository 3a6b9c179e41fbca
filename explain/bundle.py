"""The explanation bundle: every map of one case, saved as ``bundle.json`` + ``arrays.npz``.

The JSON holds everything but arrays; each array is a reference into the NPZ (saved with its
dtype, so a loaded bundle is identical). Field names are the contract the app builds on
(see ``explain/README.md``).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

BUNDLE_JSON = "bundle.json"
BUNDLE_NPZ = "arrays.npz"
FORMAT_VERSION = 2


@dataclass
class TextAttribution:
    """Text SHAP: per word piece and per lab line (item)."""

    text: str
    tokens: list[str]
    token_values: np.ndarray  # (n_tokens,) float32
    token_spans: np.ndarray  # (n_tokens, 2) int64
    token_items: np.ndarray  # (n_tokens,) int64 index into items
    items: list[str]
    item_values: np.ndarray  # (n_items,) float32
    base_value: float
    full_value: float
    max_evals: int
    evals: int
    level: str = "word"  # "line": exact line values, spread evenly over each line's pieces


@dataclass
class ModalityMaps:
    """One map method's maps in [0, 1] in the case's own geometry."""

    method: str = ""
    ecg: np.ndarray | None = None  # (n_leads, n_samples)
    ecg_leads: list[str] = field(default_factory=list)
    ecg_rate_hz: float = 0.0
    echo: dict[str, np.ndarray] = field(default_factory=dict)  # view -> (F, H, W)
    cxr: np.ndarray | None = None  # (H, W)


@dataclass
class AttentionMaps:
    """The model's own attention matrices (rows attend to columns), titled, in its order."""

    titles: list[str]
    matrices: list[np.ndarray]
    rows: list[list[str]]
    columns: list[list[str]]
    block_shares: dict[str, float]


@dataclass
class ModalityShapley:
    """Exact modality Shapley values and pairwise interaction indices."""

    modalities: list[str]
    values: dict[str, float]
    interactions: np.ndarray  # (M, M)
    coalitions: dict[str, float]
    base_value: float
    full_value: float
    baseline: str
    efficiency_error: float


@dataclass
class GroundedSentence:
    text: str
    modality: str | None
    basis: str  # "section" (the sentence names its modality) or "attention"
    attention: dict[str, float]
    evidence: dict[str, Any]


@dataclass
class GroundedReport:
    text: str
    sentences: list[GroundedSentence]
    numbers: list[dict[str, Any]] = field(default_factory=list)  # each stated number's source
    checks: list[dict[str, Any]] = field(default_factory=list)  # withheld / added / disagreement


@dataclass
class ExplanationBundle:
    """Everything FuseLens shows about one case; fields of unfinished stages are ``None``."""

    case_id: str
    task: str
    target: str
    answers: list[str]
    modalities: list[str]
    prediction: dict[str, Any]
    probability: float
    model_name: str
    caveat: str
    device: str = "cpu"
    timings: dict[str, float] = field(default_factory=dict)
    stages: list[str] = field(default_factory=list)
    unavailable: dict[str, str] = field(default_factory=dict)  # panel -> why it is absent
    text: TextAttribution | None = None
    maps: dict[str, ModalityMaps] = field(default_factory=dict)  # map method -> its maps
    attention: AttentionMaps | None = None
    shapley: ModalityShapley | None = None
    report: GroundedReport | None = None
    measurements: dict[str, Any] = field(default_factory=dict)  # e.g. "ecg": neurokit2's

    def shown_maps(self, method: str | None = None) -> ModalityMaps | None:
        """The maps of ``method``, or of the first method that ran (``None``: none yet)."""
        if method is not None and method in self.maps:
            return self.maps[method]
        return next(iter(self.maps.values()), None)

    def summary(self) -> dict[str, Any]:
        """A short JSON-ready digest (for ``fuselens explain --json`` and logs)."""
        out: dict[str, Any] = {
            "case_id": self.case_id,
            "task": self.task,
            "target": self.target,
            "probability": self.probability,
            "modalities": self.modalities,
            "model": self.model_name,
            "device": self.device,
            "stages": self.stages,
            "unavailable": self.unavailable,
            "timings": {k: round(v, 4) for k, v in self.timings.items()},
            "caveat": self.caveat,
        }
        if self.shapley is not None:
            out["shapley"] = self.shapley.values
        if self.text is not None:
            order = np.argsort(-self.text.item_values)[:3]
            out["top_lab_items"] = [self.text.items[i] for i in order]
        if self.report is not None:
            out["report"] = [
                {"sentence": s.text, "modality": s.modality} for s in self.report.sentences
            ]
        return out

    def save(self, out_dir: str | Path) -> Path:
        """Write ``bundle.json`` and ``arrays.npz`` into ``out_dir``; returns the folder."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        arrays: dict[str, np.ndarray] = {}
        blob = {"format_version": FORMAT_VERSION, "bundle": _encode(self, "bundle", arrays)}
        (out / BUNDLE_JSON).write_text(
            json.dumps(blob, indent=1, ensure_ascii=False) + "\n", encoding="utf-8"
        )
        np.savez_compressed(out / BUNDLE_NPZ, **arrays)
        return out

    @classmethod
    def load(cls, out_dir: str | Path) -> ExplanationBundle:
        """Read a bundle written by :meth:`save`."""
        folder = Path(out_dir)
        blob = json.loads((folder / BUNDLE_JSON).read_text(encoding="utf-8"))
        if blob.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{folder}: bundle format {blob.get('format_version')!r} unknown")
        with np.load(folder / BUNDLE_NPZ, allow_pickle=False) as npz:
            arrays = {k: npz[k] for k in npz.files}
        bundle = _decode(blob["bundle"], arrays)
        if not isinstance(bundle, cls):
            raise ValueError(f"{folder}: not an explanation bundle")
        return bundle


_TYPES = {
    t.__name__: t
    for t in (
        TextAttribution,
        ModalityMaps,
        AttentionMaps,
        ModalityShapley,
        GroundedSentence,
        GroundedReport,
        ExplanationBundle,
    )
}


def _encode(obj: Any, path: str, arrays: dict[str, np.ndarray]) -> Any:
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        out = {"__type__": type(obj).__name__}
        for f in dataclasses.fields(obj):
            out[f.name] = _encode(getattr(obj, f.name), f"{path}.{f.name}", arrays)
        return out
    if isinstance(obj, np.ndarray):
        arrays[path] = obj
        return {"__array__": path}
    if isinstance(obj, dict):
        if not all(isinstance(k, str) for k in obj):
            raise TypeError(f"{path}: only string keys can be saved")
        return {k: _encode(v, f"{path}.{k}", arrays) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_encode(v, f"{path}.{i}", arrays) for i, v in enumerate(obj)]
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, str | int | float | bool):
        return obj
    raise TypeError(f"{path}: cannot save a {type(obj).__name__}")


def _decode(obj: Any, arrays: dict[str, np.ndarray]) -> Any:
    if isinstance(obj, dict):
        if "__array__" in obj:
            return arrays[obj["__array__"]]
        if "__type__" in obj:
            cls = _TYPES[obj["__type__"]]
            return cls(**{k: _decode(v, arrays) for k, v in obj.items() if k != "__type__"})
        return {k: _decode(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_decode(v, arrays) for v in obj]
    return obj
