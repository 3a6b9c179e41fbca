"""Explanation bundles on disk, keyed by what they depend on, so nothing is explained twice.

A key is the SHA-256 of the case's content (every array and lab value the model can read,
never its id or file names), the model's weights, the task, the class explained, the map
methods and the pipeline settings. Opening the same patient from another folder, another
run or another user's session finds the same entry.

An entry is a folder ``<root>/<key[:2]>/<key>/`` with the bundle (its maps stored as 8-bit
values in [0, 1], at most 1/510 from the computed map; everything else exact) and
``features.npz``, the case's maps on the common geometry of :mod:`fuselens.explain.cohort_maps`
plus its modality Shapley values, which the cohort summary reads without the full bundle.
Entries are written to a temporary folder and renamed into place: a reader never sees half
an entry, and of two writers of one key the second finds it present and leaves it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from fuselens.explain.bundle import BUNDLE_JSON, ExplanationBundle, ModalityMaps
from fuselens.explain.cohort_maps import common_maps
from fuselens.model_zoo.case import PatientCase

STORE_VERSION = 1
FEATURES = "features.npz"
QUANTUM = 255


def _update_array(h: Any, a: np.ndarray) -> None:
    a = np.ascontiguousarray(a)
    h.update(f"{a.dtype.str}{a.shape}".encode())
    h.update(a.tobytes())


def case_digest(case: PatientCase) -> str:
    """SHA-256 of what the model can read of ``case``: labs, demographics, ECG, echo, CXR."""
    h = hashlib.sha256(b"case-v1")
    if case.labs is not None:
        h.update(case.labs.textualise().encode("utf-8", "surrogateescape"))
    h.update(json.dumps(dataclasses.asdict(case.demographics), sort_keys=True).encode())
    if case.ecg is not None:
        h.update(f"ecg {case.ecg.sampling_rate} {case.ecg.lead_names}".encode())
        _update_array(h, case.ecg.signal)
    for view in sorted(case.echo):
        cine = case.echo[view]
        h.update(f"echo {view} {cine.frame_rate} {cine.pixel_spacing_mm}".encode())
        _update_array(h, cine.frames)
    if case.cxr is not None:
        h.update(f"cxr {case.cxr.view_position} {case.cxr.pixel_spacing_mm}".encode())
        _update_array(h, case.cxr.image)
    return h.hexdigest()


def _module(model: object) -> Any | None:
    import torch

    if isinstance(model, torch.nn.Module):
        return model
    for name in ("model", "net", "module"):
        inner = getattr(model, name, None)
        if isinstance(inner, torch.nn.Module):
            return inner
    return None


def model_digest(model: object) -> str:
    """SHA-256 of what decides the model's outputs: its class, its operating points (they
    decide its answers and so its report) and, for a PyTorch model, every parameter and
    buffer; a model without weights is known by its name. The name a model was loaded under
    ("demo" or its checkpoint's path) is not part of it, so both find the same bundles."""
    module = _module(model)
    h = hashlib.sha256(f"model {type(model).__module__}.{type(model).__qualname__}".encode())
    if module is None:
        h.update(f" {getattr(model, 'name', '')}".encode())
    points = getattr(model, "operating_points", None) or {}
    if points:
        h.update(json.dumps(points, sort_keys=True).encode())
    if module is not None:
        for name, tensor in module.state_dict().items():
            h.update(name.encode())
            _update_array(h, tensor.detach().cpu().contiguous().view(-1).numpy().view(np.uint8))
    return h.hexdigest()


def bundle_key(
    case: PatientCase | str,
    model: object | str,
    task: str,
    target: str,
    methods: Sequence[str],
    settings: dict[str, Any] | None = None,
) -> str:
    """The store key of one explanation; ``case`` and ``model`` may be given as digests."""
    blob = {
        "store": STORE_VERSION,
        "case": case if isinstance(case, str) else case_digest(case),
        "model": model if isinstance(model, str) else model_digest(model),
        "task": task,
        "target": target,
        "methods": list(methods),
        "settings": settings or {},
    }
    return hashlib.sha256(json.dumps(blob, sort_keys=True).encode()).hexdigest()


def _quantised(maps: ModalityMaps) -> ModalityMaps:
    def q(a: np.ndarray | None) -> np.ndarray | None:
        if a is None:
            return None
        return np.rint(np.clip(a, 0.0, 1.0) * QUANTUM).astype(np.uint8)

    return dataclasses.replace(
        maps, ecg=q(maps.ecg), cxr=q(maps.cxr), echo={v: q(a) for v, a in maps.echo.items()}
    )


def _restored(maps: ModalityMaps) -> ModalityMaps:
    def r(a: np.ndarray | None) -> np.ndarray | None:
        return None if a is None else (a.astype(np.float32) / QUANTUM)

    return dataclasses.replace(
        maps, ecg=r(maps.ecg), cxr=r(maps.cxr), echo={v: r(a) for v, a in maps.echo.items()}
    )


def case_features(bundle: ExplanationBundle, method: str | None = None) -> dict[str, np.ndarray]:
    """The bundle's maps on the common geometry and its modality Shapley values."""
    out = {f"map_{m}": a for m, a in common_maps(bundle.shown_maps(method)).items()}
    if bundle.shapley is not None:
        for m, v in bundle.shapley.values.items():
            out[f"shapley_{m}"] = np.float32(v)
    out["probability"] = np.float32(bundle.probability)
    return out


def entry_files(bundle: ExplanationBundle) -> dict[str, bytes]:
    """The files of a store entry as bytes (made where the bundle was computed, written
    where the store is)."""
    stored = dataclasses.replace(bundle, maps={m: _quantised(v) for m, v in bundle.maps.items()})
    with tempfile.TemporaryDirectory(prefix="fuselens-entry-") as tmp:
        folder = stored.save(tmp)
        np.savez_compressed(folder / FEATURES, **case_features(bundle))
        return {f.name: f.read_bytes() for f in folder.iterdir()}


class BundleStore:
    """A folder of explanation bundles keyed by :func:`bundle_key`."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, key: str) -> Path:
        if len(key) != 64 or any(c not in "0123456789abcdef" for c in key):
            raise ValueError(f"not a bundle key: {key!r}")
        return self.root / key[:2] / key

    def has(self, key: str) -> bool:
        return (self.path(key) / FEATURES).is_file()

    def put(self, key: str, bundle: ExplanationBundle) -> bool:
        """Store ``bundle`` under ``key``; ``False`` when the key was already stored."""
        return self.put_files(key, entry_files(bundle))

    def put_files(self, key: str, files: dict[str, bytes]) -> bool:
        """Store an entry made by :func:`entry_files`; ``False`` when already stored."""
        final = self.path(key)
        if self.has(key):
            return False
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{key[:8]}-", dir=final.parent))
        try:
            for name, data in files.items():
                (tmp / Path(name).name).write_bytes(data)
            try:
                os.rename(tmp, final)
            except OSError:
                if self.has(key):
                    return False
                raise
            return True
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def get(self, key: str, case_id: str | None = None) -> ExplanationBundle | None:
        """The stored bundle (under ``case_id`` when given), or ``None``."""
        if not self.has(key):
            return None
        bundle = ExplanationBundle.load(self.path(key))
        bundle.maps = {m: _restored(v) for m, v in bundle.maps.items()}
        if case_id is not None:
            bundle.case_id = case_id
        return bundle

    def header(self, key: str) -> dict[str, Any]:
        """The stored bundle's fields that are not arrays (prediction, modalities, timings,
        ...), read without its arrays."""
        blob = json.loads((self.path(key) / BUNDLE_JSON).read_text(encoding="utf-8"))
        return {
            k: v for k, v in blob["bundle"].items() if not isinstance(v, dict) or k == "prediction"
        }

    def features(self, key: str) -> dict[str, np.ndarray]:
        """The entry's ``features.npz``: ``map_<modality>``, ``shapley_<modality>``,
        ``probability``."""
        with np.load(self.path(key) / FEATURES, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}

    def size_bytes(self, keys: Iterable[str]) -> int:
        """Bytes on disk of the entries ``keys``."""
        total = 0
        for key in keys:
            for f in self.path(key).iterdir():
                total += f.stat().st_size
        return total
