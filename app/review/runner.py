"""``fuselens review``: the model over every case of a cohort, each result committed at once.

A rerun of the same run (same name, cohort, model and task) skips the cases already
stored, so an interrupted review resumes where it stopped and nothing is computed twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from app.review import store
from app.review.cohort import TASK, CaseResult, review_case
from model_zoo.synth.truth import case_folders

if TYPE_CHECKING:
    from model_zoo.model import FusionModel


@dataclass
class RunSummary:
    """What one invocation did: cases found stored, new results, cases it could not read."""

    run_id: int
    name: str
    total: int
    stored_before: int
    added: int = 0
    stored_after: int = 0
    failed: dict[str, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        return self.stored_after == self.total


def default_run_name(cohort: str | Path, model_name: str) -> str:
    """``<cohort folder> · <model>``: the same command line names the same run."""
    return f"{Path(cohort).resolve().name} · {Path(model_name).name or model_name}"


def run_review(
    sessions: store.Sessions,
    cohort: str | Path,
    model: FusionModel,
    model_name: str,
    run_name: str | None = None,
    task: str = TASK,
    threshold: float = 0.5,
    limit: int | None = None,
    progress: bool = True,
    on_stored: Callable[[CaseResult], None] | None = None,
) -> RunSummary:
    """Review every case not yet stored for this run (at most ``limit`` new ones)."""
    if not 0.0 < threshold < 1.0:
        raise ValueError(f"threshold must be between 0 and 1, got {threshold}")
    folders = case_folders(cohort)
    name = run_name or default_run_name(cohort, model_name)
    run_id = store.open_run(sessions, name, cohort, model_name, task, threshold)
    done = store.stored_case_keys(sessions, run_id)
    todo = [f for f in folders if f.name not in done]
    summary = RunSummary(run_id, name, len(folders), len(folders) - len(todo))
    if limit is not None:
        todo = todo[: max(limit, 0)]
    bar = tqdm(
        todo,
        desc=f"review {name}",
        unit="case",
        total=len(folders),
        initial=summary.stored_before,
        disable=not progress,
    )
    for folder in bar:
        try:
            result = review_case(model, folder, task, threshold)
        except (OSError, ValueError) as exc:
            summary.failed[folder.name] = str(exc)
            continue
        if store.add_result(sessions, run_id, result, folder):
            summary.added += 1
            if on_stored is not None:
                on_stored(result)
    bar.close()
    stored = store.stored_case_keys(sessions, run_id)
    summary.stored_after = sum(f.name in stored for f in folders)
    store.set_status(sessions, run_id, "complete" if summary.complete else "running")
    return summary


def review_cohort(
    cohort: str | Path,
    model: str = "demo",
    db_url: str | None = None,
    run_name: str | None = None,
    threshold: float = 0.5,
    limit: int | None = None,
    progress: bool = True,
) -> RunSummary:
    """Load the checkpoint and the database (migrated), then :func:`run_review`."""
    from app.storage.db import open_database
    from model_zoo.registry import load_model

    case_folders(cohort)  # a wrong folder fails before the model loads
    model_name = model if model == "demo" else str(Path(model).resolve())
    loaded, _ = load_model(model)
    engine, sessions = open_database(db_url)
    try:
        return run_review(
            sessions, cohort, loaded, model_name, run_name, TASK, threshold, limit, progress
        )
    finally:
        engine.dispose()
