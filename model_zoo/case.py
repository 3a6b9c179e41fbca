"""The canonical patient case: plain numpy arrays and metadata, no torch.

Every reader in ``app.ingest`` returns parts of a :class:`PatientCase`; every model and
explanation consumes one. Identifying DICOM fields live in :class:`Identifiers`, apart
from the clinical content, and are redacted from ``repr``, ``to_summary`` and logs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

MODALITIES: tuple[str, ...] = ("labs", "ecg", "echo", "cxr")
STANDARD_LEADS: tuple[str, ...] = tuple("I II III aVR aVL aVF V1 V2 V3 V4 V5 V6".split())
ECHO_VIEWS: tuple[str, ...] = ("A4C", "A2C", "PLAX")
MIN_ECG_RATE_HZ = 50.0
MAX_ECG_RATE_HZ = 20_000.0
MAX_ECG_ABS_MV = 20.0
MAX_IMAGE_PIXELS = 40_000_000


class CaseValidationError(ValueError):
    """A modality's content is not what the case contract allows."""

    def __init__(self, modality: str, problem: str):
        super().__init__(f"{modality}: {problem}")
        self.modality = modality
        self.problem = problem


def format_lab_value(value: float) -> str:
    """A lab value as a clinician writes it: no trailing zeros, integers without a point."""
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.6g}"


FLAG_WORDS = {"H": "high", "L": "low"}  # flags the model's lab text names after the unit


@dataclass
class LabItem:
    """One laboratory result. ``flag`` is ``"H"``, ``"L"``, ``"N"`` or ``""`` (no range)."""

    name: str
    value: float
    unit: str
    low: float | None = None
    high: float | None = None
    flag: str = ""

    def __post_init__(self) -> None:
        if not self.name.strip():
            raise CaseValidationError("labs", "a lab item has an empty name")
        if self.value is None or not math.isfinite(float(self.value)):
            raise CaseValidationError("labs", f"{self.name}: value is not a finite number")
        self.value = float(self.value)
        if not self.flag:
            self.flag = reference_flag(self.value, self.low, self.high)

    def sentence(self) -> str:
        """The TGMM textualisation, ``<name> of the patient is <value> <unit>``, plus the
        laboratory's flag as a word when the value is out of range (``(high)``/``(low)``)."""
        text = f"{self.name} of the patient is {format_lab_value(self.value)} {self.unit}".rstrip()
        word = FLAG_WORDS.get(self.flag)
        return f"{text} ({word})" if word else text


def reference_flag(value: float, low: float | None, high: float | None) -> str:
    """``H``/``L``/``N`` against a reference range, ``""`` when there is none."""
    if low is None and high is None:
        return ""
    if high is not None and value > high:
        return "H"
    if low is not None and value < low:
        return "L"
    return "N"


@dataclass
class Labs:
    """Laboratory results plus free-text history and medications."""

    items: list[LabItem] = field(default_factory=list)
    history: str = ""
    medications: str = ""

    def validate(self) -> None:
        if not self.items and not self.history.strip() and not self.medications.strip():
            raise CaseValidationError("labs", "no lab items, history or medications")
        names = [item.name.lower() for item in self.items]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise CaseValidationError("labs", f"duplicate lab items: {', '.join(dupes)}")

    def lines(self) -> list[str]:
        """One text line per lab item, then history and medications (the text the model reads)."""
        out = [f"{item.sentence()}." for item in self.items]
        if self.history.strip():
            out.append(f"History: {self.history.strip()}")
        if self.medications.strip():
            out.append(f"Medications: {self.medications.strip()}")
        return out

    def line_names(self) -> list[str]:
        """One name per line of :meth:`lines`: the item names, then History and Medications."""
        names = [item.name for item in self.items]
        if self.history.strip():
            names.append("History")
        if self.medications.strip():
            names.append("Medications")
        return names

    def textualise(self) -> str:
        return "\n".join(self.lines())


@dataclass
class ECG:
    """A multi-lead ECG: float32 ``(leads, samples)`` in millivolts."""

    signal: np.ndarray
    sampling_rate: float
    lead_names: list[str]

    def validate(self) -> None:
        sig = self.signal
        if not isinstance(sig, np.ndarray) or sig.ndim != 2:
            raise CaseValidationError("ecg", "signal must be a 2-D array (leads, samples)")
        if sig.dtype != np.float32:
            raise CaseValidationError("ecg", f"signal must be float32 mV, got {sig.dtype}")
        if sig.shape[0] != len(self.lead_names):
            raise CaseValidationError(
                "ecg", f"{sig.shape[0]} signal rows but {len(self.lead_names)} lead names"
            )
        unknown = [n for n in self.lead_names if n not in STANDARD_LEADS]
        if unknown:
            raise CaseValidationError("ecg", f"unknown lead names: {', '.join(unknown)}")
        if len(set(self.lead_names)) != len(self.lead_names):
            raise CaseValidationError("ecg", "duplicate lead names")
        rate = self.sampling_rate
        plausible = rate is not None and math.isfinite(rate)
        if not plausible or not MIN_ECG_RATE_HZ <= rate <= MAX_ECG_RATE_HZ:
            raise CaseValidationError("ecg", f"sampling rate {rate!r} Hz is not plausible")
        if sig.shape[1] < rate:
            raise CaseValidationError(
                "ecg", f"only {sig.shape[1]} samples: shorter than one second at {rate:g} Hz"
            )
        if not np.isfinite(sig).all():
            bad = [self.lead_names[i] for i in np.where(~np.isfinite(sig).all(axis=1))[0]]
            raise CaseValidationError("ecg", f"NaN or infinite samples in leads {', '.join(bad)}")
        peak = float(np.abs(sig).max()) if sig.size else 0.0
        if peak > MAX_ECG_ABS_MV:
            raise CaseValidationError(
                "ecg", f"amplitude {peak:.1f} exceeds {MAX_ECG_ABS_MV:g} mV: wrong units (µV?)"
            )

    @property
    def duration_s(self) -> float:
        return self.signal.shape[1] / self.sampling_rate

    def lead(self, name: str) -> np.ndarray:
        return self.signal[self.lead_names.index(name)]

    def flat_leads(self, min_std_mv: float = 1e-3) -> list[str]:
        """Leads with (almost) no signal: disconnected electrodes."""
        rows = zip(self.lead_names, self.signal, strict=True)
        return [n for n, row in rows if float(row.std()) < min_std_mv]

    def missing_leads(self) -> list[str]:
        return [n for n in STANDARD_LEADS if n not in self.lead_names]


@dataclass
class EchoCine:
    """One echocardiographic view: uint8 frames ``(F, H, W)``."""

    frames: np.ndarray
    frame_rate: float
    view: str = "unknown"
    pixel_spacing_mm: tuple[float, float] | None = None

    def validate(self) -> None:
        f = self.frames
        if not isinstance(f, np.ndarray) or f.ndim != 3:
            raise CaseValidationError("echo", f"{self.view}: frames must be (F, H, W)")
        if f.dtype != np.uint8:
            raise CaseValidationError("echo", f"{self.view}: frames must be uint8, got {f.dtype}")
        if f.shape[0] < 2:
            raise CaseValidationError(
                "echo", f"{self.view}: {f.shape[0]} frame(s): a cine loop needs at least 2"
            )
        if min(f.shape[1:]) < 16:
            raise CaseValidationError("echo", f"{self.view}: frame size {f.shape[1:]} too small")
        if f.shape[1] * f.shape[2] > MAX_IMAGE_PIXELS:
            raise CaseValidationError("echo", f"{self.view}: frame size {f.shape[1:]} too large")
        rate = self.frame_rate
        if not (rate and math.isfinite(rate) and 1 <= rate <= 1000):
            raise CaseValidationError(
                "echo", f"{self.view}: frame rate {self.frame_rate!r} is not plausible"
            )


@dataclass
class CXR:
    """A chest radiograph: float32 ``(H, W)`` in [0, 1], bone bright."""

    image: np.ndarray
    view_position: str = "PA"
    pixel_spacing_mm: tuple[float, float] | None = None

    def validate(self) -> None:
        img = self.image
        if not isinstance(img, np.ndarray) or img.ndim != 2:
            raise CaseValidationError("cxr", "image must be a 2-D array (H, W)")
        if img.dtype != np.float32:
            raise CaseValidationError("cxr", f"image must be float32, got {img.dtype}")
        if min(img.shape) < 32:
            raise CaseValidationError("cxr", f"image {img.shape} too small")
        if img.size > MAX_IMAGE_PIXELS:
            raise CaseValidationError(
                "cxr", f"image {img.shape[0]} x {img.shape[1]} exceeds {MAX_IMAGE_PIXELS:,} pixels"
            )
        if not np.isfinite(img).all() or img.min() < 0 or img.max() > 1:
            raise CaseValidationError("cxr", "intensities must be finite and in [0, 1]")


@dataclass
class Demographics:
    age: float | None = None
    sex: str = ""


class Identifiers:
    """Identifying DICOM fields, kept apart from the case and never shown by default."""

    def __init__(self, fields: dict[str, str] | None = None):
        self._fields: dict[str, str] = dict(fields or {})

    def update(self, fields: dict[str, str]) -> None:
        self._fields.update({k: v for k, v in fields.items() if v})

    def reveal(self) -> dict[str, str]:
        """The identifying fields themselves: call only when the user asks for them."""
        return dict(self._fields)

    def __len__(self) -> int:
        return len(self._fields)

    def __repr__(self) -> str:
        return f"Identifiers(<{len(self._fields)} fields redacted>)"

    __str__ = __repr__


@dataclass
class GroundTruth:
    """Planted truth for a synthetic case (absent for real patients)."""

    labels: dict[str, int] = field(default_factory=dict)
    findings: dict[str, list[str]] = field(default_factory=dict)
    report: str = ""
    masks: dict[str, Any] = field(default_factory=dict)
    grid_masks: dict[str, Any] = field(default_factory=dict)
    """The masks on the model's input grid (``model_zoo.evidence_targets``), for training."""
    cues: dict[str, bool] = field(default_factory=dict)
    """Spurious cues asked for when the cohort was written: modality -> planted here
    (``model_zoo.synth.cues``); empty for a cohort without cues."""
    measurements: dict[str, float] = field(default_factory=dict)
    """The planted quantities (``heart_rate``, ``qrs_ms``, ``ef``, ``ctr``, lab values)."""


@dataclass
class PatientCase:
    """One patient: whatever subset of labs, ECG, echo views and CXR is present."""

    case_id: str
    labs: Labs | None = None
    ecg: ECG | None = None
    echo: dict[str, EchoCine] = field(default_factory=dict)
    cxr: CXR | None = None
    demographics: Demographics = field(default_factory=Demographics)
    truth: GroundTruth | None = None
    identifiers: Identifiers = field(default_factory=Identifiers, repr=False)
    warnings: list[str] = field(default_factory=list)

    def modalities(self) -> list[str]:
        """Present modalities in canonical order."""
        present = {
            "labs": self.labs is not None,
            "ecg": self.ecg is not None,
            "echo": bool(self.echo),
            "cxr": self.cxr is not None,
        }
        return [m for m in MODALITIES if present[m]]

    def validate(self) -> None:
        if self.labs is not None:
            self.labs.validate()
        if self.ecg is not None:
            self.ecg.validate()
        for name, cine in self.echo.items():
            if name != cine.view:
                raise CaseValidationError("echo", f"view key {name!r} != cine view {cine.view!r}")
            cine.validate()
        if self.cxr is not None:
            self.cxr.validate()

    def to_summary(self) -> dict[str, Any]:
        """A JSON-safe description of what the case holds; never includes identifiers."""
        out: dict[str, Any] = {"case_id": self.case_id, "modalities": self.modalities()}
        if self.labs is not None:
            out["labs"] = {"items": [i.name for i in self.labs.items]}
        if self.ecg is not None:
            out["ecg"] = {
                "leads": list(self.ecg.lead_names),
                "sampling_rate": self.ecg.sampling_rate,
                "samples": int(self.ecg.signal.shape[1]),
            }
        if self.echo:
            out["echo"] = {
                v: {"frames": int(c.frames.shape[0]), "shape": list(c.frames.shape[1:])}
                for v, c in self.echo.items()
            }
        if self.cxr is not None:
            out["cxr"] = {"shape": list(self.cxr.image.shape), "view": self.cxr.view_position}
        if self.warnings:
            out["warnings"] = list(self.warnings)
        return out
