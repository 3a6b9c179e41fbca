"""What the Error review tab shows, computed without a browser (the callbacks only call these)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import plotly.graph_objects as go

from fuselens.app.review import store
from fuselens.app.review.figures import (
    answer_confusion_figure,
    calibration_figure,
    confusion_figure,
)
from fuselens.app.review.metrics import answer_confusion, calibration, confusion_counts
from fuselens.app.review.patterns import CohortPatterns, cohort_patterns
from fuselens.app.review.table import Filters, cohort_table, export_csv, filter_table
from fuselens.app.storage.models import ANSWER_OUTCOMES, OUTCOMES

if TYPE_CHECKING:
    from fuselens.app.session import LoadedCase

NO_RUN = "No review run yet: run `fuselens review --cohort DIR` first."


def caveat_markdown(sessions: store.Sessions, run_id: int | None) -> str:
    """The caveat of the model whose predictions the run holds, above them; a run stored
    before caveats were kept shows the demo model's when it was the demo model's."""
    from fuselens.model_zoo.fusion_explainable import DEMO_CAVEAT

    if run_id is None:
        return ""
    run = store.get_run(sessions, run_id)
    if run.model_caveat:
        caveat = run.model_caveat
    elif run.model_name == "demo" or Path(run.model_name).name == "demo_model":
        caveat = DEMO_CAVEAT
    else:
        caveat = f"Predictions of {run.model_name}; its caveat was not recorded with this run."
    return f"⚠️ **{caveat}**"


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
    input_warnings: bool,
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
        input_warnings=bool(input_warnings),
        sort_by=sort_by,
        descending=bool(descending),
    )


def _answer_task(table: pd.DataFrame) -> bool:
    """Whether the run's task has answers other than yes/no (outcomes correct/wrong)."""
    return bool(table["outcome"].isin(ANSWER_OUTCOMES).any())


def task_label(task: str | None) -> str:
    """``heart_failure`` -> ``Heart failure`` (the figures' titles)."""
    return str(task).replace("_", " ").capitalize() if task else "Heart failure"


def summary_markdown(table: pd.DataFrame, shown: pd.DataFrame) -> str:
    """How many cases are shown, and the outcome counts of the shown rows."""
    counts = shown["outcome"].value_counts()
    names = ANSWER_OUTCOMES if _answer_task(table) else OUTCOMES
    parts = ", ".join(f"{o} {int(counts.get(o, 0))}" for o in names)
    return f"Showing **{len(shown)}** of {len(table)} cases · {parts}"


def cohort_figures(
    table: pd.DataFrame, task: str | None = None, answers: list[str] | None = None
) -> tuple[go.Figure | None, go.Figure | None]:
    """Confusion matrix and calibration curve of the whole run (None for an empty run).
    A yes/no task: the 2 x 2 matrix and P(yes) against the truth; a task with other
    answers (``answers``, else those seen): the n x n matrix and the top answer's
    probability against it being right."""
    if table.empty:
        return None, None
    label = task_label(task)
    if _answer_task(table):
        counts, seen = answer_confusion(table["truth"], table["prediction"], answers)
        correct = (table["outcome"] == "correct").astype(int)
        cal = calibration(correct, table["confidence"])
        return answer_confusion_figure(counts, seen, label), calibration_figure(
            cal, y_title="fraction correct", x_title="mean probability of the top answer"
        )
    truth = (table["truth"] == "yes").astype(int)
    cal = calibration(truth, table["probability"])
    y_title = f"fraction {label.lower()}: yes" if task else "fraction with heart failure"
    return (
        confusion_figure(confusion_counts(table["outcome"]), label),
        calibration_figure(cal, y_title=y_title),
    )


def probability_text(row: Mapping[str, Any], task: str | None = None) -> str:
    """``P(heart_failure = yes) 0.912`` for a yes/no task, ``P(moderate) 0.700`` (the
    top answer) otherwise."""
    task = task or row.get("task") or "heart_failure"
    if row["outcome"] in ANSWER_OUTCOMES:
        return f"P({row.get('predicted_answer')}) {row['probability']:.3f}"
    return f"P({task} = yes) {row['probability']:.3f}"


def case_markdown(row: Mapping[str, Any] | None) -> str:
    """The selected case (a :func:`fuselens.app.review.store.result` row): outcome, probability,
    modalities and its notes so far."""
    if row is None:
        return "Select a row of the table to tag it or open it in the Case view."
    yes_no = ("no", "yes")
    truth = row.get("truth_answer") or yes_no[row["truth"]]
    predicted = row.get("predicted_answer") or yes_no[row["prediction"]]
    lines = [
        f"**{row['case_id']}** · {row['outcome']} · truth {truth}, predicted "
        f"{predicted} ({probability_text(row)}) · " + ", ".join(row["modalities"])
    ]
    if row.get("input_warnings"):
        lines += ["", "Input warnings (files not loaded or read with a warning):"]
        lines += [f"- {p}" for p in row["input_warnings"]]
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
    from fuselens.app.ingest import load_case
    from fuselens.app.ingest.errors import IngestError
    from fuselens.app.session import LoadedCase
    from fuselens.explain.methods import DEFAULT_METHOD
    from fuselens.model_zoo.synth.truth import load_truth

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
    at = "" if row["outcome"] in ANSWER_OUTCOMES else f" at threshold {run.threshold:g}"
    story = (
        f"error review run {run.name!r}: {row['outcome']}{at}, "
        f"{probability_text(row, run.task)} from "
        f"{Path(run.model_name).name or run.model_name}"
    )
    if row["tags"]:
        story += f"; tags: {', '.join(row['tags'])}"
    extras: dict = {}
    if row.get("bundle_key"):  # the request the run explained, so its bundle is found
        extras = {"bundle_store": run.bundle_store, "review_task": run.task,
                  "review_methods": tuple(run.methods or (DEFAULT_METHOD,))}  # fmt: skip
    return LoadedCase(
        case,
        reports,
        key=case.case_id,
        title=f"Cohort case {case_id}",
        story=story,
        folder=folder,
        extras=extras,
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


PATTERNS_CACHE: dict[tuple[int, int, tuple[tuple[str, int], ...]], Any] = {}
NO_PATTERNS = (
    "No explanations stored for this run: `fuselens review` explains every case unless "
    "given `--no-explain`."
)
STRATEGY_CHOICES = [("as the eigengap says", 0)] + [(str(k), k) for k in range(2, 9)]


def patterns_of(
    sessions: store.Sessions, run_id: int, strategies: dict[str, int] | None = None
) -> CohortPatterns:
    """The run's :class:`CohortPatterns` (``strategies``: a modality's number of SpRAy
    clusters, else the eigengap's), computed once per number of explained results."""
    n = len(store.bundle_keys(sessions, run_id))
    fixed = tuple(sorted((m, int(k)) for m, k in (strategies or {}).items() if k))
    key = (run_id, n, fixed)
    if key not in PATTERNS_CACHE:
        for old in [k for k in PATTERNS_CACHE if k[0] == run_id and k[1] != n]:
            del PATTERNS_CACHE[old]
        PATTERNS_CACHE[key] = cohort_patterns(sessions, run_id, strategies=dict(fixed))
    return PATTERNS_CACHE[key]


def cluster_choices(
    patterns: CohortPatterns, strategies: dict[str, int] | None = None
) -> list[tuple[str, str]]:
    """The cluster filter's (label, value) pairs: every case, then each modality's clusters
    (a value ``"<modality>:<index>"``, with ``":<k>"`` where ``strategies`` fixed k)."""
    out = [("All cases", "")]
    for m, p in patterns.modalities.items():
        k = (strategies or {}).get(m)
        for c in p.clusters:
            mix = ", ".join(f"{o} {n}" for o, n in c.outcomes.items() if n)
            value = f"{m}:{c.index}" + (f":{k}" if k else "")
            out.append((f"{m} cluster {c.index}: {len(c.cases)} cases ({mix})", value))
    return out


def _parse_cluster(choice: str) -> tuple[str, int, int]:
    modality, index, *k = choice.split(":")
    if not index.isdigit() or len(k) > 1 or (k and not k[0].isdigit()):
        raise ValueError(f"no cluster {choice!r} in this run")
    return modality, int(index), int(k[0]) if k else 0


def cluster_strategies(choice: str | None) -> dict[str, int]:
    """The number of clusters a cluster choice was made among (empty: the eigengap's)."""
    if not choice:
        return {}
    modality, _, k = _parse_cluster(choice)
    return {modality: k} if k else {}


def cluster_cases(patterns: CohortPatterns, choice: str | None) -> frozenset[str] | None:
    """The cases of the cluster ``"<modality>:<index>[:<k>]"`` (``None``: no cluster
    chosen); ``patterns`` made with that k (:func:`cluster_strategies`)."""
    if not choice:
        return None
    modality, index, _ = _parse_cluster(choice)
    p = patterns.modalities.get(modality)
    if p is None or index >= len(p.clusters):
        raise ValueError(f"no cluster {choice!r} in this run")
    return frozenset(p.clusters[index].cases)


def patterns_markdown(patterns: CohortPatterns) -> str:
    """One line on what the pattern figures are made of."""
    if not patterns.modalities and not patterns.shapley:
        return NO_PATTERNS
    missing = f"; {len(patterns.missing)} without one" if patterns.missing else ""
    ks = ", ".join(f"{m} {p.clustering.k}" for m, p in patterns.modalities.items())
    return (
        f"Explanations of **{patterns.n_cases}** cases{missing}. Heat maps on a common "
        f"geometry, each scaled to sum to 1; strategies found by spectral relevance analysis "
        f"(SpRAy; clusters per modality: {ks}). Pick a cluster to see its cases in the table."
    )


def clusters_markdown(patterns: CohortPatterns, modality: str) -> str:
    """A table of ``modality``'s clusters: size, outcome mix and the cases nearest its mean."""
    p = patterns.modalities.get(modality)
    if p is None:
        return f"No {modality} maps in this run."
    c = p.clustering
    spectrum = ", ".join(f"{v:.3f}" for v in c.eigenvalues)
    asked = "" if c.k == c.eigengap_k else f"; shown: {c.k}, as asked"
    lines = [
        f"{modality}: the eigengap of the neighbour graph's Laplacian says **{c.eigengap_k}** "
        f"strategies{asked} (smallest eigenvalues {spectrum}).",
        "",
        "| cluster | cases | outcomes | nearest its mean map |",
        "| --- | --- | --- | --- |",
    ]
    for cl in p.clusters:
        mix = ", ".join(f"{o} {n}" for o, n in cl.outcomes.items() if n)
        lines.append(f"| {cl.index} | {len(cl.cases)} | {mix} | {', '.join(cl.examples)} |")
    return "\n".join(lines)


def pattern_figures(
    patterns: CohortPatterns, modality: str
) -> tuple[go.Figure | None, go.Figure | None, go.Figure | None, go.Figure | None]:
    """Mean maps by outcome, mean maps by cluster, the embedding (of ``modality``) and the
    Shapley box plots (``None`` where the run has nothing to draw)."""
    from fuselens.app.review import pattern_figures as pf

    p = patterns.modalities.get(modality)
    shap = pf.shapley_figure(patterns) if patterns.shapley else None
    if p is None:
        return None, None, None, shap
    return (
        pf.outcome_maps_figure(p),
        pf.cluster_maps_figure(p),
        pf.embedding_figure(p, patterns.outcomes),
        shap,
    )
