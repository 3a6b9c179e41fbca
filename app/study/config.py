"""``study.yaml``: the study's name, arms, questions, readers and seed, checked on load.

Example::

    name: Heart failure, with and without AI
    task: heart_failure          # the yes/no task readers diagnose (a labels.csv column)
    seed: 7                      # reading orders
    model: demo                  # checkpoint whose answers the AI arms show
    arms:                        # a standard arm by name, or the panels it shows
      - no_ai                    # the case alone
      - ai                       # + the model's answer
      - {name: maps_only, panels: [prediction, heatmaps], method: gradcam_pp}
      - ai_explained             # + every explanation panel (PANELS)
    questions:
      diagnosis: Does this patient have heart failure?   # default: from the task's name
      usefulness: [prediction, heatmaps, report]   # panels rated 1-5 where shown (default all)
      free_text: true
      marks: true                # "mark what convinced you" on the X-ray, echo or ECG
    owner: {username: owner, password_env: FUSELENS_OWNER_PASSWORD}
    readers:
      - {username: reader01, password: change-me}
      - {username: reader02}     # no password: one is generated and printed once

Confidence (0-100, how sure the reader is of their own answer) is always asked. An arm
shows the panels it lists (:data:`PANELS`), drawn with the workstation's figure builders;
its heat maps come from one registered map method (``method``, default Grad-CAM++). The
older form ``{name, show_prediction, show_explanations}`` still reads: explanations mean
every explanation panel.
"""

from __future__ import annotations

import dataclasses
import os
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fuselens.explain.methods import DEFAULT_METHOD, REGISTRY

PANELS: dict[str, str] = {
    "prediction": "the model's answer and probability",
    "modality_contributions": "how much each modality contributed (Shapley values)",
    "lab_text": "which words of the lab results moved the answer (SHAP)",
    "heatmaps": "where the model looked on the ECG, echo and X-ray (heat maps)",
    "attention": "the model's cross-modal attention",
    "report": "the generated report with its evidence and checks",
}
EXPLANATION_PANELS = tuple(p for p in PANELS if p != "prediction")
STANDARD_ARMS: dict[str, tuple[str, ...]] = {
    "no_ai": (),
    "ai": ("prediction",),
    "ai_explained": tuple(PANELS),
}


def legacy_panels(show_prediction: bool, show_explanations: bool) -> tuple[str, ...]:
    """The panels of an arm given in the older ``show_prediction/show_explanations`` form."""
    return (("prediction",) if show_prediction else ()) + (
        EXPLANATION_PANELS if show_explanations else ()
    )


class StudyConfigError(ValueError):
    """``study.yaml`` is missing something or holds a value that cannot be used."""


@dataclass(frozen=True)
class ArmConfig:
    """A reading condition: the panels it shows (in :data:`PANELS` order) and the map method
    of its heat maps."""

    name: str
    panels: tuple[str, ...] = ()
    method: str = DEFAULT_METHOD

    @property
    def show_prediction(self) -> bool:
        return "prediction" in self.panels

    @property
    def show_explanations(self) -> bool:
        return any(p in EXPLANATION_PANELS for p in self.panels)

    def as_dict(self) -> dict[str, Any]:
        return {"name": self.name, "panels": list(self.panels), "method": self.method}


@dataclass(frozen=True)
class Person:
    """A login to create; ``password`` is ``None`` until :func:`resolve_passwords` fills it."""

    username: str
    password: str | None


@dataclass(frozen=True)
class Questions:
    diagnosis: str = "Does this patient have heart failure?"
    usefulness: tuple[str, ...] = tuple(PANELS)
    free_text: bool = True
    marks: bool = True


@dataclass(frozen=True)
class StudyConfig:
    name: str
    arms: tuple[ArmConfig, ...]
    readers: tuple[Person, ...]
    owner: Person
    seed: int = 0
    task: str = "heart_failure"
    model: str = "demo"
    questions: Questions = field(default_factory=Questions)

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready, without any password."""
        return {
            "name": self.name,
            "task": self.task,
            "seed": self.seed,
            "model": self.model,
            "arms": [a.as_dict() for a in self.arms],
            "questions": {
                "diagnosis": self.questions.diagnosis,
                "usefulness": list(self.questions.usefulness),
                "free_text": self.questions.free_text,
                "marks": self.questions.marks,
            },
            "readers": [r.username for r in self.readers],
            "owner": self.owner.username,
        }


def _arm(entry: Any) -> ArmConfig:
    if isinstance(entry, str):
        if entry not in STANDARD_ARMS:
            raise StudyConfigError(
                f"arm {entry!r}: not one of {', '.join(STANDARD_ARMS)}; "
                "give other arms as {name, panels, method}"
            )
        return ArmConfig(entry, STANDARD_ARMS[entry])
    if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
        raise StudyConfigError(f"arm {entry!r}: needs a name")
    name = entry["name"]
    unknown = set(entry) - {"name", "panels", "method", "show_prediction", "show_explanations"}
    if unknown:
        raise StudyConfigError(f"arm {name!r}: unknown keys {sorted(unknown)}")
    if "panels" in entry:
        if {"show_prediction", "show_explanations"} & set(entry):
            raise StudyConfigError(f"arm {name!r}: give panels or show_*, not both")
        listed = entry["panels"] or []
        if not isinstance(listed, list) or not all(isinstance(p, str) for p in listed):
            raise StudyConfigError(f"arm {name!r}: panels must be a list of panel names")
        bad = [p for p in listed if p not in PANELS]
        if bad:
            raise StudyConfigError(
                f"arm {name!r}: unknown panels {bad}; known: {', '.join(PANELS)}"
            )
        panels = tuple(p for p in PANELS if p in listed)
    else:
        default = STANDARD_ARMS.get(name, ())
        show_pred = bool(entry.get("show_prediction", "prediction" in default))
        show_expl = bool(entry.get("show_explanations", len(default) > 1))
        panels = legacy_panels(show_pred, show_expl)
    method = str(entry.get("method", DEFAULT_METHOD))
    if method not in REGISTRY:
        raise StudyConfigError(
            f"arm {name!r}: unknown map method {method!r}; known: {', '.join(REGISTRY)}"
        )
    arm = ArmConfig(name, panels, method)
    if arm.show_explanations and not arm.show_prediction:
        raise StudyConfigError(
            f"arm {name!r}: explanations need show_prediction (the prediction panel): "
            "an explanation explains the model's answer"
        )
    return arm


def _person(entry: Any, what: str) -> Person:
    if isinstance(entry, str):
        entry = {"username": entry}
    if not isinstance(entry, dict) or not str(entry.get("username", "")).strip():
        raise StudyConfigError(f"{what} {entry!r}: needs a username")
    unknown = set(entry) - {"username", "password", "password_env"}
    if unknown:
        raise StudyConfigError(f"{what} {entry['username']!r}: unknown keys {sorted(unknown)}")
    password = entry.get("password")
    if "password_env" in entry:
        password = os.environ.get(str(entry["password_env"]))
        if not password:
            raise StudyConfigError(
                f"{what} {entry['username']!r}: environment variable "
                f"{entry['password_env']} is not set"
            )
    if password is not None and len(str(password)) < 8:
        raise StudyConfigError(f"{what} {entry['username']!r}: password shorter than 8 characters")
    return Person(str(entry["username"]).strip(), None if password is None else str(password))


def diagnosis_question(task: str) -> str:
    """The yes/no question readers answer for ``task`` ("Does this patient have ...?")."""
    from fuselens.app.views import TASK_LABELS

    label = TASK_LABELS.get(task, task.replace("_", " "))
    return f"Does this patient have {label[:1].lower() + label[1:]}?"


def parse_config(data: Any) -> StudyConfig:
    """A :class:`StudyConfig` from parsed YAML; :class:`StudyConfigError` says what is wrong."""
    if not isinstance(data, dict):
        raise StudyConfigError("study config must be a mapping")
    unknown = set(data) - {"name", "task", "seed", "model", "arms", "questions", "readers", "owner"}
    if unknown:
        raise StudyConfigError(f"unknown keys {sorted(unknown)}")
    if not str(data.get("name", "")).strip():
        raise StudyConfigError("name is required")
    arms = tuple(_arm(a) for a in data.get("arms") or ())
    if not arms:
        raise StudyConfigError("at least one arm is required")
    if len({a.name for a in arms}) != len(arms):
        raise StudyConfigError("arm names must be unique")
    readers = tuple(_person(r, "reader") for r in data.get("readers") or ())
    if not readers:
        raise StudyConfigError("at least one reader is required")
    owner = _person(data.get("owner", "owner"), "owner")
    names = [r.username for r in readers] + [owner.username]
    if len(set(names)) != len(names):
        raise StudyConfigError("usernames must be unique (readers and owner)")
    q = data.get("questions") or {}
    if not isinstance(q, dict):
        raise StudyConfigError("questions must be a mapping")
    usefulness = tuple(q.get("usefulness", Questions.usefulness))
    bad = [p for p in usefulness if p not in PANELS]
    if bad:
        raise StudyConfigError(f"usefulness panels {bad}: known panels are {', '.join(PANELS)}")
    task = str(data.get("task", "heart_failure"))
    questions = Questions(
        diagnosis=str(q.get("diagnosis") or diagnosis_question(task)),
        usefulness=usefulness,
        free_text=bool(q.get("free_text", True)),
        marks=bool(q.get("marks", True)),
    )
    try:
        seed = int(data.get("seed", 0))
    except (TypeError, ValueError) as err:
        raise StudyConfigError(f"seed must be an integer, not {data.get('seed')!r}") from err
    return StudyConfig(
        name=str(data["name"]).strip(),
        arms=arms,
        readers=readers,
        owner=owner,
        seed=seed,
        task=task,
        model=str(data.get("model", "demo")),
        questions=questions,
    )


def load_config(path: str | Path) -> StudyConfig:
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, yaml.YAMLError) as err:
        raise StudyConfigError(f"{path}: {err}") from err
    try:
        return parse_config(data)
    except StudyConfigError as err:
        raise StudyConfigError(f"{path}: {err}") from err


def resolve_passwords(config: StudyConfig) -> tuple[StudyConfig, dict[str, str]]:
    """Generate a password for every login without one; returns the config and those new ones."""
    generated: dict[str, str] = {}

    def fill(p: Person) -> Person:
        if p.password is not None:
            return p
        generated[p.username] = secrets.token_urlsafe(12)
        return Person(p.username, generated[p.username])

    readers = tuple(fill(r) for r in config.readers)
    owner = fill(config.owner)
    return dataclasses.replace(config, readers=readers, owner=owner), generated
