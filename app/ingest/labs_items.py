"""Lab items checked against the reference table: canonical names, accepted units, ranges."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from fuselens.app.ingest.errors import IngestError
from fuselens.app.ingest.report import Reading
from fuselens.model_zoo.case import LabItem, Labs
from fuselens.model_zoo.lab_reference import lookup

FREE_TEXT = ("history", "medications")


@dataclass
class RawLab:
    """One lab as written in the file, before any checking."""

    name: str
    value: object
    unit: str = ""
    low: object = None
    high: object = None
    where: str = ""


def _number(path: Path, raw: RawLab, field: str, value: object) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        return float(str(value).strip())
    except ValueError as exc:
        raise IngestError(
            path, "labs", f"{raw.where}{raw.name}: {field} {value!r} is not a number"
        ) from exc


def make_item(path: Path, raw: RawLab) -> tuple[LabItem, str | None]:
    """A checked :class:`LabItem` and an optional warning (unknown lab name)."""
    value = _number(path, raw, "value", raw.value)
    if value is None:
        raise IngestError(path, "labs", f"{raw.where}{raw.name}: no value")
    low, high = _number(path, raw, "low", raw.low), _number(path, raw, "high", raw.high)
    unit = raw.unit.strip()
    ref = lookup(raw.name)
    if ref is None:
        warning = f"unknown lab {raw.name!r}: kept as written"
        if low is None and high is None:
            warning += ", with no reference range"
        return LabItem(raw.name.strip(), value, unit, low, high), warning
    accepted = {u.lower(): u for u in ref.accepted_units}
    if unit.lower() not in accepted:
        shown = repr(unit) if unit else "no unit"
        raise IngestError(
            path,
            "labs",
            f"{raw.where}{raw.name}: {shown} is not an accepted unit "
            f"(expected {' or '.join(ref.accepted_units)}); convert the value first",
        )
    if low is None and high is None:
        low, high = ref.low, ref.high
    return LabItem(ref.name, value, accepted[unit.lower()], low, high), None


def build_labs(
    path: str | Path, raws: Iterable[RawLab], history: str = "", medications: str = ""
) -> Reading[Labs]:
    """Check every item and assemble :class:`Labs` (duplicates and empty input are errors)."""
    path = Path(path)
    items: list[LabItem] = []
    warnings: list[str] = []
    for raw in raws:
        item, warning = make_item(path, raw)
        items.append(item)
        if warning:
            warnings.append(warning)
    labs = Labs(items=items, history=history.strip(), medications=medications.strip())
    labs.validate()
    details = {
        "items": [i.name for i in items],
        "flags": {i.name: i.flag for i in items if i.flag},
        "history": bool(labs.history),
        "medications": bool(labs.medications),
    }
    return Reading(part=labs, warnings=warnings, details=details)
