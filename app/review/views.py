"""What the Error review tab shows, computed without a browser (the callbacks only call these)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go

from app.review import store
from app.review.figures import calibration_figure, confusion_figure
from app.review.metrics import calibration, confusion_counts
from app.review.table import Filters, cohort_table, export_csv, filter_table

if TYPE_CHECKING:
    from app.session import LoadedCase

NO_RUN = "No review run yet: run `fuselens review --cohort DIR` first."


def run_choices(sessions: store.Sessions) -> list[tuple[str, int]]:
    """The run picker's (label, run id) pairs, newest first."""
    return [(r.label, r.id) for r in store.list_runs(sessions)]


def run_table(sessions: store.Sessions, run_id: int) -> pd.DataFrame:
    """The whole cohort table of a run, tags and notes included."""
    return cohort_table(store.run_rows(sessions, run_id))


def tables(
    sessions: store.Sessions, run_id: int, filters: Filters
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The run's whole table and the rows the filters keep."""
    table = run_table(sessions, run_id)
    return table, filter_table(table, filters)


def make_filters(
    outcomes: Sequence[str] | None,
    low: float,
    high: float,
    present: Sequence[str] | None,
    missing: Sequence[str] | None,
    tags: Sequence[str] | None,
    sort_by: str,
    descending: bool,
) -> Filters:
    """The tab's filter controls as :class:`Filters` (raises ValueError on a bad range)."""
    return Filters(
        outcomes=list(outcomes or ()),
        confidence=(float(low), float(high)),
        present=list(present or ()),
        missing=list(missing or ()),
        tags=list(tags or ()),
        sort_by=sort_by,
        descending=bool(descending),
    )


def summary_markdown(table: pd.DataFrame, shown: pd.DataFrame) -> str:
    """How many cases are shown, and the outcome counts of the shown rows."""
    counts = shown["outcome"].value_counts()
    parts = ", ".join(f"{o} {int(counts.get(o, 0))}" for o in ("TP", "FP", "TN", "FN"))
    return f"Showing **{len(shown)}** of {len(table)} cases · {parts}"


def cohort_figures(table: pd.DataFrame) -> tuple[go.Figure | None, go.Figure | None]:
    """Confusion matrix and calibration curve of the whole run (None for an empty run)."""
    if table.empty:
        return None, None
    truth = (table["truth"] == "yes").astype(int)
    cal = calibration(truth, table["probability"])
    return confusion_figure(confusion_counts(table["outcome"])), calibration_figure(cal)


def case_markdown(row: Mapping[str, Any] | None) -> str:
    """The selected case (a :func:`app.review.store.result` row): outcome, probability,
    modalities and its notes so far."""
    if row is None:
        return "Select a row of the table to tag it or open it in the Case view."
    yes_no = ("no", "yes")
    lines = [
        f"**{row['case_id']}** · {row['outcome']} · truth {yes_no[row['truth']]}, predicted "
        f"{yes_no[row['prediction']]} (P(heart failure) {row['probability']:.3f}) · "
        + ", ".join(row["modalities"])
    ]
    if row["notes"]:
        lines += ["", "Notes so far:"] + [f"- {n}" for n in row["notes"]]
    return "\n".join(lines)


def export_path(table: pd.DataFrame, run_id: int, out_dir: str | Path | None = None) -> Path:
    """Write the table as CSV in ``out_dir`` (a fresh temporary folder by default)."""
    folder = Path(out_dir or tempfile.mkdtemp(prefix="fuselens-review-"))
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    return export_csv(table, folder / f"review-run-{run_id}-{stamp}.csv")


def open_result(sessions: store.Sessions, run_id: int, case_id: str) -> LoadedCase:
    """A stored result's case folder, read as the demo cases are (planted truth attached)."""
    from app.ingest import load_case
    from app.ingest.errors import IngestError
    from app.session import LoadedCase
    from model_zoo.synth.truth import load_truth

    row = store.result(sessions, run_id, case_id)
    folder = Path(row["folder"])
    try:
        case, reports = load_case(folder)
    except IngestError as exc:
        raise ValueError(f"case {case_id}: its folder {folder} cannot be read ({exc})") from exc
    if (folder / "truth.json").is_file():
        case.truth = load_truth(folder)
    run = store.get_run(sessions, run_id)
    case.case_id = f"review-{run_id}-{case_id}"
    story = (
        f"error review run {run.name!r}: {row['outcome']} at threshold {run.threshold:g}, "
        f"P(heart failure) {row['probability']:.3f} from "
        f"{Path(run.model_name).name or run.model_name}"
    )
    if row["tags"]:
        story += f"; tags: {', '.join(row['tags'])}"
    return LoadedCase(
        case, reports, key=case.case_id, title=f"Cohort case {case_id}", story=story, folder=folder
    )


def annotation_status(change: dict[str, Any]) -> str:
    """What a save did, in one line."""
    parts = []
    if change["added"]:
        parts.append("tagged " + ", ".join(change["added"]))
    if change["removed"]:
        parts.append("untagged " + ", ".join(change["removed"]))
    if change["note"]:
        parts.append("note added")
    return f"Saved {change['case']}: " + ("; ".join(parts) if parts else "no change")
