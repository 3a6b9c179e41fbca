"""The FuseLens tables: reader studies, error-review runs, tags, notes and the audit log.

Reader study: a :class:`Study` has :class:`Case` s (truth and the stored model answer),
:class:`Arm` s (what a reader is shown), :class:`Reader` s (an owner and readers) and one
:class:`Assignment` per reader x case x arm; an :class:`Answer` is unique per assignment.
A :class:`LoginSession` is one login of a reader, held on the server so logout ends it.
A :class:`ReadingEvent` is a panel a reader opened, closed or toggled during an assignment,
timed by the server; the answer keeps each panel's open seconds and the reader's marks.
``Answer.diagnosis`` is the binary call (1 = present) and ``Answer.confidence`` the reader's
confidence in that call (0 = a guess, 100 = certain); :mod:`fuselens.app.study.metrics`
turns the two into a 0-100 disease score for ROC analysis.

Error review: a :class:`ReviewRun` over a cohort holds one :class:`CaseResult` per case;
:class:`Tag` s (an editable taxonomy) attach to results through :class:`CaseTag`, and
:class:`Note` s are free text on a result.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

ROLES = ("owner", "reader")
OUTCOMES = ("TP", "FP", "TN", "FN")  # a yes/no task at a threshold
ANSWER_OUTCOMES = ("correct", "wrong")  # a task with other answers: the top answer
ALL_OUTCOMES = OUTCOMES + ANSWER_OUTCOMES


def utcnow() -> datetime:
    return datetime.now(UTC)


class Base(DeclarativeBase):
    pass


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    task: Mapped[str] = mapped_column(String(100), default="heart_failure")
    seed: Mapped[int] = mapped_column(Integer)
    config: Mapped[dict[str, Any]] = mapped_column(JSON)
    model_name: Mapped[str | None] = mapped_column(String(500))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    cases: Mapped[list[Case]] = relationship(back_populates="study", cascade="all, delete-orphan")
    arms: Mapped[list[Arm]] = relationship(back_populates="study", cascade="all, delete-orphan")
    readers: Mapped[list[Reader]] = relationship(
        back_populates="study", cascade="all, delete-orphan"
    )


class Case(Base):
    """One case of a study: its truth, the model's stored answer and explanation summary."""

    __tablename__ = "cases"
    __table_args__ = (UniqueConstraint("study_id", "case_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    case_key: Mapped[str] = mapped_column(String(200))
    folder: Mapped[str | None] = mapped_column(String(1000))
    truth: Mapped[int] = mapped_column(Integer)
    modalities: Mapped[list[Any]] = mapped_column(JSON, default=list)
    probability: Mapped[float | None] = mapped_column(Float)
    prediction: Mapped[int | None] = mapped_column(Integer)
    explanation: Mapped[dict[str, Any] | None] = mapped_column(JSON)

    study: Mapped[Study] = relationship(back_populates="cases")


class Arm(Base):
    """A reading condition: what the reader sees besides the case."""

    __tablename__ = "arms"
    __table_args__ = (UniqueConstraint("study_id", "name"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    position: Mapped[int] = mapped_column(Integer)
    show_prediction: Mapped[bool] = mapped_column(Boolean, default=False)
    show_explanations: Mapped[bool] = mapped_column(Boolean, default=False)
    panels: Mapped[list[Any] | None] = mapped_column(JSON)  # None: from show_* (before 0007)
    method: Mapped[str | None] = mapped_column(String(100))  # the heat maps' map method

    study: Mapped[Study] = relationship(back_populates="arms")


class Reader(Base):
    """A login of a study: the owner or a reader; ``code`` is the pseudonym used in exports."""

    __tablename__ = "readers"
    __table_args__ = (
        UniqueConstraint("study_id", "username"),
        UniqueConstraint("study_id", "code"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"), index=True)
    username: Mapped[str] = mapped_column(String(100))
    code: Mapped[str] = mapped_column(String(20))
    password_hash: Mapped[str] = mapped_column(String(300))
    role: Mapped[str] = mapped_column(String(10), default="reader")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    study: Mapped[Study] = relationship(back_populates="readers")


class LoginSession(Base):
    """One login: the browser's cookie holds a random token, the table only its SHA-256;
    ``csrf_token`` is the token its forms and JSON posts must carry. Ended by logout, an idle
    spell or its absolute lifetime (:mod:`fuselens.app.study.service`)."""

    __tablename__ = "login_sessions"

    id: Mapped[int] = mapped_column(primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    reader: Mapped[Reader] = relationship()


class Assignment(Base):
    """One reading: a reader x case x arm at a position in the reader's own order."""

    __tablename__ = "assignments"
    __table_args__ = (
        UniqueConstraint("reader_id", "case_id", "arm_id"),
        UniqueConstraint("reader_id", "order_index"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reader_id: Mapped[int] = mapped_column(ForeignKey("readers.id", ondelete="CASCADE"), index=True)
    case_id: Mapped[int] = mapped_column(ForeignKey("cases.id", ondelete="CASCADE"), index=True)
    arm_id: Mapped[int] = mapped_column(ForeignKey("arms.id", ondelete="CASCADE"), index=True)
    order_index: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    answered: Mapped[bool] = mapped_column(Boolean, default=False)

    reader: Mapped[Reader] = relationship()
    case: Mapped[Case] = relationship()
    arm: Mapped[Arm] = relationship()
    answer: Mapped[Answer | None] = relationship(back_populates="assignment", uselist=False)


class Answer(Base):
    __tablename__ = "answers"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), unique=True
    )
    diagnosis: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[int] = mapped_column(Integer)
    usefulness: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    free_text: Mapped[str] = mapped_column(Text, default="")
    seconds: Mapped[float] = mapped_column(Float)
    submitted_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    marks: Mapped[list[Any] | None] = mapped_column(JSON)  # what convinced the reader
    panel_seconds: Mapped[dict[str, Any] | None] = mapped_column(JSON)  # panel -> s open

    assignment: Mapped[Assignment] = relationship(back_populates="answer")


class ReadingEvent(Base):
    """A panel opened, closed or toggled while reading one assignment (server time)."""

    __tablename__ = "reading_events"

    id: Mapped[int] = mapped_column(primary_key=True)
    assignment_id: Mapped[int] = mapped_column(
        ForeignKey("assignments.id", ondelete="CASCADE"), index=True
    )
    panel: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class ReviewRun(Base):
    """The model run over a cohort for error review."""

    __tablename__ = "review_runs"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str | None] = mapped_column(String(200), unique=True, index=True)
    cohort_dir: Mapped[str] = mapped_column(String(1000))
    labels_file: Mapped[str | None] = mapped_column(String(1000))  # None: truth.json files
    model_name: Mapped[str] = mapped_column(String(500))
    task: Mapped[str] = mapped_column(String(100), default="heart_failure")
    threshold: Mapped[float] = mapped_column(Float, default=0.5)
    status: Mapped[str] = mapped_column(String(20), default="running")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    bundle_store: Mapped[str | None] = mapped_column(String(1000))  # None: no explanations
    methods: Mapped[list[Any] | None] = mapped_column(JSON)
    model_caveat: Mapped[str | None] = mapped_column(Text)  # None: run stored before it was kept

    results: Mapped[list[CaseResult]] = relationship(
        back_populates="run", cascade="all, delete-orphan"
    )


class CaseResult(Base):
    """The model's answer on one cohort case and its outcome against the truth: ``truth``
    and ``prediction`` 0/1 for a yes/no task (outcome TP/FP/TN/FN), answer indices otherwise
    (outcome correct/wrong); ``truth_answer`` / ``predicted_answer`` the answers themselves
    (``None`` in rows stored before they were kept, all yes/no); ``input_warnings`` the
    case's ingest warnings (files not loaded and why, files read with a warning)."""

    __tablename__ = "case_results"
    __table_args__ = (UniqueConstraint("run_id", "case_key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    run_id: Mapped[int] = mapped_column(
        ForeignKey("review_runs.id", ondelete="CASCADE"), index=True
    )
    case_key: Mapped[str] = mapped_column(String(200))
    folder: Mapped[str | None] = mapped_column(String(1000))
    truth: Mapped[int] = mapped_column(Integer)
    probability: Mapped[float] = mapped_column(Float)
    prediction: Mapped[int] = mapped_column(Integer)
    truth_answer: Mapped[str | None] = mapped_column(String(200))
    predicted_answer: Mapped[str | None] = mapped_column(String(200))
    outcome: Mapped[str] = mapped_column(String(10))
    modalities: Mapped[list[Any]] = mapped_column(JSON, default=list)
    bundle_key: Mapped[str | None] = mapped_column(String(64))  # None: no explanation stored
    input_warnings: Mapped[list[Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    run: Mapped[ReviewRun] = relationship(back_populates="results")
    tags: Mapped[list[CaseTag]] = relationship(
        back_populates="result", cascade="all, delete-orphan"
    )
    notes: Mapped[list[Note]] = relationship(back_populates="result", cascade="all, delete-orphan")


class Tag(Base):
    """An entry of the editable error taxonomy."""

    __tablename__ = "tags"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(100), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class CaseTag(Base):
    __tablename__ = "case_tags"
    __table_args__ = (UniqueConstraint("result_id", "tag_id"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int] = mapped_column(
        ForeignKey("case_results.id", ondelete="CASCADE"), index=True
    )
    tag_id: Mapped[int] = mapped_column(ForeignKey("tags.id", ondelete="CASCADE"), index=True)
    author: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    result: Mapped[CaseResult] = relationship(back_populates="tags")
    tag: Mapped[Tag] = relationship()


class Note(Base):
    __tablename__ = "notes"

    id: Mapped[int] = mapped_column(primary_key=True)
    result_id: Mapped[int] = mapped_column(
        ForeignKey("case_results.id", ondelete="CASCADE"), index=True
    )
    text: Mapped[str] = mapped_column(Text)
    author: Mapped[str] = mapped_column(String(100), default="")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)

    result: Mapped[CaseResult] = relationship(back_populates="notes")


class AuditLog(Base):
    """Who did what and when (logins, answers, exports, tags, notes)."""

    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(primary_key=True)
    at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    actor: Mapped[str] = mapped_column(String(100))
    action: Mapped[str] = mapped_column(String(50))
    study_id: Mapped[int | None] = mapped_column(
        ForeignKey("studies.id", ondelete="CASCADE"), index=True
    )
    run_id: Mapped[int | None] = mapped_column(
        ForeignKey("review_runs.id", ondelete="CASCADE"), index=True
    )
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
