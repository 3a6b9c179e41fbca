"""Reader-study service, config, passwords and exports on a real SQLite database (no server)."""

from __future__ import annotations

import csv
import io
import subprocess
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select
from study_support import PASSWORD, fake_cases, study_config

from fuselens.app.storage.models import Assignment, AuditLog, Reader
from fuselens.app.study.auth import hash_password, verify_password
from fuselens.app.study.config import StudyConfigError, parse_config, resolve_passwords
from fuselens.app.study.export import BASE_COLUMNS, csv_text, imrmc_text
from fuselens.app.study.results import study_results
from fuselens.app.study.service import (
    AlreadyAnswered,
    AnswerIn,
    Forbidden,
    InvalidAnswer,
    NotFound,
    StudyError,
    answer_rows,
    authenticate,
    case_view,
    create_study,
    next_assignment,
    progress,
    submit_answer,
)

ROOT = Path(__file__).resolve().parents[1]
ARMS = ["no_ai", "ai", "ai_explained"]


def _study(session, n_readers=3, n_cases=6, arms=ARMS, seed=11):
    config, _ = resolve_passwords(parse_config(study_config(n_readers, arms, seed)))
    return create_study(session, config, fake_cases(n_cases, seed))


def _readers(session, study):
    return session.scalars(
        select(Reader).where(Reader.study_id == study.id, Reader.role == "reader")
    ).all()


def _answer(view, diagnosis=1, confidence=60):
    rated = {p: 4 for p in view["arm"]["panels"]}  # every panel is asked about by default
    return AnswerIn(diagnosis, confidence, rated, "")


def test_passwords_are_salted_scrypt_hashes():
    a, b = hash_password("correct horse"), hash_password("correct horse")
    assert a != b and a.startswith("scrypt$") and "correct" not in a
    assert verify_password("correct horse", a) and verify_password("correct horse", b)
    assert not verify_password("correct horsf", a)
    assert not verify_password("x", "not-a-hash") and not verify_password("x", "md5$1$2$3$4$5")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"arms": ["no_ai", "magic"]}, "not one of"),
        ({"arms": []}, "at least one arm"),
        ({"arms": ["ai", "ai"]}, "unique"),
        ({"arms": [{"name": "x", "show_explanations": True}]}, "need show_prediction"),
        ({"readers": []}, "at least one reader"),
        ({"readers": [{"username": "r", "password": "short"}]}, "shorter than 8"),
        ({"readers": [{"username": "owner"}]}, "unique"),
        ({"readers": [{"username": "r", "password_env": "FUSELENS_NO_SUCH_VAR"}]}, "not set"),
        ({"questions": {"usefulness": ["heatmap"]}}, "known panels"),
        ({"arms": [{"name": "x", "panels": ["heatmaps"]}]}, "need show_prediction"),
        ({"arms": [{"name": "x", "panels": ["prediction", "glow"]}]}, "unknown panels"),
        ({"arms": [{"name": "x", "panels": ["prediction"], "method": "magic"}]}, "map method"),
        ({"arms": [{"name": "x", "panels": [], "show_prediction": True}]}, "not both"),
        ({"seed": "abc"}, "integer"),
        ({"colour": "red"}, "unknown keys"),
    ],
)
def test_bad_config_is_refused_with_a_reason(change, message):
    with pytest.raises(StudyConfigError, match=message):
        parse_config({**study_config(2, ["no_ai"]), **change})


def test_missing_passwords_are_generated_and_work(db):
    raw = study_config(2, ["no_ai"])
    raw["readers"][1] = {"username": "reader01"}
    config, generated = resolve_passwords(parse_config(raw))
    assert list(generated) == ["reader01"] and len(generated["reader01"]) >= 12
    study = create_study(db, config, fake_cases(2))
    assert authenticate(db, study.id, "reader01", generated["reader01"]) is not None
    assert authenticate(db, study.id, "reader00", PASSWORD) is not None
    assert authenticate(db, study.id, "reader00", "wrong-password") is None
    actions = Counter(db.scalars(select(AuditLog.action)).all())
    assert actions["login"] == 2 and actions["login_failed"] == 1


def test_assignments_are_fully_crossed_in_each_readers_own_order(db):
    study = _study(db, n_readers=3, n_cases=6)
    orders = {}
    for r in _readers(db, study):
        rows = db.scalars(
            select(Assignment).where(Assignment.reader_id == r.id).order_by(Assignment.order_index)
        ).all()
        pairs = [(a.case_id, a.arm_id) for a in rows]
        assert len(pairs) == len(set(pairs)) == 6 * 3  # every case in every arm, once
        assert [a.order_index for a in rows] == list(range(18))
        arm_blocks = [rows[k * 6].arm_id for k in range(3)]
        assert all(a.arm_id == arm_blocks[k // 6] for k, a in enumerate(rows))
        orders[r.code] = (arm_blocks, [a.case_id for a in rows[:6]])
    # arm order counterbalanced across readers, case order differs between readers
    assert len({tuple(b) for b, _ in orders.values()}) == 3
    assert len({tuple(c) for _, c in orders.values()}) > 1
    # the same seed gives the same orders
    again = _study(db, n_readers=3, n_cases=6)
    first = [
        a.order_index
        for a in db.scalars(
            select(Assignment)
            .join(Reader)
            .where(Reader.study_id == again.id)
            .order_by(Assignment.reader_id, Assignment.case_id, Assignment.arm_id)
        )
    ]
    second = [
        a.order_index
        for a in db.scalars(
            select(Assignment)
            .join(Reader)
            .where(Reader.study_id == study.id)
            .order_by(Assignment.reader_id, Assignment.case_id, Assignment.arm_id)
        )
    ]
    assert first == second


def test_answers_are_checked_stored_once_and_timed(db):
    study = _study(db, n_readers=2, n_cases=2)
    r0, r1 = _readers(db, study)
    a = next_assignment(db, r0)
    view = case_view(a)
    assert next_assignment(db, r0).id == a.id  # served again until answered
    with pytest.raises(InvalidAnswer, match="confidence"):
        submit_answer(db, r0, a.id, AnswerIn(1, 101, _answer(view).usefulness))
    with pytest.raises(InvalidAnswer, match="diagnosis"):
        submit_answer(db, r0, a.id, AnswerIn(2, 50, _answer(view).usefulness))
    with pytest.raises(InvalidAnswer, match="panels"):
        submit_answer(db, r0, a.id, AnswerIn(1, 50, {"heatmap": 3}))
    with pytest.raises(NotFound):
        submit_answer(db, r1, a.id, _answer(view))  # not in r1's queue
    later = db.scalar(
        select(Assignment).where(Assignment.reader_id == r0.id, Assignment.order_index == 3)
    )
    with pytest.raises(Forbidden):
        submit_answer(db, r0, later.id, _answer(view))  # never served
    stored = submit_answer(db, r0, a.id, _answer(view, 1, 80))
    assert stored.seconds >= 0 and stored.confidence == 80
    with pytest.raises(AlreadyAnswered):
        submit_answer(db, r0, a.id, _answer(view))
    assert next_assignment(db, r0).order_index == 1
    p = {x["reader"]: x for x in progress(db, study.id)}
    assert p["R01"]["answered"] == 1 and p["R01"]["total"] == 6 and p["R02"]["answered"] == 0
    with pytest.raises(Forbidden):
        next_assignment(db, db.scalar(select(Reader).where(Reader.role == "owner")))


def test_ai_arms_need_the_models_answer(db):
    config, _ = resolve_passwords(parse_config(study_config(1, ["ai"])))
    cases = fake_cases(2)
    cases[1].probability = None
    with pytest.raises(StudyError, match="model's answer"):
        create_study(db, config, cases)


def _simulate(db, study, rng):
    """Every reader answers every reading; returns nothing (the answers are in the database)."""
    for reader in _readers(db, study):
        while (a := next_assignment(db, reader)) is not None:
            view = case_view(a)
            truth = a.case.truth
            right = rng.random() < 0.75
            submit_answer(
                db,
                reader,
                a.id,
                _answer(view, truth if right else 1 - truth, int(rng.integers(0, 101))),
            )


def test_export_rows_and_numbers_match_an_independent_computation(db):
    study = _study(db, n_readers=3, n_cases=8)
    _simulate(db, study, np.random.default_rng(5))
    rows = answer_rows(db, study.id)
    text = csv_text(rows, study.config["questions"]["usefulness"])
    table = list(csv.DictReader(io.StringIO(text)))
    assert len(table) == 3 * 8 * 3
    assert len({(r["reader"], r["case"], r["arm"]) for r in table}) == len(table)
    header = set(table[0])
    assert set(BASE_COLUMNS) <= header
    for forbidden in ("username", "password", "password_hash", "submitted_at", "folder", "name"):
        assert forbidden not in header
    usernames = {r.username for r in _readers(db, study)} | {"owner"}
    assert not any(u in text for u in usernames)
    assert {r["reader"] for r in table} == {"R01", "R02", "R03"}

    # accuracy per reader x arm and Cohen's kappa of R01 vs R02, by hand from the CSV
    results = study_results(db, study.id)
    for perf in results["performance"]:
        mine = [r for r in table if r["reader"] == perf["reader"] and r["arm"] == perf["arm"]]
        hand = sum(r["diagnosis"] == r["truth"] for r in mine) / len(mine)
        assert perf["accuracy"] == pytest.approx(hand)
    arm = "no_ai"
    d1 = {r["case"]: int(r["diagnosis"]) for r in table if r["reader"] == "R01" and r["arm"] == arm}
    d2 = {r["case"]: int(r["diagnosis"]) for r in table if r["reader"] == "R02" and r["arm"] == arm}
    keys = sorted(d1)
    po = np.mean([d1[k] == d2[k] for k in keys])
    p1, p2 = np.mean([d1[k] for k in keys]), np.mean([d2[k] for k in keys])
    pe = p1 * p2 + (1 - p1) * (1 - p2)
    hand_kappa = (po - pe) / (1 - pe)
    kappa = next(
        k
        for k in results["cohen_kappa"]
        if k["arm"] == arm and {k["reader_a"], k["reader_b"]} == {"R01", "R02"}
    )
    assert kappa["kappa"] == pytest.approx(hand_kappa)
    assert {o["analysis"] for o in results["orh"]["auc"]} >= {"random readers, random cases"}


def test_imrmc_file_is_well_formed(db):
    study = _study(db, n_readers=2, n_cases=5, arms=["no_ai", "ai"])
    _simulate(db, study, np.random.default_rng(2))
    text = imrmc_text(answer_rows(db, study.id), "FuseLens reader study\nwith a newline")
    lines = text.splitlines()
    begin = lines.index("BEGIN DATA:")
    header = dict(
        line.split(": ", 1) for line in lines[:begin] if line[:3] in ("NR:", "N0:", "N1:", "NM:")
    )
    assert header == {"NR": "2", "N0": "3", "N1": "2", "NM": "2"}  # truths 0, 1, 0, 1, 0
    assert lines[0] == "FuseLens reader study with a newline"
    data = [line.split(",") for line in lines[begin + 1 :]]
    assert all(len(row) == 4 for row in data)
    truth = [row for row in data if row[0] == "-1"]
    assert sorted(int(r[1]) for r in truth) == [1, 2, 3, 4, 5]
    assert all(r[2] == "0" and r[3] in ("0", "1") for r in truth)
    scores = [row for row in data if row[0] != "-1"]
    assert len(scores) == 2 * 5 * 2
    assert {r[2] for r in scores} == {"no_ai", "ai"}
    assert all(0 <= float(r[3]) <= 100 for r in scores)
    assert len({(r[0], r[1], r[2]) for r in scores}) == len(scores)


def test_cli_creates_a_study_from_synthetic_case_folders_and_exports_it(
    tmp_path, monkeypatch, capsys
):
    import torch
    from test_model_support import tiny_config

    from fuselens.app.cli import main
    from fuselens.model_zoo.model import FusionModel
    from fuselens.model_zoo.registry import save_model
    from fuselens.model_zoo.synth.cohort import write_cohort

    torch.manual_seed(0)
    model = save_model(FusionModel(tiny_config()), tmp_path / "model")
    write_cohort(tmp_path / "cases", n=1, seed=4, progress=False)
    for extra in [*tmp_path.glob("cases/*/echo_A2C.dcm"), *tmp_path.glob("cases/*/echo_PLAX.dcm")]:
        extra.unlink()  # one case with one echo view keeps the test fast on a loaded CPU
    config = tmp_path / "study.yaml"
    config.write_text(
        "name: CLI study\nseed: 2\narms: [no_ai, ai_explained]\n"
        "readers:\n  - {username: alice, password: alice-pass}\n  - {username: bob}\n"
        "owner: {username: boss, password: boss-pass-1}\n"
    )
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    monkeypatch.setenv("FUSELENS_DATA_DIR", str(tmp_path / "data"))
    cases = ["--cases", str(tmp_path / "cases"), "--config", str(config), "--db", url]
    assert main(["study", "create", *cases, "--model", str(model), "--quiet"]) == 0
    out, err = capsys.readouterr()
    study_id = int(out.strip())
    assert "generated password for bob" in err
    media = sorted((tmp_path / "data" / "study_media").glob("*/*"))
    assert [m.name for m in media] == ["P00000"]
    assert all(
        {"labs.json", "ecg.json", "cxr.png", "echo_A4C.mp4"} <= {f.name for f in m.iterdir()}
        for m in media
    )

    exported = subprocess.run(
        [
            sys.executable,
            "-m",
            "fuselens.app.cli",
            "study",
            "export",
            str(study_id),
            "--out",
            str(tmp_path / "out.csv"),
            "--imrmc",
            str(tmp_path / "out.imrmc"),
            "--db",
            url,
        ],
        cwd=ROOT,
        env={"FUSELENS_DATA_DIR": str(tmp_path / "data"), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert exported.returncode == 0, exported.stderr
    table = list(csv.DictReader((tmp_path / "out.csv").open()))
    assert len(table) == 2 * 1 * 2 and not any(r["answered"] == "True" for r in table)
    assert all(0 < float(r["ai_probability"]) < 1 for r in table)
    assert "BEGIN DATA:" in (tmp_path / "out.imrmc").read_text()

    bad = ["--cases", str(tmp_path / "nowhere"), "--config", str(config), "--db", url]
    assert main(["study", "create", *bad, "--quiet"]) == 2
    assert "nowhere" in capsys.readouterr().err
