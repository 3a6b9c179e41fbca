"""Review runs, per-case results, the error taxonomy, tags and notes in the database.

Every write is its own transaction, committed before the function returns, and every
reviewer edit (tags, notes, taxonomy) leaves an audit-log entry in the same transaction.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Select, delete, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, selectinload, sessionmaker

from fuselens.app.review.cohort import CaseResult
from fuselens.app.storage.models import AuditLog, CaseTag, Note, ReviewRun, Tag
from fuselens.app.storage.models import CaseResult as ResultRow

Sessions = sessionmaker[Session]
MAX_TAG_CHARS = 100
MAX_NOTE_CHARS = 10_000


@dataclass(frozen=True)
class RunInfo:
    """A review run as the run picker shows it."""

    id: int
    name: str
    cohort_dir: str
    model_name: str
    threshold: float
    status: str
    n_results: int
    task: str = "heart_failure"
    labels_file: str | None = None
    bundle_store: str | None = None
    methods: tuple[str, ...] = ()
    model_caveat: str | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.n_results} cases, {self.status})"


def _actor(actor: str) -> str:
    """Who acts, as stored: whitespace collapsed, at most the column's 100 characters."""
    return " ".join(str(actor or "").split())[:100] or "reviewer"


def _audit(session: Session, actor: str, action: str, run_id: int | None, **detail: Any) -> None:
    session.add(AuditLog(actor=_actor(actor), action=action, run_id=run_id, detail=detail))


def open_run(
    sessions: Sessions,
    name: str,
    cohort_dir: str | Path,
    model_name: str,
    task: str,
    threshold: float = 0.5,
    labels_file: str | None = None,
    model_caveat: str | None = None,
) -> int:
    """The id of the run called ``name``: created, or the stored one when the cohort, labels
    file, model, task and threshold match (a rerun resumes it); a clash is an error. The
    model's caveat is kept with the run (a resumed run without one gets it)."""
    cohort = str(Path(cohort_dir).resolve())
    labels = str(Path(labels_file).resolve()) if labels_file else None
    with sessions.begin() as s:
        run = s.scalar(select(ReviewRun).where(ReviewRun.name == name))
        if run is None:
            run = ReviewRun(
                name=name,
                cohort_dir=cohort,
                labels_file=labels,
                model_name=model_name,
                task=task,
                threshold=threshold,
                model_caveat=model_caveat,
            )
            s.add(run)
            s.flush()
            _audit(s, "fuselens review", "review_run_created", run.id, name=name, task=task)
            return run.id
        stored = (run.cohort_dir, run.labels_file, run.model_name, run.task, run.threshold)
        if stored != (cohort, labels, model_name, task, threshold):
            raise ValueError(
                f"review run {name!r} exists for cohort {run.cohort_dir}"
                + (f" (labels {run.labels_file})" if run.labels_file else "")
                + f", model {run.model_name}, task {run.task}, threshold {run.threshold}: "
                "choose another --run-name"
            )
        if run.model_caveat is None:
            run.model_caveat = model_caveat
        return run.id


def stored_case_keys(sessions: Sessions, run_id: int, explained: bool = False) -> set[str]:
    """The cases of ``run_id`` that already have a result (``explained``: and a bundle)."""
    query = select(ResultRow.case_key).where(ResultRow.run_id == run_id)
    if explained:
        query = query.where(ResultRow.bundle_key.is_not(None))
    with sessions() as s:
        return set(s.scalars(query))


def set_explanations(sessions: Sessions, run_id: int, store_dir: str | Path, methods) -> None:
    """Record where the run's bundles are and which map methods they hold."""
    with sessions.begin() as s:
        run = s.get_one(ReviewRun, run_id)
        run.bundle_store = str(Path(store_dir).resolve())
        run.methods = list(methods)


def bundle_keys(sessions: Sessions, run_id: int) -> dict[str, str]:
    """case -> bundle key of every explained result of the run."""
    query = select(ResultRow.case_key, ResultRow.bundle_key).where(
        ResultRow.run_id == run_id, ResultRow.bundle_key.is_not(None)
    )
    with sessions() as s:
        return {case: key for case, key in s.execute(query)}


def add_result(
    sessions: Sessions,
    run_id: int,
    result: CaseResult,
    folder: Path,
    bundle_key: str | None = None,
    input_warnings: Sequence[str] = (),
) -> bool:
    """Store one case's result (committed) with its ``input_warnings`` (the case's ingest
    warnings); False when the case was stored already (a stored result without a bundle gets
    ``bundle_key``)."""
    row = ResultRow(
        run_id=run_id,
        case_key=result.case_id,
        folder=str(Path(folder).resolve()),
        truth=result.truth,
        probability=result.probability,
        prediction=result.prediction,
        outcome=result.outcome,
        modalities=list(result.modalities),
        truth_answer=result.truth_answer,
        predicted_answer=result.predicted_answer,
        bundle_key=bundle_key,
        input_warnings=list(input_warnings),
    )
    try:
        with sessions.begin() as s:
            s.add(row)
    except IntegrityError:
        if bundle_key is not None:
            with sessions.begin() as s:
                stored = s.scalar(
                    select(ResultRow).where(
                        ResultRow.run_id == run_id, ResultRow.case_key == result.case_id
                    )
                )
                if stored is not None and stored.bundle_key is None:
                    stored.bundle_key = bundle_key
        return False
    return True


def set_status(sessions: Sessions, run_id: int, status: str) -> None:
    """Mark the run ``running`` or ``complete`` (with its finishing time)."""
    with sessions.begin() as s:
        run = s.get_one(ReviewRun, run_id)
        run.status = status
        run.finished_at = datetime.now(UTC) if status == "complete" else None


def list_runs(sessions: Sessions) -> list[RunInfo]:
    """Every review run, newest first, with its number of stored results."""
    counts = select(ResultRow.run_id, func.count().label("n")).group_by(ResultRow.run_id).subquery()
    query = (
        select(ReviewRun, func.coalesce(counts.c.n, 0))
        .outerjoin(counts, counts.c.run_id == ReviewRun.id)
        .order_by(ReviewRun.created_at.desc(), ReviewRun.id.desc())
    )
    with sessions() as s:
        return [
            RunInfo(
                r.id,
                r.name or f"run {r.id}",
                r.cohort_dir,
                r.model_name,
                r.threshold,
                r.status,
                n,
                r.task,
                r.labels_file,
                r.bundle_store,
                tuple(r.methods or ()),
                r.model_caveat,
            )
            for r, n in s.execute(query)
        ]


def _row(r: ResultRow) -> dict[str, Any]:
    """A stored result; ``truth_answer`` / ``predicted_answer`` are the answers (rows stored
    before answers were kept: "yes"/"no" from the 0/1 ``truth`` / ``prediction``)."""
    yes_no = ("no", "yes")
    return {
        "case_id": r.case_key,
        "folder": r.folder,
        "task": r.run.task,
        "truth": r.truth,
        "probability": r.probability,
        "prediction": r.prediction,
        "truth_answer": r.truth_answer if r.truth_answer is not None else yes_no[r.truth],
        "predicted_answer": (
            r.predicted_answer if r.predicted_answer is not None else yes_no[r.prediction]
        ),
        "outcome": r.outcome,
        "modalities": list(r.modalities),
        "bundle_key": r.bundle_key,
        "input_warnings": list(r.input_warnings or ()),
        "tags": sorted(ct.tag.name for ct in r.tags),
        "notes": [n.text for n in sorted(r.notes, key=lambda n: (n.created_at, n.id))],
    }


def _results(run_id: int) -> Select[tuple[ResultRow]]:
    return (
        select(ResultRow)
        .where(ResultRow.run_id == run_id)
        .options(selectinload(ResultRow.tags).selectinload(CaseTag.tag))
        .options(selectinload(ResultRow.notes))
        .options(selectinload(ResultRow.run))
    )


def run_rows(sessions: Sessions, run_id: int) -> list[dict[str, Any]]:
    """Each stored case of the run with its tags and notes (oldest note first)."""
    with sessions() as s:
        return [_row(r) for r in s.scalars(_results(run_id).order_by(ResultRow.case_key))]


def result(sessions: Sessions, run_id: int, case_key: str) -> dict[str, Any]:
    """One stored case of the run, as :func:`run_rows` gives it."""
    with sessions() as s:
        r = s.scalar(_results(run_id).where(ResultRow.case_key == case_key))
        if r is None:
            raise KeyError(f"run {run_id} has no case {case_key!r}")
        return _row(r)


def get_run(sessions: Sessions, run_id: int) -> RunInfo:
    """One run by id."""
    for run in list_runs(sessions):
        if run.id == run_id:
            return run
    raise KeyError(f"no review run {run_id}")


def tag_names(sessions: Sessions) -> list[str]:
    """The error taxonomy, alphabetical."""
    with sessions() as s:
        return list(s.scalars(select(Tag.name).order_by(func.lower(Tag.name))))


def _tag_name(name: str) -> str:
    clean = " ".join(str(name).split())
    if not clean:
        raise ValueError("a tag needs a name")
    if len(clean) > MAX_TAG_CHARS:
        raise ValueError(f"tag names are at most {MAX_TAG_CHARS} characters")
    return clean


def _tag(s: Session, name: str) -> Tag:
    tag = s.scalar(select(Tag).where(Tag.name == name))
    if tag is None:
        raise ValueError(f"no tag {name!r} in the taxonomy")
    return tag


def add_tag(sessions: Sessions, name: str, actor: str, description: str = "") -> str:
    """Add a tag to the taxonomy; returns its cleaned name."""
    clean = _tag_name(name)
    with sessions.begin() as s:
        if s.scalar(select(Tag.id).where(func.lower(Tag.name) == clean.lower())) is not None:
            raise ValueError(f"tag {clean!r} exists already")
        s.add(Tag(name=clean, description=description))
        _audit(s, actor, "tag_created", None, tag=clean)
    return clean


def rename_tag(sessions: Sessions, old: str, new: str, actor: str) -> str:
    """Rename a tag everywhere it is used; returns the new name."""
    clean = _tag_name(new)
    with sessions.begin() as s:
        tag = _tag(s, old)
        clash = s.scalar(select(Tag.id).where(func.lower(Tag.name) == clean.lower()))
        if clash is not None and clash != tag.id:
            raise ValueError(f"tag {clean!r} exists already")
        tag.name = clean
        _audit(s, actor, "tag_renamed", None, old=old, new=clean)
    return clean


def remove_tag(sessions: Sessions, name: str, actor: str) -> int:
    """Remove a tag from the taxonomy and from every case; returns how many cases had it."""
    with sessions.begin() as s:
        tag = _tag(s, name)
        used = s.scalar(select(func.count()).where(CaseTag.tag_id == tag.id)) or 0
        s.execute(delete(CaseTag).where(CaseTag.tag_id == tag.id))
        s.delete(tag)
        _audit(s, actor, "tag_removed", None, tag=name, cases=used)
    return int(used)


def save_annotation(
    sessions: Sessions,
    run_id: int,
    case_key: str,
    tags: Sequence[str],
    note: str,
    actor: str,
) -> dict[str, Any]:
    """Set the case's tags to exactly ``tags`` and add ``note`` (when not blank), committed
    with one audit entry; returns what changed."""
    text = str(note or "").strip()
    if len(text) > MAX_NOTE_CHARS:
        raise ValueError(f"notes are at most {MAX_NOTE_CHARS} characters")
    with sessions.begin() as s:
        result = s.scalar(
            select(ResultRow)
            .where(ResultRow.run_id == run_id, ResultRow.case_key == case_key)
            .options(selectinload(ResultRow.tags).selectinload(CaseTag.tag))
        )
        if result is None:
            raise KeyError(f"run {run_id} has no case {case_key!r}")
        wanted = {_tag(s, t).id: t for t in dict.fromkeys(tags)}
        have = {ct.tag_id: ct for ct in result.tags}
        removed = sorted(have[i].tag.name for i in set(have) - set(wanted))
        for i in set(have) - set(wanted):
            s.delete(have[i])
        added = sorted(wanted[i] for i in set(wanted) - set(have))
        for i in set(wanted) - set(have):
            s.add(CaseTag(result_id=result.id, tag_id=i, author=_actor(actor)))
        if text:
            s.add(Note(result_id=result.id, text=text, author=_actor(actor)))
        change = {"case": case_key, "added": added, "removed": removed, "note": bool(text)}
        _audit(s, actor, "case_annotated", run_id, **change)
    return change
