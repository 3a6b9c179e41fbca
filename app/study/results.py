"""The owner's results of a study: the answered rows through :mod:`fuselens.app.study.metrics`."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd
from sqlalchemy.orm import Session

from fuselens.app.study.marks import mark_agreement, over_reliance_differences
from fuselens.app.study.metrics import compare_arms, study_summary
from fuselens.app.study.panels import load_regions
from fuselens.app.study.service import answer_rows, get_study


def metrics_table(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Answered rows in the columns :mod:`fuselens.app.study.metrics` reads (AI answer only where
    shown)."""
    return pd.DataFrame(
        [
            {
                "reader": r["reader"],
                "case": r["case"],
                "arm": r["arm"],
                "truth": r["truth"],
                "diagnosis": r["diagnosis"],
                "confidence": r["confidence"],
                "seconds": r["seconds"],
                "ai_answer": r["ai_prediction"] if r["ai_shown"] else None,
            }
            for r in rows
            if r["answered"]
        ],
        columns=[
            "reader",
            "case",
            "arm",
            "truth",
            "diagnosis",
            "confidence",
            "seconds",
            "ai_answer",
        ],
    )


def _records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        return v.item() if hasattr(v, "item") else v

    return [{k: clean(v) for k, v in row.items()} for row in frame.to_dict(orient="records")]


def marks_table(rows: list[dict[str, Any]], regions_dir: str | None) -> pd.DataFrame:
    """Each arm's marks against the model's region (of the arm's map method) and the truth,
    per modality (:func:`fuselens.app.study.marks.mark_agreement`)."""
    marked = [r for r in rows if r["answered"] and r.get("marks")]
    if not marked or not regions_dir:
        return pd.DataFrame()
    frames = []
    for arm in dict.fromkeys(r["arm"] for r in marked):
        mine = [r for r in marked if r["arm"] == arm]
        method = mine[0]["method"]
        regions = {}
        for case in {r["case"] for r in mine}:
            path = Path(regions_dir) / case / f"{method}.npz"
            if path.is_file():
                regions[case] = load_regions(path)
        frames.append(mark_agreement(mine, regions))
    return pd.concat(frames, ignore_index=True)


def study_results(session: Session, study_id: int) -> dict[str, Any]:
    """Per reader x arm performance, agreement, time, AI reliance (per arm and the difference
    of every pair of AI arms), where readers' marks landed and the ORH arm comparison.

    The ORH comparison needs every reader to have answered every case in every arm (and two
    arms); until then ``orh`` says why it is missing.
    """
    rows = answer_rows(session, study_id)
    table = metrics_table(rows)
    out: dict[str, Any] = {"answered": len(table), "assignments": len(rows)}
    if table.empty:
        out["note"] = "no answers yet"
        return out
    out.update({name: _records(df) for name, df in study_summary(table).items()})
    out["over_reliance_differences"] = _records(over_reliance_differences(table))
    regions_dir = get_study(session, study_id).config.get("regions_dir")
    out["mark_agreement"] = _records(marks_table(rows, regions_dir))
    arms = {r["arm"] for r in rows}
    if len(table) < len(rows):
        out["orh"] = {"note": "needs every reader to answer every case in every arm"}
    elif len(arms) < 2:
        out["orh"] = {"note": "needs two arms"}
    else:
        orh = {}
        for fom in ("auc", "accuracy"):
            try:
                orh[fom] = _records(compare_arms(table, fom=fom).summary())
            except ValueError as err:
                orh[fom] = {"note": str(err)}
        out["orh"] = orh
    return out
