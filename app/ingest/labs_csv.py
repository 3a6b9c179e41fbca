"""Labs from CSV: ``name,value,unit[,low,high]``; History / Medications rows hold free text."""

from __future__ import annotations

import csv
import io
from pathlib import Path

from fuselens.app.ingest.errors import IngestError, guarded
from fuselens.app.ingest.labs_items import FREE_TEXT, RawLab, build_labs
from fuselens.app.ingest.report import Reading
from fuselens.app.ingest.text import encoding_warnings, read_text
from fuselens.model_zoo.case import Labs

REQUIRED = ("name", "value", "unit")


@guarded("labs")
def read_labs_csv(path: str | Path) -> Reading[Labs]:
    """One lab per row; History / Medications rows (any case) carry text in ``value``."""
    path = Path(path)
    text, encoding = read_text(path, "labs")
    if not text.strip():
        raise IngestError(path, "labs", "empty file: expected a header name,value,unit")
    rows = list(csv.reader(io.StringIO(text)))
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in REQUIRED if c not in header]
    if missing:
        raise IngestError(
            path,
            "labs",
            f"header {','.join(rows[0])!r} lacks column(s) {', '.join(missing)} "
            "(expected name,value,unit[,low,high])",
        )
    col = {name: header.index(name) for name in header}
    raws: list[RawLab] = []
    free = {key: [] for key in FREE_TEXT}
    for line_no, row in enumerate(rows[1:], start=2):
        if not any(cell.strip() for cell in row):
            continue
        if len(row) != len(header):
            raise IngestError(
                path, "labs", f"line {line_no}: {len(row)} fields, the header has {len(header)}"
            )
        cells = {name: row[j].strip() for name, j in col.items()}
        if cells["name"].lower() in FREE_TEXT:
            free[cells["name"].lower()].append(cells["value"])
            continue
        raws.append(
            RawLab(
                name=cells["name"],
                value=cells["value"],
                unit=cells["unit"],
                low=cells.get("low"),
                high=cells.get("high"),
                where=f"line {line_no}: ",
            )
        )
    if not raws and not any(free.values()):
        raise IngestError(path, "labs", "no lab rows below the header")
    reading = build_labs(path, raws, " ".join(free["history"]), " ".join(free["medications"]))
    reading.details["format"] = "CSV"
    reading.warnings.extend(encoding_warnings(encoding))
    return reading
