"""ECG from a CSV file: one column per lead, plus a time column or a sampling-rate comment."""

from __future__ import annotations

import csv
import io
import re
from pathlib import Path

import numpy as np

from fuselens.app.ingest import limits
from fuselens.app.ingest.errors import IngestError, guarded
from fuselens.app.ingest.leads import build_ecg, unit_scale_to_mv
from fuselens.app.ingest.report import Reading
from fuselens.app.ingest.text import encoding_warnings, read_text
from fuselens.model_zoo.case import ECG

TIME_COLUMNS = {"time": 1.0, "t": 1.0, "time_s": 1.0, "seconds": 1.0, "time_ms": 1e-3}
_META = re.compile(r"^#\s*(sampling_rate|sampling rate|fs|units?)\s*[=:]\s*([^\s,]+)", re.I)


def _comments(lines: list[str]) -> dict[str, str]:
    meta: dict[str, str] = {}
    for line in lines:
        match = _META.match(line.strip())
        if match:
            key = "units" if match.group(1).lower().startswith("unit") else "sampling_rate"
            meta[key] = match.group(2)
    return meta


def _number(text: str | None) -> float | None:
    try:
        return float(text) if text else None
    except ValueError:
        return None


def _table(path: Path, body: list[str]) -> tuple[list[str], np.ndarray]:
    rows = list(csv.reader(io.StringIO("\n".join(body))))
    rows = [r for r in rows if any(cell.strip() for cell in r)]
    if len(rows) < 2:
        raise IngestError(path, "ecg", "CSV holds no samples below its header")
    header = [h.strip() for h in rows[0]]
    data = np.empty((len(rows) - 1, len(header)), dtype=np.float64)
    for n, row in enumerate(rows[1:]):
        if len(row) != len(header):
            raise IngestError(
                path, "ecg", f"data row {n + 1}: {len(row)} fields, header has {len(header)}"
            )
        for j, cell in enumerate(row):
            text = cell.strip()
            try:
                data[n, j] = float(text) if text else np.nan
            except ValueError as exc:
                raise IngestError(
                    path, "ecg", f"data row {n + 1}, column {header[j]}: {text!r} is not a number"
                ) from exc
    return header, data


def _rate_from_time(path: Path, t: np.ndarray) -> float:
    steps = np.diff(t)
    if len(steps) == 0 or not np.isfinite(steps).all() or (steps <= 0).any():
        raise IngestError(path, "ecg", "time column is not strictly increasing")
    step = float(np.median(steps))
    if np.abs(steps - step).max() > 0.01 * step:
        raise IngestError(path, "ecg", "time column is not evenly spaced")
    return 1.0 / step


@guarded("ecg")
def read_ecg_csv(path: str | Path) -> Reading[ECG]:
    """Columns are leads (mV unless ``# units=uV``); rate from ``time`` or ``# sampling_rate=``."""
    path = Path(path)
    text, encoding = read_text(path, "ecg")
    lines = text.splitlines()
    meta = _comments([ln for ln in lines if ln.lstrip().startswith("#")])
    body = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    stated = _number(meta.get("sampling_rate"))
    limits.check_ecg(path, max(len(body) - 1, 0), body[0].count(",") + 1 if body else 0, stated)
    header, data = _table(path, body)
    time_cols = [j for j, h in enumerate(header) if h.lower() in TIME_COLUMNS]
    rate = stated
    if time_cols:
        j = time_cols[0]
        from_time = _rate_from_time(path, data[:, j] * TIME_COLUMNS[header[j].lower()])
        if rate is not None and abs(from_time - rate) > 0.01 * rate:
            raise IngestError(
                path, "ecg", f"time column says {from_time:g} Hz, comment says {rate:g} Hz"
            )
        rate = from_time if rate is None else rate
    if rate is None:
        raise IngestError(
            path,
            "ecg",
            "unknown sampling rate: add a 'time' column in seconds "
            "or a '# sampling_rate=500' comment line",
        )
    limits.check_ecg(path, data.shape[0], len(header), rate)
    unit = meta.get("units", "mV")
    scale = unit_scale_to_mv(unit)
    if scale is None:
        raise IngestError(path, "ecg", f"units {unit!r} is not a voltage unit")
    lead_cols = [j for j in range(len(header)) if j not in time_cols]
    signal = data[:, lead_cols].T * scale
    reading = build_ecg(path, signal, [header[j] for j in lead_cols], round(rate, 6))
    reading.details.update({"format": "CSV", "units": unit})
    reading.warnings.extend(encoding_warnings(encoding))
    return reading
