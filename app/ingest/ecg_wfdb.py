"""ECG from a WFDB record (``.hea`` header + ``.dat`` signal), as PTB-XL ships it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import wfdb

from fuselens.app.ingest import limits
from fuselens.app.ingest.errors import IngestError, describe, guarded
from fuselens.app.ingest.leads import build_ecg, unit_scale_to_mv
from fuselens.app.ingest.report import Reading
from fuselens.model_zoo.case import ECG

# what wfdb raises on a damaged header or a signal file that does not match it
DAMAGED = (ValueError, IndexError, KeyError, TypeError)  # HeaderSyntaxError is a ValueError


@guarded("ecg")
def read_ecg_wfdb(path: str | Path) -> Reading[ECG]:
    """A WFDB record given its ``.hea`` (or ``.dat``) path; physical units converted to mV."""
    path = Path(path)
    base = path.with_suffix("") if path.suffix.lower() in {".hea", ".dat"} else path
    header = base.with_suffix(".hea")
    if not header.is_file():
        raise IngestError(path, "ecg", f"WFDB header {header.name} not found")
    try:
        head = wfdb.rdheader(str(base))
    except DAMAGED as exc:
        raise IngestError(path, "ecg", f"not a valid WFDB header: {describe(exc)}") from exc
    limits.check_ecg(path, int(head.sig_len or 0), int(head.n_sig or 0), float(head.fs or 0))
    try:
        record = wfdb.rdrecord(str(base))
    except FileNotFoundError as exc:
        raise IngestError(path, "ecg", f"signal file {Path(exc.filename).name} not found") from exc
    except DAMAGED as exc:
        problem = f"signal file does not match its header: {describe(exc)}"
        raise IngestError(path, "ecg", problem) from exc
    if record.p_signal is None or record.p_signal.size == 0:
        raise IngestError(path, "ecg", "WFDB record holds no samples")
    signal = np.asarray(record.p_signal, dtype=np.float64).T
    warnings: list[str] = []
    for row, (name, unit) in enumerate(zip(record.sig_name, record.units, strict=True)):
        scale = unit_scale_to_mv(unit or "")
        if scale is None:
            warnings.append(f"lead {name}: unit {unit!r} not a voltage unit, taken as mV")
            scale = 1.0
        signal[row] *= scale
    reading = build_ecg(path, signal, list(record.sig_name), float(record.fs or 0) or None)
    reading.warnings.extend(warnings)
    reading.details.update({"format": "WFDB", "record": base.name})
    return reading
