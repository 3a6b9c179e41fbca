"""ECG from a NumPy ``.npy`` array with a sidecar ``<name>.json`` giving rate, leads and units."""

from __future__ import annotations

import json
from pathlib import Path
from tokenize import TokenError

import numpy as np

from fuselens.app.ingest import limits
from fuselens.app.ingest.errors import IngestError, describe, guarded
from fuselens.app.ingest.leads import build_ecg, unit_scale_to_mv
from fuselens.app.ingest.report import Reading
from fuselens.model_zoo.case import ECG, STANDARD_LEADS


def _sidecar(path: Path) -> dict:
    side = path.with_suffix(".json")
    if not side.is_file():
        raise IngestError(
            path,
            "ecg",
            f"unknown sampling rate: no sidecar {side.name} with "
            '{"sampling_rate": ..., "leads": [...], "units": "mV"}',
        )
    meta = json.loads(side.read_text(encoding="utf-8"))
    if not isinstance(meta, dict):
        raise IngestError(path, "ecg", f"sidecar {side.name} must hold a JSON object")
    return meta


@guarded("ecg")
def read_ecg_npy(path: str | Path) -> Reading[ECG]:
    """A 2-D array, (leads, samples) or (samples, leads), described by its sidecar JSON."""
    path = Path(path)
    meta = _sidecar(path)
    rate = meta.get("sampling_rate", meta.get("fs"))
    if not isinstance(rate, int | float) or isinstance(rate, bool):
        raise IngestError(path, "ecg", "unknown sampling rate: no numeric sampling_rate in sidecar")
    try:
        arr = np.load(path, allow_pickle=False, mmap_mode="r")
    except (ValueError, SyntaxError, EOFError, TokenError) as exc:  # damaged header, short file
        raise IngestError(path, "ecg", f"not a valid .npy array: {describe(exc)}") from exc
    if arr.ndim == 2:
        limits.check_ecg(path, max(arr.shape), min(arr.shape), float(rate))
    if arr.ndim != 2 or not np.issubdtype(arr.dtype, np.number):
        raise IngestError(path, "ecg", f"expected a 2-D numeric array, got {arr.dtype} {arr.shape}")
    warnings: list[str] = []
    leads = meta.get("leads")
    if leads is None:
        if len(STANDARD_LEADS) not in arr.shape:
            raise IngestError(path, "ecg", f"no lead names in the sidecar for an array {arr.shape}")
        leads = list(STANDARD_LEADS)
        warnings.append("no lead names in the sidecar: assumed the standard order I..V6")
    if not isinstance(leads, list) or not all(isinstance(x, str) for x in leads):
        raise IngestError(path, "ecg", "sidecar 'leads' must be a list of names")
    if arr.shape[0] == len(leads):
        signal = arr
    elif arr.shape[1] == len(leads):
        signal = arr.T
    else:
        raise IngestError(path, "ecg", f"array {arr.shape} does not match {len(leads)} lead names")
    unit = str(meta.get("units", "mV"))
    scale = unit_scale_to_mv(unit)
    if scale is None:
        raise IngestError(path, "ecg", f"units {unit!r} is not a voltage unit")
    reading = build_ecg(path, signal.astype(np.float64) * scale, leads, float(rate))
    reading.warnings.extend(warnings)
    reading.details.update({"format": "NPY", "units": unit})
    return reading
