"""Study exports: a CSV with one row per reader x case x arm, and the FDA iMRMC input format.

Neither holds a name, a username, a password or a time of day: readers appear by their
pseudonym code (``R01``...), cases by their case key. The iMRMC file follows the format
the FDA's iMRMC tool writes itself: a free-text header with ``NR``, ``N0``, ``N1``, ``NM``,
then ``BEGIN DATA:`` and rows ``readerID,caseID,modalityID,score``; truth rows have
readerID ``-1`` and modalityID ``0`` with score 0 or 1. The score is the disease score of
:func:`fuselens.app.study.metrics.disease_score` (diagnosis and confidence on one 0-100 scale).
Cases are numbered 1..K in case-key order (the header lists the mapping) because some
readers of the format want integers.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from sqlalchemy.orm import Session

from fuselens.app.csv_safety import CSV_LINE_END, csv_cell
from fuselens.app.study.service import answer_rows, get_study

BASE_COLUMNS = (
    "reader",
    "case",
    "arm",
    "order",
    "truth",
    "ai_probability",
    "ai_prediction",
    "ai_shown",
    "explanations_shown",
    "answered",
    "diagnosis",
    "confidence",
    "seconds",
)


def csv_text(rows: Sequence[dict[str, Any]], panels: Sequence[str]) -> str:
    """The export as CSV text: the base columns, the arm's panels and map method, one
    ``usefulness_<panel>`` each, the seconds each panel was open (``seconds_open_<panel>``,
    timed by the server; ``heatmaps:cxr`` and the like are the overlays), the marks (JSON)
    and the free text (text cells made safe for spreadsheets,
    :func:`~fuselens.app.csv_safety.csv_cell`)."""
    out = io.StringIO()
    opened = sorted({p for r in rows for p in r.get("panel_seconds", {})})
    columns = [
        *BASE_COLUMNS,
        "panels",
        "method",
        *(f"usefulness_{p}" for p in panels),
        *(f"seconds_open_{p}" for p in opened),
        "marks",
        "free_text",
    ]
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator=CSV_LINE_END)
    writer.writeheader()
    for row in rows:
        flat = {k: row[k] for k in BASE_COLUMNS}
        flat["panels"] = " ".join(row.get("panels", []))
        flat["method"] = row.get("method")
        flat.update({f"usefulness_{p}": row["usefulness"].get(p) for p in panels})
        flat.update({f"seconds_open_{p}": row.get("panel_seconds", {}).get(p) for p in opened})
        flat["marks"] = json.dumps(row.get("marks", [])) if row.get("marks") else ""
        flat["free_text"] = row["free_text"]
        writer.writerow({k: "" if v is None else csv_cell(v) for k, v in flat.items()})
    return out.getvalue()


def imrmc_text(rows: Sequence[dict[str, Any]], title: str) -> str:
    """The answered rows in iMRMC input format."""
    from fuselens.app.study.metrics import disease_score  # scipy and pandas: only when exporting

    cases = sorted({r["case"]: r["truth"] for r in rows}.items())
    number = {key: i + 1 for i, (key, _) in enumerate(cases)}
    answered = [r for r in rows if r["answered"]]
    readers = sorted({r["reader"] for r in answered})
    arms = list(dict.fromkeys(r["arm"] for r in answered))
    lines = [
        " ".join(title.split()),
        "score: disease score 0-100 (50 + confidence/2 if present, 50 - confidence/2 if absent)",
        *(f"case {number[key]} = {key}" for key, _ in cases),
        "",
        f"NR: {len(readers)}",
        f"N0: {sum(1 for _, t in cases if t == 0)}",
        f"N1: {sum(1 for _, t in cases if t == 1)}",
        f"NM: {len(arms)}",
        "",
        "BEGIN DATA:",
    ]
    lines += [f"-1,{number[key]},0,{truth}" for key, truth in cases]
    scores = disease_score([r["diagnosis"] for r in answered], [r["confidence"] for r in answered])
    lines += [
        f"{r['reader']},{number[r['case']]},{r['arm']},{score:g}"
        for r, score in zip(answered, scores, strict=True)
    ]
    return "\n".join(lines) + "\n"


def export_study(
    session: Session, study_id: int, out_csv: str | Path, out_imrmc: str | Path | None = None
) -> int:
    """Write the CSV (and the iMRMC file); returns the number of CSV rows."""
    study = get_study(session, study_id)
    rows = answer_rows(session, study_id)
    panels = study.config["questions"]["usefulness"]
    Path(out_csv).write_text(csv_text(rows, panels), encoding="utf-8", newline="")
    if out_imrmc is not None:
        title = f"FuseLens reader study {study.id}: {study.name}"
        Path(out_imrmc).write_text(imrmc_text(rows, title), encoding="utf-8")
    return len(rows)
