"""``fuselens review``: the model over every labelled case of a cohort, each result committed
at once.

Any contract model and any of its tasks: a cohort is a folder of case folders with a
``labels.csv`` or a ``fuselens synth`` cohort (:mod:`fuselens.app.cohort`). A rerun of the
same run (same name, cohort, labels, model, task and threshold) skips the cases already
stored, so an interrupted review resumes where it stopped and nothing is computed twice.
Cases unlabelled for the task are left out of the run.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from fuselens.app.cohort import Cohort, LabelledCohort, open_cohort
from fuselens.app.review import store
from fuselens.app.review.cohort import CaseResult, score

if TYPE_CHECKING:
    from fuselens.model_zoo.case import PatientCase
    from fuselens.model_zoo.contract import ExplainableModel


@dataclass
class RunSummary:
    """What one invocation did: cases found stored, new results, cases it could not read;
    ``total`` counts the cases labelled for the task, ``unlabelled`` the others."""

    run_id: int
    name: str
    total: int
    stored_before: int
    added: int = 0
    stored_after: int = 0
    failed: dict[str, str] = field(default_factory=dict)
    task: str = ""
    unlabelled: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        return self.stored_after == self.total


def default_run_name(cohort: str | Path, model_name: str) -> str:
    """``<cohort folder> · <model>``: the same command line names the same run."""
    return f"{Path(cohort).resolve().name} · {Path(model_name).name or model_name}"


def _labels_file(cohort: Cohort) -> str | None:
    return str(cohort.source.resolve()) if isinstance(cohort, LabelledCohort) else None


def _load(cohort: Cohort, case_id: str) -> PatientCase:
    from fuselens.app.ingest.errors import IngestError

    try:
        case = cohort.load(case_id)
    except IngestError as exc:
        raise ValueError(str(exc)) from exc
    if not case.modalities():
        raise ValueError(f"{case_id}: no readable modality")
    return case


def _predictions(
    model: ExplainableModel, cases: list[PatientCase], failed: dict[str, str]
) -> list[tuple[PatientCase, dict[str, Any]]]:
    """Each case's :func:`predict_case` result, one batch; when the batch fails, case by case
    (a case the model cannot run goes to ``failed``)."""
    from fuselens.model_zoo.predict import predict_case, predict_cases

    if not cases:
        return []
    try:
        return list(zip(cases, predict_cases(model, cases, batch_size=len(cases)), strict=True))
    except Exception as exc:  # noqa: BLE001 - a user's model: find the case(s) it fails on
        if len(cases) == 1:
            failed[cases[0].case_id] = _model_error(exc)
            return []
    out = []
    for case in cases:
        try:
            out.append((case, predict_case(model, case)))
        except Exception as exc:  # noqa: BLE001
            failed[case.case_id] = _model_error(exc)
    return out


def _model_error(exc: Exception) -> str:
    return f"the model failed on it: {type(exc).__name__}: {exc}"


def run_review(
    sessions: store.Sessions,
    cohort: str | Path | Cohort,
    model: ExplainableModel,
    model_name: str,
    run_name: str | None = None,
    task: str | None = None,
    threshold: float = 0.5,
    limit: int | None = None,
    progress: bool = True,
    on_stored: Callable[[CaseResult], None] | None = None,
    batch_size: int = 8,
) -> RunSummary:
    """Review every labelled case not yet stored for this run (at most ``limit`` new ones);
    ``task`` defaults to the model's first."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    cohort = cohort if isinstance(cohort, Cohort) else open_cohort(cohort)
    task = task or next(iter(model.tasks))
    cohort.check_labels(model.tasks, task)
    answers = list(model.tasks[task])
    labelled = cohort.labelled(task)
    name = run_name or default_run_name(cohort.root, model_name)
    run_id = store.open_run(
        sessions, name, cohort.root, model_name, task, threshold, labels_file=_labels_file(cohort)
    )
    done = store.stored_case_keys(sessions, run_id)
    todo = [c for c in labelled if c not in done]
    summary = RunSummary(run_id, name, len(labelled), len(labelled) - len(todo), task=task)
    summary.unlabelled = [c for c in cohort.case_ids if cohort.label(c, task) is None]
    if limit is not None:
        todo = todo[: max(limit, 0)]
    bar = tqdm(
        desc=f"review {name}",
        unit="case",
        total=len(labelled),
        initial=summary.stored_before,
        disable=not progress,
    )
    for start in range(0, len(todo), max(batch_size, 1)):
        cases = []
        for case_id in todo[start : start + max(batch_size, 1)]:
            try:
                cases.append(_load(cohort, case_id))
            except (OSError, ValueError) as exc:
                summary.failed[case_id] = str(exc)
                bar.update(1)
        for case, pred in _predictions(model, cases, summary.failed):
            bar.update(1)
            if not pred["modalities_used"]:
                summary.failed[case.case_id] = (
                    f"{case.case_id}: none of the modalities the model reads "
                    f"({', '.join(model.modalities)})"
                )
                continue
            label = cohort.label(case.case_id, task)
            result = score(
                case.case_id, answers, label, pred["tasks"][task], case.modalities(), threshold
            )
            if store.add_result(sessions, run_id, result, cohort.folder(case.case_id)):
                summary.added += 1
                if on_stored is not None:
                    on_stored(result)
    bar.close()
    stored = store.stored_case_keys(sessions, run_id)
    summary.stored_after = sum(c in stored for c in labelled)
    store.set_status(sessions, run_id, "complete" if summary.complete else "running")
    return summary


def model_label(spec: str | Path) -> str:
    """How a run names its model: ``demo`` and ``MODULE:FACTORY`` as given, a checkpoint
    folder by its absolute path."""
    from fuselens.model_zoo.loading import is_factory_spec

    s = str(spec)
    if s == "demo" or (is_factory_spec(s) and not Path(s).exists()):
        return s
    return str(Path(s).resolve())


def review_cohort(
    cohort: str | Path,
    model: str | Path | ExplainableModel = "demo",
    db_url: str | None = None,
    run_name: str | None = None,
    threshold: float = 0.5,
    limit: int | None = None,
    labels: str | Path | None = None,
    task: str | None = None,
    progress: bool = True,
    device: str | None = None,
) -> RunSummary:
    """Open the cohort (``labels``: a labels.csv), load the model (``demo``, a checkpoint
    folder, ``MODULE:FACTORY``, or a contract model) and the database (migrated), then
    :func:`run_review`."""
    from fuselens.app.storage.db import open_database
    from fuselens.model_zoo.loading import load_explainable

    opened = open_cohort(cohort, labels)  # a wrong folder or labels file fails before the model
    if isinstance(model, str | Path):
        model_name = model_label(model)
        loaded = load_explainable(model, device)
    else:
        model_name, loaded = str(model.name), model
    task = task or next(iter(loaded.tasks))
    opened.check_labels(loaded.tasks, task)
    engine, sessions = open_database(db_url)
    try:
        return run_review(
            sessions, opened, loaded, model_name, run_name, task, threshold, limit, progress
        )
    finally:
        engine.dispose()
