"""What ``fuselens study create / export / serve`` do (the CLI only parses arguments)."""

from __future__ import annotations

import uuid
from pathlib import Path

from app.storage.db import data_dir, open_database
from app.study.cases import ModelPredictor, load_study_cases
from app.study.config import load_config, resolve_passwords
from app.study.export import export_study
from app.study.service import create_study, get_study
from model_zoo.synth.truth import case_folders


def create_from_folder(
    cases_dir: str | Path,
    config_path: str | Path,
    db_url: str | None = None,
    model: str | None = None,
    progress: bool = True,
) -> tuple[int, dict[str, str]]:
    """Create the study; returns its id and the passwords generated for logins without one."""
    config, generated = resolve_passwords(load_config(config_path))
    case_folders(cases_dir)  # a wrong folder fails before the model loads
    needs_model = any(a.show_prediction for a in config.arms)
    model_name = model or config.model
    predictor = ModelPredictor(model_name, config.task) if needs_model else None
    media_dir = data_dir() / "study_media" / uuid.uuid4().hex
    specs = load_study_cases(cases_dir, config.task, predictor, media_dir, progress=progress)
    engine, sessions = open_database(db_url)
    try:
        with sessions() as session:
            study = create_study(
                session,
                config,
                specs,
                extra={"media_dir": str(media_dir), "model": model_name},
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

    from app.study.server import create_app

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
