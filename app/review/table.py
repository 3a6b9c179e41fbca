"""The cohort table of a review run: one row per case, filtered and sorted for review."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from fuselens.app.csv_safety import CSV_LINE_END, csv_cell
from fuselens.app.ingest.report import NOT_LOADED
from fuselens.app.storage.models import ALL_OUTCOMES, ANSWER_OUTCOMES
from fuselens.model_zoo.case import MODALITIES

COLUMNS = [
    "case_id",
    "truth",
    "prediction",
    "outcome",
    "probability",
    "confidence",
    "modalities",
    "input_warnings",
    "tags",
    "notes",
]
SORTABLE = ("case_id", "outcome", "probability", "confidence")
SEPARATOR = "; "
NOTE_SEPARATOR = " | "


def _answer(r: Mapping[str, Any], key: str) -> str:
    """The stored answer (``truth_answer`` / ``predicted_answer``), else no/yes from 0/1."""
    answer = r.get("truth_answer" if key == "truth" else "predicted_answer")
    if answer is not None:
        return str(answer)
    return "yes" if int(r[key]) else "no"


def cohort_table(rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The table from stored results (``case_id``, ``truth``, ``probability``, ``prediction``,
    ``outcome``, ``modalities``, ``tags``, ``notes``, and optionally ``input_warnings``,
    ``truth_answer`` / ``predicted_answer``); truth and prediction shown as answers (no/yes
    from 0/1 when the answers are not given). For a yes/no task ``probability`` is P(yes) and
    confidence the probability of the predicted answer (below 0.5 for a "no" called under a
    threshold above 0.5); for a task with other answers (outcome correct/wrong) both are the
    top answer's."""
    records = []
    for r in rows:
        p = float(r["probability"])
        if r["outcome"] in ANSWER_OUTCOMES:
            confidence = p
        else:
            confidence = p if int(r["prediction"]) else 1.0 - p
        records.append(
            {
                "case_id": r["case_id"],
                "truth": _answer(r, "truth"),
                "prediction": _answer(r, "prediction"),
                "outcome": r["outcome"],
                "probability": p,
                "confidence": confidence,
                "modalities": ", ".join(m for m in MODALITIES if m in r["modalities"]),
                "input_warnings": "\n".join(
                    " ".join(str(w).split()) for w in r.get("input_warnings") or ()
                ),
                "tags": SEPARATOR.join(sorted(r.get("tags") or ())),
                "notes": NOTE_SEPARATOR.join(r.get("notes") or ()),
            }
        )
    return pd.DataFrame.from_records(records, columns=COLUMNS)


def warnings_count(cell: str) -> str:
    """``1 file not loaded · 2 warnings`` for a table's input warnings (one per line)."""
    lines = cell.splitlines()
    not_loaded = sum(line.endswith(NOT_LOADED) for line in lines)
    parts = []
    if not_loaded:
        parts.append(f"{not_loaded} file{'s' * (not_loaded > 1)} not loaded")
    if len(lines) > not_loaded:
        rest = len(lines) - not_loaded
        parts.append(f"{rest} warning{'s' * (rest > 1)}")
    return " · ".join(parts)


def for_display(table: pd.DataFrame, decimals: int = 3) -> pd.DataFrame:
    """The table for the screen: probabilities rounded, input warnings counted (the selected
    case lists them; exports keep full precision and every warning)."""
    shown = table.round({"probability": decimals, "confidence": decimals})
    return shown.assign(input_warnings=shown["input_warnings"].map(warnings_count))


def _split(cell: str, sep: str) -> set[str]:
    return {part.strip() for part in cell.split(sep) if part.strip()}


@dataclass
class Filters:
    """What the reviewer narrows the table to; empty selections keep every row."""

    outcomes: Sequence[str] = ()
    confidence: tuple[float, float] = (0.0, 1.0)
    present: Sequence[str] = ()  # every one of these modalities present
    missing: Sequence[str] = ()  # at least one of these modalities missing
    tags: Sequence[str] = ()  # at least one of these tags
    input_warnings: bool = False  # only cases whose files were not all read cleanly
    sort_by: str = "confidence"
    descending: bool = True
    cases: frozenset[str] | None = None  # only these cases (a cluster of the cohort view)

    def __post_init__(self) -> None:
        bad = set(self.outcomes) - set(ALL_OUTCOMES)
        if bad:
            raise ValueError(
                f"unknown outcomes {sorted(bad)}; choose from {', '.join(ALL_OUTCOMES)}"
            )
        bad = (set(self.present) | set(self.missing)) - set(MODALITIES)
        if bad:
            raise ValueError(f"unknown modalities {sorted(bad)}; choose from {MODALITIES}")
        lo, hi = self.confidence
        if not 0.0 <= lo <= hi <= 1.0:
            raise ValueError(f"confidence range must satisfy 0 <= low <= high <= 1, got {lo, hi}")
        if self.sort_by not in SORTABLE:
            raise ValueError(f"cannot sort by {self.sort_by!r}; choose from {', '.join(SORTABLE)}")


def filter_table(table: pd.DataFrame, filters: Filters) -> pd.DataFrame:
    """The rows that pass every filter, sorted (ties by case id)."""
    keep = table["confidence"].between(*filters.confidence)
    if filters.outcomes:
        keep &= table["outcome"].isin(filters.outcomes)
    mods = table["modalities"].map(lambda s: _split(s, ","))
    if filters.present:
        keep &= mods.map(set(filters.present).issubset)
    if filters.missing:
        keep &= mods.map(lambda m: not set(filters.missing).issubset(m))
    if filters.tags:
        keep &= table["tags"].map(lambda s: bool(_split(s, SEPARATOR) & set(filters.tags)))
    if filters.input_warnings:
        keep &= table["input_warnings"] != ""
    if filters.cases is not None:
        keep &= table["case_id"].isin(filters.cases)
    out = table[keep]
    by = [filters.sort_by] + (["case_id"] if filters.sort_by != "case_id" else [])
    asc = [not filters.descending] + [True] * (len(by) - 1)
    return out.sort_values(by, ascending=asc, kind="stable").reset_index(drop=True)


def export_csv(table: pd.DataFrame, path: str | Path) -> Path:
    """Write the table (with its tags and notes) as UTF-8 CSV, text cells made safe for
    spreadsheets (:func:`~fuselens.app.csv_safety.csv_cell`); returns the path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    safe = table[COLUMNS].map(csv_cell)
    safe.to_csv(out, index=False, encoding="utf-8", lineterminator=CSV_LINE_END)
    return out
