"""A patient folder holding any mix of inputs -> one :class:`PatientCase` plus a report per file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fuselens.app.ingest.detect import detect
from fuselens.app.ingest.echo_common import FILENAME_VIEWS
from fuselens.app.ingest.echo_frames import natural_key
from fuselens.app.ingest.errors import IngestError, describe
from fuselens.app.ingest.report import NOT_LOADED, FileReport
from fuselens.app.ingest.text import read_text
from fuselens.model_zoo.case import ECHO_VIEWS, PatientCase

VIEWS_FILE = "views.json"
IGNORED_NAMES = {"evidence.npz", "truth.json", "manifest.json", VIEWS_FILE}
PATIENT_KEYS = ("PatientID", "PatientName")
MODEL_VIEWS = ", ".join(ECHO_VIEWS)
UNKNOWN_VIEW = (
    "read but not used: view unknown - name the file echo_<VIEW> (e.g. echo_A4C.dcm) "
    f'or set it in the case folder\'s {VIEWS_FILE}: {{"<file name>": "A4C"}}'
)


def read_views(folder: str | Path) -> tuple[dict[str, str], list[str]]:
    """``views.json`` of a case folder as file name (lower case) -> view, and its problems."""
    path = Path(folder) / VIEWS_FILE
    if not path.is_file():
        return {}, []
    try:
        data = json.loads(read_text(path, "echo")[0])
    except (IngestError, ValueError) as exc:
        return {}, [f"{VIEWS_FILE} not read: {describe(exc)}"]
    if not isinstance(data, dict):
        return {}, [f'{VIEWS_FILE} must map file names to views, e.g. {{"loop.dcm": "A4C"}}']
    views: dict[str, str] = {}
    problems = []
    for name, view in data.items():
        canonical = FILENAME_VIEWS.get(str(view).lower())
        if canonical is None:
            known = ", ".join(FILENAME_VIEWS.values())
            problems.append(f"{VIEWS_FILE}: {name}: view {view!r} is not one of {known}")
        else:
            views[str(name).lower()] = canonical
    return views, problems


def _set_view(part: Any, report: FileReport, view: str | None) -> None:
    """Apply a user-given view; a loop whose view stays unknown is read but not used."""
    if view is not None:
        part.view = view
        report.details.update({"view": view, "view_source": VIEWS_FILE})
    if part.view == "unknown":
        report.unused = UNKNOWN_VIEW


def read_file(path: str | Path, view: str | None = None) -> tuple[str, Any, FileReport]:
    """``(modality, part or None, report)`` for one file or frame folder; never raises.

    ``view`` (e.g. ``"A4C"``) overrides the view an echo file's tags or name give.
    """
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
    if modality == "echo":
        _set_view(reading.part, report, view)
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
        if key != part.view and not report.unused:
            report.unused = f"read but not used: the case already has an {part.view} loop"
        elif key not in ECHO_VIEWS and not report.unused:
            report.unused = f"read but not used: the model takes only {MODEL_VIEWS} loops"
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
        report.unused = f"the case already has {modality.upper()} from another file: not used"
        report.warnings.append(report.unused)
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
    views, problems = read_views(folder)
    case.warnings.extend(problems)
    inputs = case_inputs(folder)
    names = {entry.name.lower() for entry in inputs}
    case.warnings.extend(f"{VIEWS_FILE}: {n}: no such file" for n in views if n not in names)
    reports = []
    for entry in inputs:
        modality, part, report = read_file(entry, views.get(entry.name.lower()))
        reports.append(report)
        if part is None:
            case.warnings.append(f"{report.error} {NOT_LOADED}")
            continue
        _add(case, modality, part, report)
        _merge_identifiers(case, report)
        demo = report.details.get("demographics")
        if demo and case.demographics.age is None and case.demographics.sex == "":
            case.demographics.age = demo.get("age")
            case.demographics.sex = demo.get("sex", "")
        case.warnings.extend(f"{entry.name}: {w}" for w in report.warnings)
        if report.unused and report.unused not in report.warnings:
            case.warnings.append(f"{entry.name}: {report.unused}")
    return case, reports
