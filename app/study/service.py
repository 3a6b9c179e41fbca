"""Reader-study operations on the database: create, serve the next case, answer, progress.

Every function takes a SQLAlchemy :class:`Session` and commits what it changes before
returning, so an answer is durable as soon as :func:`submit_answer` returns.
"""

from __future__ import annotations

import hashlib
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from sqlalchemy import Integer, Select, func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session, joinedload

from fuselens.app.storage.models import (
    Answer,
    Arm,
    Assignment,
    AuditLog,
    Case,
    LoginSession,
    Reader,
    ReadingEvent,
    Study,
)
from fuselens.app.study.auth import hash_password, verify_password
from fuselens.app.study.config import StudyConfig, legacy_panels
from fuselens.explain.methods import DEFAULT_METHOD

CONFIDENCE_RANGE = (0, 100)
USEFULNESS_RANGE = (1, 5)
MAX_FREE_TEXT = 5000
MAX_MARKS = 20
MAX_EVENTS = 2000  # reading events kept per assignment
EVENT_ACTIONS = ("open", "close")
CASE_PANELS = ("labs", "ecg", "echo", "cxr")  # the case's own media: shown in every arm
MAX_ID = 2**63 - 1  # SQLite's largest integer: a larger id cannot even be looked up
IDLE_TIMEOUT = timedelta(minutes=30)
SESSION_LIFETIME = timedelta(hours=12)
TOUCH_EVERY = timedelta(minutes=1)  # how stale last_seen_at may get (spares a write per request)
UNKNOWN_LOGIN = "(unknown username)"
_DUMMY_HASH = hash_password("no such login")


class StudyError(Exception):
    """A request the study cannot honour; ``status`` is the HTTP status that fits."""

    status = 400


class NotFound(StudyError):
    status = 404


class Forbidden(StudyError):
    status = 403


class AlreadyAnswered(StudyError):
    status = 409


class InvalidAnswer(StudyError):
    status = 422


@dataclass
class CaseSpec:
    """A case to put in a study: its key, truth and the stored model answer (if any)."""

    case_key: str
    truth: int
    modalities: list[str] = field(default_factory=list)
    probability: float | None = None
    prediction: int | None = None
    explanation: dict[str, Any] | None = None
    folder: str | None = None


@dataclass(frozen=True)
class AnswerIn:
    diagnosis: int
    confidence: int
    usefulness: dict[str, int] = field(default_factory=dict)
    free_text: str = ""
    marks: list[dict[str, Any]] = field(default_factory=list)


def arm_panels(arm: Arm) -> tuple[str, ...]:
    """The panels ``arm`` shows (arms stored before panels were listed: from show_*)."""
    if arm.panels is not None:
        return tuple(arm.panels)
    return legacy_panels(arm.show_prediction, arm.show_explanations)


def arm_method(arm: Arm) -> str:
    return arm.method or DEFAULT_METHOD


def utc(dt: datetime) -> datetime:
    """``dt`` as aware UTC (SQLite hands timestamps back naive)."""
    return dt.replace(tzinfo=UTC) if dt.tzinfo is None else dt


def audit(session: Session, actor: str, action: str, study_id: int | None, **detail: Any) -> None:
    session.add(AuditLog(actor=actor, action=action, study_id=study_id, detail=detail))


def reading_order(seed: int, reader_index: int, n_cases: int, n_arms: int) -> list[tuple[int, int]]:
    """``(case index, arm index)`` in the order one reader reads them.

    Arms are read in blocks; the block order rotates with the reader (counterbalanced), and
    within each block the cases are shuffled by ``(seed, reader, arm)``.
    """
    order = []
    for block in range(n_arms):
        arm = (block + reader_index) % n_arms
        rng = np.random.default_rng([seed, reader_index, arm])
        order += [(int(c), arm) for c in rng.permutation(n_cases)]
    return order


def create_study(
    session: Session, config: StudyConfig, cases: Sequence[CaseSpec], extra: dict | None = None
) -> Study:
    """The study with its arms, logins, cases and a fully crossed set of assignments."""
    if not cases:
        raise StudyError("a study needs at least one case")
    keys = [c.case_key for c in cases]
    if len(set(keys)) != len(keys):
        raise StudyError("case keys must be unique")
    needs_ai = any(a.show_prediction for a in config.arms)
    missing = [c.case_key for c in cases if needs_ai and c.probability is None]
    if missing:
        raise StudyError(f"an AI arm needs the model's answer; missing for {missing[:5]}")
    for c in cases:
        if c.truth not in (0, 1):
            raise StudyError(f"case {c.case_key}: truth must be 0 or 1, not {c.truth!r}")
    people = [(p, "owner") for p in [config.owner]] + [(p, "reader") for p in config.readers]
    if any(p.password is None for p, _ in people):
        raise StudyError("every login needs a password (see resolve_passwords)")

    study = Study(
        name=config.name,
        task=config.task,
        seed=config.seed,
        config={**config.as_dict(), **(extra or {})},
        model_name=config.model if needs_ai else None,
    )
    session.add(study)
    arms = [
        Arm(
            name=a.name,
            position=i,
            show_prediction=a.show_prediction,
            show_explanations=a.show_explanations,
            panels=list(a.panels),
            method=a.method,
        )
        for i, a in enumerate(config.arms)
    ]
    study.arms = arms
    study.cases = [
        Case(
            case_key=c.case_key,
            folder=c.folder,
            truth=c.truth,
            modalities=list(c.modalities),
            probability=c.probability,
            prediction=c.prediction,
            explanation=c.explanation,
        )
        for c in cases
    ]
    study.readers = [
        Reader(
            username=p.username,
            code="OWNER" if role == "owner" else f"R{i:02d}",
            password_hash=hash_password(p.password),
            role=role,
        )
        for i, (p, role) in enumerate(people)
    ]
    session.flush()
    readers = [r for r in study.readers if r.role == "reader"]
    for r_index, reader in enumerate(readers):
        order = reading_order(config.seed, r_index, len(study.cases), len(arms))
        session.add_all(
            Assignment(
                reader_id=reader.id,
                case_id=study.cases[c].id,
                arm_id=arms[a].id,
                order_index=k,
            )
            for k, (c, a) in enumerate(order)
        )
    audit(
        session,
        config.owner.username,
        "study_created",
        study.id,
        cases=len(cases),
        arms=[a.name for a in arms],
        readers=len(readers),
    )
    session.commit()
    return study


def get_study(session: Session, study_id: int) -> Study:
    study = session.get(Study, study_id)
    if study is None:
        raise NotFound(f"no study {study_id}")
    return study


def authenticate(
    session: Session,
    study_id: int,
    username: str,
    password: str,
    client: str = "",
    verify: Callable[[str, str], bool] = verify_password,
) -> Reader | None:
    """The login whose password matches, or ``None`` (the attempt is audited either way).

    A failed attempt is audited under the username only when it is a login's own: text that
    matches no login may be a password typed into the wrong box, so it is not stored.
    """
    reader = session.scalar(
        select(Reader).where(Reader.study_id == study_id, Reader.username == username)
    )
    stored = reader.password_hash if reader else _DUMMY_HASH
    session.commit()  # scrypt runs outside the transaction: SQLite's write lock is not held
    # an unknown username costs the same scrypt as a known one (no username probing by timing)
    ok = verify(password, stored) and reader is not None
    actor = reader.username if reader else UNKNOWN_LOGIN
    audit(session, actor, "login" if ok else "login_failed", study_id, client=client)
    session.commit()
    return reader if ok else None


def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def open_login(session: Session, reader: Reader) -> tuple[str, LoginSession]:
    """A new server-side login of ``reader``: the token for the cookie, and the stored row."""
    token = secrets.token_urlsafe(32)
    login = LoginSession(
        reader_id=reader.id, token_hash=_token_hash(token), csrf_token=secrets.token_urlsafe(32)
    )
    session.add(login)
    session.commit()
    return token, login


def current_login(session: Session, token: str) -> LoginSession | None:
    """The open login of a cookie's ``token``; one idle for longer than :data:`IDLE_TIMEOUT`
    or older than :data:`SESSION_LIFETIME` is ended here."""
    login = session.scalar(
        select(LoginSession)
        .where(LoginSession.token_hash == _token_hash(token))
        .options(joinedload(LoginSession.reader))
    )
    if login is None or login.ended_at is not None:
        return None
    now = datetime.now(UTC)
    idle = now - utc(login.last_seen_at)
    if idle > IDLE_TIMEOUT or now - utc(login.created_at) > SESSION_LIFETIME:
        login.ended_at = now
        audit(session, login.reader.username, "session_expired", login.reader.study_id)
        session.commit()
        return None
    if idle > TOUCH_EVERY:
        login.last_seen_at = now
        session.commit()
    return login


def end_login(session: Session, token: str) -> None:
    """Logout: the cookie's login ends on the server, whatever copy of the cookie exists."""
    login = current_login(session, token)
    if login is None:
        return
    login.ended_at = datetime.now(UTC)
    audit(session, login.reader.username, "logout", login.reader.study_id)
    session.commit()


def _queue(reader: Reader) -> Select[tuple[Assignment]]:
    return (
        select(Assignment)
        .where(Assignment.reader_id == reader.id)
        .options(joinedload(Assignment.case), joinedload(Assignment.arm))
    )


def next_assignment(session: Session, reader: Reader) -> Assignment | None:
    """The reader's first unanswered assignment, its timer started when first served."""
    if reader.role != "reader":
        raise Forbidden("only readers have a reading queue")
    assignment = session.scalar(
        _queue(reader)
        .where(Assignment.answered.is_(False))
        .order_by(Assignment.order_index)
        .limit(1)
    )
    if assignment is None:
        session.commit()
        return None
    if assignment.started_at is None:
        assignment.started_at = datetime.now(UTC)
        audit(session, reader.username, "case_served", reader.study_id, assignment=assignment.id)
    session.commit()
    return assignment


def served_case(session: Session, reader: Reader, case_key: str) -> Case | None:
    """The case ``case_key`` if it has been served to ``reader`` (else ``None``)."""
    return session.scalar(
        select(Case)
        .join(Assignment, Assignment.case_id == Case.id)
        .where(
            Assignment.reader_id == reader.id,
            Assignment.started_at.is_not(None),
            Case.case_key == case_key,
        )
        .limit(1)
    )


def current_arms(session: Session, reader: Reader, case_key: str) -> list[Arm]:
    """The arms of the reader's served, unanswered assignments of ``case_key``: what may be
    shown of that case now (an explanation panel only while an arm showing it is open)."""
    return list(
        session.scalars(
            select(Arm)
            .join(Assignment, Assignment.arm_id == Arm.id)
            .join(Case, Case.id == Assignment.case_id)
            .where(
                Assignment.reader_id == reader.id,
                Assignment.started_at.is_not(None),
                Assignment.answered.is_(False),
                Case.case_key == case_key,
            )
        )
    )


def queue_size(session: Session, reader: Reader) -> int:
    """How many readings the reader has in all."""
    return session.scalar(
        select(func.count(Assignment.id)).where(Assignment.reader_id == reader.id)
    )


def shown_usefulness(asked: Sequence[str], panels: Sequence[str]) -> list[str]:
    """The panels whose usefulness the reader rates: those ``asked`` about that the arm
    shows (``panels``)."""
    return [p for p in asked if p in panels]


def check_marks(marks: Any, modalities: Sequence[str]) -> list[dict[str, Any]]:
    """The reader's marks, each checked (:func:`fuselens.app.study.marks.check_mark`: a point
    on the X-ray, on one echo frame, or a lead and a time on the ECG), on a modality the case
    has, with no coordinate or time below 0 and names of at most 20 characters."""
    from fuselens.app.study.marks import check_mark

    if not isinstance(marks, list):
        raise InvalidAnswer("marks must be a list")
    if len(marks) > MAX_MARKS:
        raise InvalidAnswer(f"at most {MAX_MARKS} marks")
    out = []
    for mark in marks:
        try:
            checked = check_mark(mark)
        except ValueError as err:
            raise InvalidAnswer(f"mark: {err}") from err
        if checked["modality"] not in modalities:
            raise InvalidAnswer(f"a mark on {checked['modality']}, which this case does not have")
        if any(checked.get(k, 0) < 0 for k in ("x", "y", "t", "frame")):
            raise InvalidAnswer("a mark's coordinates and time must not be negative")
        if any(len(checked.get(k, "")) > 20 for k in ("view", "lead")):
            raise InvalidAnswer("a mark's view or lead name is too long")
        out.append(checked)
    return out


def _check_answer(answer: AnswerIn, arm: Arm, study: Study) -> dict[str, int]:
    if answer.diagnosis not in (0, 1):
        raise InvalidAnswer("diagnosis must be 0 (absent) or 1 (present)")
    lo, hi = CONFIDENCE_RANGE
    if not isinstance(answer.confidence, int) or not lo <= answer.confidence <= hi:
        raise InvalidAnswer(f"confidence must be an integer from {lo} to {hi}")
    shown = shown_usefulness(study.config["questions"]["usefulness"], arm_panels(arm))
    if set(answer.usefulness) != set(shown):
        raise InvalidAnswer(f"rate the usefulness of exactly these panels: {shown}")
    lo, hi = USEFULNESS_RANGE
    for panel, rating in answer.usefulness.items():
        if not isinstance(rating, int) or not lo <= rating <= hi:
            raise InvalidAnswer(f"usefulness of {panel} must be an integer from {lo} to {hi}")
    if len(answer.free_text) > MAX_FREE_TEXT:
        raise InvalidAnswer(f"free text longer than {MAX_FREE_TEXT} characters")
    if answer.marks and not study.config["questions"].get("marks", False):
        raise InvalidAnswer("this study does not ask for marks")
    return {p: answer.usefulness[p] for p in shown}


def _open_assignment(session: Session, reader: Reader, assignment_id: int) -> Assignment:
    """One of the reader's served, unanswered assignments (else the error that says why)."""
    if not 1 <= assignment_id <= MAX_ID:
        raise NotFound("no such assignment in your queue")
    assignment = session.scalar(_queue(reader).where(Assignment.id == assignment_id))
    if assignment is None:
        session.rollback()
        raise NotFound(f"no assignment {assignment_id} in your queue")
    if assignment.answered:
        session.rollback()
        raise AlreadyAnswered(f"assignment {assignment_id} is already answered")
    if assignment.started_at is None:
        session.rollback()
        raise Forbidden(f"assignment {assignment_id} has not been served yet")
    return assignment


def panel_allowed(arm: Arm, panel: str) -> bool:
    """Whether a reader in ``arm`` may open ``panel`` (``heatmaps:cxr`` names a part)."""
    base = panel.split(":", 1)[0]
    return base in CASE_PANELS or base in arm_panels(arm)


def record_event(
    session: Session, reader: Reader, assignment_id: int, panel: str, action: str
) -> None:
    """A panel opened or closed while the reader reads an assignment, at the server's time."""
    assignment = _open_assignment(session, reader, assignment_id)
    if action not in EVENT_ACTIONS:
        raise InvalidAnswer(f"action must be one of {', '.join(EVENT_ACTIONS)}")
    if not isinstance(panel, str) or len(panel) > 60 or not panel_allowed(assignment.arm, panel):
        raise Forbidden("no such panel in this arm")
    count = session.scalar(
        select(func.count(ReadingEvent.id)).where(ReadingEvent.assignment_id == assignment.id)
    )
    if count >= MAX_EVENTS:
        raise InvalidAnswer(f"at most {MAX_EVENTS} reading events per case")
    session.add(ReadingEvent(assignment_id=assignment.id, panel=panel, action=action))
    session.commit()


def panel_seconds(events: Sequence[ReadingEvent], end: datetime) -> dict[str, float]:
    """Seconds each panel was open: from each ``open`` to the next ``close`` (or ``end``)."""
    opened: dict[str, datetime] = {}
    total: dict[str, float] = {}
    for e in sorted(events, key=lambda e: (utc(e.at), e.id)):
        at = utc(e.at)
        if e.action == "open":
            opened.setdefault(e.panel, at)
        elif e.panel in opened:
            start = opened.pop(e.panel)
            total[e.panel] = total.get(e.panel, 0.0) + (at - start).total_seconds()
    for panel, start in opened.items():
        total[panel] = total.get(panel, 0.0) + (end - start).total_seconds()
    return {p: round(v, 3) for p, v in sorted(total.items())}


def submit_answer(session: Session, reader: Reader, assignment_id: int, answer: AnswerIn) -> Answer:
    """Store the answer to one of the reader's served assignments; a second one is refused.

    The time taken is measured here: from when the case was first served to now.
    """
    assignment = _open_assignment(session, reader, assignment_id)
    study = session.get(Study, reader.study_id)
    usefulness = _check_answer(answer, assignment.arm, study)
    marks = check_marks(answer.marks, assignment.case.modalities)
    now = datetime.now(UTC)
    events = session.scalars(
        select(ReadingEvent).where(ReadingEvent.assignment_id == assignment.id)
    ).all()
    row = Answer(
        assignment_id=assignment.id,
        diagnosis=answer.diagnosis,
        confidence=answer.confidence,
        usefulness=usefulness,
        free_text=answer.free_text,
        seconds=round((now - utc(assignment.started_at)).total_seconds(), 3),
        submitted_at=now,
        marks=marks,
        panel_seconds=panel_seconds(events, now),
    )
    session.add(row)
    assignment.answered = True
    audit(session, reader.username, "answer", reader.study_id, assignment=assignment.id)
    try:
        session.commit()
    except IntegrityError as err:
        session.rollback()
        raise AlreadyAnswered(f"assignment {assignment_id} is already answered") from err
    return row


def case_view(assignment: Assignment) -> dict[str, Any]:
    """What the reader is sent for this assignment: the arm decides what the AI shows."""
    case, arm = assignment.case, assignment.arm
    panels = arm_panels(arm)
    view: dict[str, Any] = {
        "assignment_id": assignment.id,
        "position": assignment.order_index + 1,
        "case": {"key": case.case_key, "modalities": list(case.modalities)},
        "arm": {"name": arm.name, "panels": list(panels), "method": arm_method(arm)},
    }
    if "prediction" in panels:
        view["prediction"] = {"probability": case.probability, "answer": case.prediction}
    if "modality_contributions" in panels and case.explanation is not None:
        view["explanation"] = case.explanation
    return view


def progress(session: Session, study_id: int) -> list[dict[str, Any]]:
    """Answered and total assignments per reader (and per arm), in reader order."""
    rows = session.execute(
        select(
            Reader.code,
            Reader.username,
            Arm.name,
            func.count(Assignment.id),
            func.sum(Assignment.answered.cast(Integer)),
        )
        .join(Assignment, Assignment.reader_id == Reader.id)
        .join(Arm, Arm.id == Assignment.arm_id)
        .where(Reader.study_id == study_id)
        .group_by(Reader.code, Reader.username, Arm.name)
        .order_by(Reader.code, Arm.name)
    ).all()
    out: dict[str, dict[str, Any]] = {}
    for code, username, arm, total, answered in rows:
        entry = out.setdefault(
            code, {"reader": code, "username": username, "answered": 0, "total": 0, "arms": {}}
        )
        entry["answered"] += int(answered or 0)
        entry["total"] += int(total)
        entry["arms"][arm] = {"answered": int(answered or 0), "total": int(total)}
    return list(out.values())


def answer_rows(session: Session, study_id: int) -> list[dict[str, Any]]:
    """One row per reader x case x arm, answered or not; readers by pseudonym code only."""
    q = (
        select(Assignment, Reader, Case, Arm, Answer)
        .join(Reader, Reader.id == Assignment.reader_id)
        .join(Case, Case.id == Assignment.case_id)
        .join(Arm, Arm.id == Assignment.arm_id)
        .outerjoin(Answer, Answer.assignment_id == Assignment.id)
        .where(Reader.study_id == study_id)
        .order_by(Reader.code, Arm.position, Case.case_key)
    )
    rows = []
    for assignment, reader, case, arm, answer in session.execute(q):
        rows.append(
            {
                "reader": reader.code,
                "case": case.case_key,
                "arm": arm.name,
                "order": assignment.order_index + 1,
                "truth": case.truth,
                "ai_probability": case.probability,
                "ai_prediction": case.prediction,
                "ai_shown": "prediction" in arm_panels(arm),
                "explanations_shown": arm.show_explanations,
                "panels": list(arm_panels(arm)),
                "method": arm_method(arm),
                "answered": assignment.answered,
                "diagnosis": answer.diagnosis if answer else None,
                "confidence": answer.confidence if answer else None,
                "seconds": answer.seconds if answer else None,
                "usefulness": dict(answer.usefulness) if answer else {},
                "free_text": answer.free_text if answer else "",
                "marks": list(answer.marks or []) if answer else [],
                "panel_seconds": dict(answer.panel_seconds or {}) if answer else {},
            }
        )
    return rows
