"""A patient folder holding any mix of inputs -> one :class:`PatientCase` plus a report per file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from fuselens.app.ingest.detect import detect
from fuselens.app.ingest.echo_frames import natural_key
from fuselens.app.ingest.errors import IngestError, describe
from fuselens.app.ingest.report import FileReport
from fuselens.model_zoo.case import PatientCase

IGNORED_NAMES = {"evidence.npz", "truth.json", "manifest.json"}
PATIENT_KEYS = ("PatientID", "PatientName")


def read_file(path: str | Path) -> tuple[str, Any, FileReport]:
    """``(modality, part or None, report)`` for one file or frame folder; never raises."""
    path = Path(path)
    modality = "unknown"
    try:
        modality, reader = detect(path)
        reading = reader(path)
    except IngestError as exc:
        return exc.modality, None, FileReport(str(path), exc.modality, False, str(exc))
    except Exception as exc:  # the last line of defence: a file must not crash the app
        error = str(IngestError(path, modality, f"unexpected error: {describe(exc)}"))
        return modality, None, FileReport(str(path), modality, False, error)
    report = FileReport(
        path=str(path),
        modality=modality,
        ok=True,
        warnings=list(reading.warnings),
        details=dict(reading.details),
        identifiers=reading.identifiers,
    )
    if reading.demographics is not None:
        demo = {"age": reading.demographics.age, "sex": reading.demographics.sex}
        report.details["demographics"] = {k: v for k, v in demo.items() if v not in (None, "")}
    return modality, reading.part, report


def case_inputs(folder: str | Path) -> list[Path]:
    """The input files and frame folders of a case folder, naturally sorted."""
    folder = Path(folder)
    entries = sorted(folder.iterdir(), key=natural_key)
    names = {p.name.lower() for p in entries}
    out = []
    for entry in entries:
        name, suffix = entry.name.lower(), entry.suffix.lower()
        if name.startswith(".") or name in IGNORED_NAMES or suffix == ".md":
            continue
        if suffix == ".dat" and f"{entry.stem.lower()}.hea" in names:
            continue
        if suffix == ".json" and f"{entry.stem.lower()}.npy" in names:
            continue
        out.append(entry)
    return out


def _echo_key(case: PatientCase, view: str) -> str:
    if view not in case.echo:
        return view
    n = 2
    while f"{view}_{n}" in case.echo:
        n += 1
    return f"{view}_{n}"


def _add(case: PatientCase, modality: str, part: Any, report: FileReport) -> None:
    if modality == "echo":
        key = _echo_key(case, part.view)
        part.view = key
        report.details["view"] = key
        case.echo[key] = part
        return
    if modality == "labs" and case.labs is not None:
        known = {item.name.lower() for item in case.labs.items}
        for item in part.items:
            if item.name.lower() in known:
                report.warnings.append(f"{item.name} already read from another file: ignored")
            else:
                case.labs.items.append(item)
        case.labs.history = " ".join(t for t in (case.labs.history, part.history) if t)
        case.labs.medications = " ".join(t for t in (case.labs.medications, part.medications) if t)
        return
    if getattr(case, modality) is not None:
        report.warnings.append(
            f"the case already has {modality.upper()} from another file: not used"
        )
        return
    setattr(case, modality, part)


def _merge_identifiers(case: PatientCase, report: FileReport) -> None:
    """Keep the first value of each field; warn (without values) when files disagree."""
    known = case.identifiers.reveal()
    incoming = report.identifiers.reveal()
    for key in PATIENT_KEYS:
        if key in known and key in incoming and known[key] != incoming[key]:
            report.warnings.append(f"{key} differs from other files: is this one patient?")
    case.identifiers.update({k: v for k, v in incoming.items() if k not in known})


def load_case(folder: str | Path) -> tuple[PatientCase, list[FileReport]]:
    """Read every input in ``folder``; unreadable files are reported and the rest still loads."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IngestError(folder, "unknown", "not a case folder")
    case = PatientCase(case_id=folder.name)
    reports = []
    for entry in case_inputs(folder):
        modality, part, report = read_file(entry)
        reports.append(report)
        if part is None:
            case.warnings.append(f"{report.error} (not loaded)")
            continue
        _add(case, modality, part, report)
        _merge_identifiers(case, report)
        demo = report.details.get("demographics")
        if demo and case.demographics.age is None and case.demographics.sex == "":
            case.demographics.age = demo.get("age")
            case.demographics.sex = demo.get("sex", "")
        case.warnings.extend(f"{entry.name}: {w}" for w in report.warnings)
    return case, reports
