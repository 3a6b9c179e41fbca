"""Lead names to the 12 standard leads, and the checks every ECG reader shares."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from fuselens.app.ingest.errors import IngestError
from fuselens.app.ingest.report import Reading
from fuselens.model_zoo.case import ECG, STANDARD_LEADS

LIMB_LEADS = STANDARD_LEADS[:6]
PRECORDIAL_LEADS = STANDARD_LEADS[6:]
_BY_KEY = {name.lower(): name for name in STANDARD_LEADS}
# SCP-ECG (5.6.3-9-N) and MDC (2:N) lead codes share the numbering N.
_BY_CODE = {1: "I", 2: "II", 61: "III", 62: "aVR", 63: "aVL", 64: "aVF"}
_BY_CODE.update({2 + k: f"V{k}" for k in range(1, 7)})
UNIT_TO_MV = {"mv": 1.0, "uv": 1e-3, "µv": 1e-3, "μv": 1e-3, "v": 1e3}


def canonical_lead(label: str) -> str | None:
    """``"Lead I (Einthoven)"`` -> ``"I"``, ``"AVR"`` -> ``"aVR"``; None for other channels."""
    text = re.sub(r"\(.*?\)", "", label)
    text = re.sub(r"^\s*(mdc_ecg_lead_|lead)\s*", "", text, flags=re.IGNORECASE)
    key = re.sub(r"[\s_\-]", "", text).lower()
    return _BY_KEY.get(key)


def lead_from_code(code_value: str) -> str | None:
    """A lead from an SCP-ECG (``5.6.3-9-1``) or MDC (``2:1``) code value."""
    match = re.search(r"(?:5\.6\.3-9-|^2:)(\d+)$", code_value.strip())
    return _BY_CODE.get(int(match.group(1))) if match else None


def unit_scale_to_mv(unit: str) -> float | None:
    """Multiplier from ``unit`` to millivolts, None when the unit is not a voltage we know."""
    return UNIT_TO_MV.get(unit.strip().lower())


def _missing_warning(present: Sequence[str]) -> str | None:
    missing = [n for n in STANDARD_LEADS if n not in present]
    if not missing:
        return None
    if all(n in present for n in LIMB_LEADS) and missing == list(PRECORDIAL_LEADS):
        return "only the 6 limb leads: precordial leads V1, V2, V3, V4, V5, V6 are missing"
    return f"missing leads: {', '.join(missing)}"


def build_ecg(
    path: str | Path,
    signal_mv: np.ndarray,
    labels: Sequence[str],
    sampling_rate: float | None,
) -> Reading[ECG]:
    """Map ``labels`` to standard leads, order them canonically and check the signal.

    ``signal_mv`` is ``(channels, samples)`` in millivolts, one row per label.
    """
    if sampling_rate is None or not np.isfinite(sampling_rate) or sampling_rate <= 0:
        raise IngestError(path, "ecg", "unknown sampling rate")
    signal_mv = np.asarray(signal_mv, dtype=np.float64)
    if signal_mv.ndim != 2 or signal_mv.shape[0] != len(labels):
        raise IngestError(
            path, "ecg", f"signal shape {signal_mv.shape} does not match {len(labels)} lead names"
        )
    warnings: list[str] = []
    rows: dict[str, int] = {}
    extra: list[str] = []
    for i, label in enumerate(labels):
        name = canonical_lead(label)
        if name is None:
            extra.append(str(label))
        elif name in rows:
            warnings.append(f"lead {name} appears twice: the second copy ({label!r}) is ignored")
        else:
            rows[name] = i
    if not rows:
        raise IngestError(
            path, "ecg", f"no standard ECG leads among the channels: {', '.join(map(str, labels))}"
        )
    names = [n for n in STANDARD_LEADS if n in rows]
    signal = signal_mv[[rows[n] for n in names]]
    bad = [n for n, row in zip(names, signal, strict=True) if not np.isfinite(row).all()]
    if bad:
        raise IngestError(path, "ecg", f"NaN or infinite samples in leads {', '.join(bad)}")
    ecg = ECG(signal.astype(np.float32), float(sampling_rate), names)
    ecg.validate()
    missing = _missing_warning(names)
    if missing:
        warnings.append(missing)
    if extra:
        warnings.append(f"ignored channels that are not standard leads: {', '.join(extra)}")
    flat = ecg.flat_leads()
    if flat:
        warnings.append(f"flat leads (no signal; electrode off?): {', '.join(flat)}")
    details = {
        "shape": list(ecg.signal.shape),
        "leads": names,
        "sampling_rate": float(sampling_rate),
        "samples": int(ecg.signal.shape[1]),
        "duration_s": round(ecg.duration_s, 3),
    }
    return Reading(part=ecg, warnings=warnings, details=details)
