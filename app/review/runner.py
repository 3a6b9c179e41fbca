"""``fuselens review``: the model over every labelled case of a cohort, each result committed
at once.

Any contract model and any of its tasks: a cohort is a folder of case folders with a
``labels.csv`` or a ``fuselens synth`` cohort (:mod:`fuselens.app.cohort`). A rerun of the
same run (same name, cohort, labels, model, task and threshold) skips the cases already
stored, so an interrupted review resumes where it stopped and nothing is computed twice.
Cases unlabelled for the task are left out of the run.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from fuselens.app.cohort import Cohort, LabelledCohort, open_cohort
from fuselens.app.identifier_text import redacted_warnings
from fuselens.app.review import store
from fuselens.app.review.cohort import CaseResult, score
from fuselens.app.review.workers import ExplainPlan

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
    seconds: float = 0.0
    cached: int = 0  # explained cases found in the bundle store
    bundles_written: int = 0
    retried: list[str] = field(default_factory=list)  # cases rerun after their worker died
    workers: list[dict[str, Any]] = field(default_factory=list)  # each worker's pid, peak MB
    input_warnings: dict[str, list[str]] = field(default_factory=dict)  # stored cases' warnings

    @property
    def complete(self) -> bool:
        return self.stored_after == self.total


def default_run_name(cohort: str | Path, model_name: str) -> str:
    """``<cohort folder> · <model>``: the same command line names the same run."""
    return f"{Path(cohort).resolve().name} · {Path(model_name).name or model_name}"


def _labels_file(cohort: Cohort) -> str | None:
    return str(cohort.source.resolve()) if isinstance(cohort, LabelledCohort) else None


def load_case_of(cohort: Cohort, case_id: str) -> PatientCase:
    """The cohort's case ``case_id``; ``ValueError`` when unreadable or empty (naming what
    went wrong with its files)."""
    from fuselens.app.ingest.errors import IngestError

    try:
        case = cohort.load(case_id)
    except IngestError as exc:
        raise ValueError(str(exc)) from exc
    if not case.modalities():
        why = f" ({'; '.join(redacted_warnings(case))})" if case.warnings else ""
        raise ValueError(f"{case_id}: no readable modality{why}")
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
            failed[cases[0].case_id] = model_error(exc)
            return []
    out = []
    for case in cases:
        try:
            out.append((case, predict_case(model, case)))
        except Exception as exc:  # noqa: BLE001
            failed[case.case_id] = model_error(exc)
    return out


def model_error(exc: Exception) -> str:
    """How a failure of the user's model on a case is reported."""
    return f"the model failed on it: {type(exc).__name__}: {exc}"


@dataclass
class Explained:
    """How a review explains its cases: on Ray workers, into a bundle store."""

    store_dir: str | Path
    plan: ExplainPlan = field(default_factory=ExplainPlan)
    workers: int = 1
    address: str | None = None
    model_spec: str | Path | None = None  # what each worker loads (default: the model itself)
    device: str | None = None
    max_attempts: int = 3
    on_output: Callable[[dict[str, Any]], None] | None = None


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
    explained: Explained | None = None,
) -> RunSummary:
    """Review every labelled case not yet stored for this run (at most ``limit`` new ones);
    ``task`` defaults to the model's first. With ``explained``, every case also gets its
    explanation bundle (computed on Ray workers, or found in the store), and a case stored
    without one is explained now."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    cohort = cohort if isinstance(cohort, Cohort) else open_cohort(cohort)
    task = task or next(iter(model.tasks))
    cohort.check_labels(model.tasks, task)
    labelled = cohort.labelled(task)
    name = run_name or default_run_name(cohort.root, model_name)
    run_id = store.open_run(
        sessions, name, cohort.root, model_name, task, threshold, _labels_file(cohort),
        str(model.caveat),
    )  # fmt: skip
    if explained is not None:
        store.set_explanations(sessions, run_id, explained.store_dir, explained.plan.methods)
    done = store.stored_case_keys(sessions, run_id, explained=explained is not None)
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
    t0 = time.perf_counter()
    review = _Review(sessions, cohort, model, task, threshold, run_id, summary, bar, on_stored)
    if explained is None:
        review.predict(todo, batch_size)
    else:
        review.explain(todo, model_name, explained)
    bar.close()
    summary.seconds = time.perf_counter() - t0
    stored = store.stored_case_keys(sessions, run_id, explained=explained is not None)
    summary.stored_after = sum(c in stored for c in labelled)
    store.set_status(sessions, run_id, "complete" if summary.complete else "running")
    return summary


@dataclass
class _Review:
    """One invocation's state: where results go and what it has done."""

    sessions: store.Sessions
    cohort: Cohort
    model: ExplainableModel
    task: str
    threshold: float
    run_id: int
    summary: RunSummary
    bar: Any
    on_stored: Callable[[CaseResult], None] | None

    def record(self, case_id: str, prediction: dict[str, Any], used: list[str],
               modalities: list[str], warnings: list[str],
               bundle_key: str | None = None) -> None:  # fmt: skip
        """Score one case's prediction and store it with its input ``warnings`` (the case's
        ingest warnings); a case no modality of the model reached fails."""
        if not used:
            self.summary.failed[case_id] = (
                f"{case_id}: none of the modalities the model reads "
                f"({', '.join(self.model.modalities)})"
            )
            return
        label = self.cohort.label(case_id, self.task)
        answers = list(self.model.tasks[self.task])
        result = score(case_id, answers, label, prediction, modalities, self.threshold)
        folder = self.cohort.folder(case_id)
        if store.add_result(self.sessions, self.run_id, result, folder, bundle_key, warnings):
            self.summary.added += 1
            if warnings:
                self.summary.input_warnings[case_id] = list(warnings)
            if self.on_stored is not None:
                self.on_stored(result)

    def predict(self, todo: list[str], batch_size: int) -> None:
        """Predictions only, in batches on this process's model."""
        for start in range(0, len(todo), max(batch_size, 1)):
            cases = []
            for case_id in todo[start : start + max(batch_size, 1)]:
                try:
                    cases.append(load_case_of(self.cohort, case_id))
                except (OSError, ValueError) as exc:
                    self.summary.failed[case_id] = str(exc)
                    self.bar.update(1)
            for case, pred in _predictions(self.model, cases, self.summary.failed):
                self.bar.update(1)
                self.record(
                    case.case_id, pred["tasks"][self.task], pred["modalities_used"],
                    case.modalities(), redacted_warnings(case),
                )  # fmt: skip

    def explain(self, todo: list[str], model_name: str, explained: Explained) -> None:
        """Every case explained on Ray workers; each new entry stored once, here."""
        from fuselens.app.review.workers import explain_on_pool, start_pool
        from fuselens.explain.bundle_store import BundleStore

        bundles = BundleStore(explained.store_dir)
        if not todo:
            return
        args = (
            explained.model_spec or self.model,
            explained.device,
            str(self.cohort.root),
            _labels_file(self.cohort),
            self.task,
            explained.plan,
            str(bundles.root.resolve()),
            model_name,
        )
        workers = max(1, min(explained.workers, len(todo)))
        pool = start_pool(
            workers, explained.address, explained.device, args, explained.max_attempts
        )
        try:
            for out in explain_on_pool(pool, todo, explained.max_attempts, explained.on_output):
                self.bar.update(1)
                case_id = out["case_id"]
                if "error" in out:
                    self.summary.failed[case_id] = out["error"]
                    continue
                if out["cached"]:
                    self.summary.cached += 1
                elif bundles.put_files(out["key"], out["files"]):
                    self.summary.bundles_written += 1
                self.record(
                    case_id, out["prediction"][self.task], out["modalities"],
                    out["case_modalities"], out["case_warnings"], out["key"],
                )  # fmt: skip
            self.summary.workers = pool.info()
            self.summary.retried = list(pool.retried)
        finally:
            pool.close()


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
    explained: Explained | None = None,
) -> RunSummary:
    """Open the cohort (``labels``: a labels.csv), load the model (``demo``, a checkpoint
    folder, ``MODULE:FACTORY``, or a contract model) and the database (migrated), then
    :func:`run_review` (``explained``: with every case's explanation, the workers loading
    the same model spec on ``device``)."""
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
    if explained is not None and isinstance(model, str | Path):
        explained.model_spec = explained.model_spec or str(model)
        explained.device = explained.device or device
    engine, sessions = open_database(db_url)
    try:
        return run_review(
            sessions, opened, loaded, model_name, run_name, task, threshold, limit, progress,
            explained=explained,
        )  # fmt: skip
    finally:
        engine.dispose()
