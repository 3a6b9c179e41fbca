"""What ``fuselens study create / export / serve`` do (the CLI only parses arguments)."""

from __future__ import annotations

import dataclasses
import uuid
from pathlib import Path

from fuselens.app.cohort import open_cohort
from fuselens.app.storage.db import bundle_dir, data_dir, open_database
from fuselens.app.study.cases import ModelPredictor, load_study_cases, study_truth
from fuselens.app.study.config import load_config, resolve_passwords
from fuselens.app.study.export import export_study
from fuselens.app.study.service import create_study, get_study


def create_from_folder(
    cases_dir: str | Path,
    config_path: str | Path,
    db_url: str | None = None,
    model: str | None = None,
    progress: bool = True,
    labels: str | Path | None = None,
    task: str | None = None,
) -> tuple[int, dict[str, str]]:
    """Create the study from a cohort (``cases_dir`` with ``labels`` a labels.csv, else its
    own labels.csv, else its truth.json files) on the yes/no ``task`` (default: the
    config's); returns its id and the passwords generated for logins without one."""
    config, generated = resolve_passwords(load_config(config_path))
    if task:
        config = dataclasses.replace(config, task=task)
    cohort = open_cohort(cases_dir, labels)  # a wrong folder fails before the model loads
    study_truth(cohort, config.task)  # so do labels a reader study cannot use
    needs_model = any(a.show_prediction for a in config.arms)
    model_name = model or config.model
    config = dataclasses.replace(config, model=model_name)  # the study records the model used
    methods = list(dict.fromkeys(a.method for a in config.arms if a.show_explanations))
    store = bundle_dir() if methods else None
    predictor = ModelPredictor(model_name, config.task, store=store) if needs_model else None
    if predictor is not None:
        cohort.check_labels(predictor.model.tasks, config.task)
    folder = uuid.uuid4().hex
    media_dir = data_dir() / "study_media" / folder
    regions_dir = data_dir() / "study_regions" / folder
    specs = load_study_cases(
        cohort,
        config.task,
        predictor,
        media_dir,
        progress=progress,
        methods=methods,
        regions_dir=regions_dir,
    )
    engine, sessions = open_database(db_url)
    try:
        with sessions() as session:
            study = create_study(
                session,
                config,
                specs,
                extra={
                    "media_dir": str(media_dir),
                    "regions_dir": str(regions_dir),
                    "model": model_name,
                    "caveat": str(predictor.model.caveat) if predictor is not None else None,
                },
            )
            return study.id, generated
    finally:
        engine.dispose()


def export(
    study_id: int, out_csv: str | Path, out_imrmc: str | Path | None, db_url: str | None = None
) -> int:
    """Write the study's CSV (and iMRMC file); returns the CSV's row count."""
    engine, sessions = open_database(db_url)
    try:
        with sessions() as session:
            return export_study(session, study_id, out_csv, out_imrmc)
    finally:
        engine.dispose()


def serve(study_id: int, host: str, port: int, db_url: str | None = None) -> int:
    """Run the reader/owner server of one study until interrupted."""
    import uvicorn

    from fuselens.app.study.server import create_app

    engine, sessions = open_database(db_url)
    with sessions() as session:
        study = get_study(session, study_id)
        media = study.config.get("media_dir")
        name = study.name
    media_dir = Path(media) if media else None
    app = create_app(study_id, sessions, media_dir)
    print(f"reader study {study_id} ({name}) at http://{host}:{port}/", flush=True)
    try:
        uvicorn.run(app, host=host, port=port, log_level="warning")
    finally:
        engine.dispose()
    return 0
