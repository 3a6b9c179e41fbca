"""Cohorts: a folder of case folders and each case's label per task.

Two kinds behind one interface (:class:`Cohort`):

* :class:`LabelledCohort`: a ``labels.csv`` with a ``case_id`` column and one column per
  task, each value one of the task's answers (``yes``/``no``, class names); a blank cell
  means the case is unlabelled for that task. ``case_id`` names the case folder under the
  cohort folder.
* :class:`SyntheticCohort`: a ``fuselens synth`` cohort, each case folder with its
  ``truth.json``: ``heart_failure`` from the truth labels, and each finding task "yes"
  when the finding is among the truth findings of its modality, "no" when the modality is
  present without it (unlabelled when the modality is absent).

:func:`open_cohort` picks the kind: an explicit ``labels.csv``, else ``labels.csv`` inside
the folder, else the synthetic cohort.
"""

from __future__ import annotations

import csv
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from fuselens.model_zoo.case import PatientCase

LABELS_FILE = "labels.csv"
CASE_ID = "case_id"


class CohortError(ValueError):
    """A cohort's labels cannot be used (the message names the file)."""


class Cohort:
    """Case folders under ``root`` and their labels; subclasses fill ``_folders`` (case id ->
    folder, in cohort order) and ``_labels`` (case id -> task -> answer)."""

    kind = "cohort"
    root: Path
    source: Path  # the file the labels come from (labels.csv, or the root for truth.json)
    _folders: dict[str, Path]
    _labels: dict[str, dict[str, str]]
    _tasks: list[str]

    @property
    def case_ids(self) -> list[str]:
        """Every case of the cohort, in cohort order."""
        return list(self._folders)

    @property
    def tasks(self) -> list[str]:
        """The tasks the cohort has labels for (columns of labels.csv)."""
        return list(self._tasks)

    def __len__(self) -> int:
        return len(self._folders)

    def folder(self, case_id: str) -> Path:
        """The case's folder."""
        try:
            return self._folders[case_id]
        except KeyError:
            raise KeyError(f"{self.source}: no case {case_id!r}") from None

    def label(self, case_id: str, task: str) -> str | None:
        """The case's answer for ``task``; ``None`` when it is unlabelled for it."""
        self.folder(case_id)
        return self._labels.get(case_id, {}).get(task)

    def labelled(self, task: str) -> list[str]:
        """The cases with a label for ``task``, in cohort order."""
        return [c for c in self._folders if self.label(c, task) is not None]

    def describe(self) -> str:
        """Where the labels come from, for messages (the labels file, or the folder)."""
        return str(self.source)

    def check_labels(self, model_tasks: Mapping[str, Sequence[str]], task: str) -> None:
        """Raise a :class:`CohortError` naming the file unless ``task`` is a model task the
        cohort labels, every label of it one of the model's answers."""
        if task not in model_tasks:
            raise CohortError(f"the model has no task {task!r} (it has {', '.join(model_tasks)})")
        if task not in self._tasks:
            raise CohortError(
                f"{self.describe()}: no labels for task {task!r} "
                f"(labelled tasks: {', '.join(self._tasks) or 'none'})"
            )
        answers = [str(a) for a in model_tasks[task]]
        for case_id in self._folders:
            value = self.label(case_id, task)
            if value is not None and value not in answers:
                raise CohortError(
                    f"{self.describe()}: case {case_id!r}, task {task!r}: {value!r} is not "
                    f"one of the model's answers ({', '.join(answers)})"
                )
        if not self.labelled(task):
            raise CohortError(f"{self.describe()}: no case is labelled for task {task!r}")

    def load(self, case_id: str) -> PatientCase:
        """Read the case folder (``fuselens.app.ingest.load_case``); a synthetic case folder
        (``truth.json`` and ``evidence.npz``) gets its planted truth attached."""
        from fuselens.app.ingest import load_case
        from fuselens.model_zoo.synth.truth import load_truth

        folder = self.folder(case_id)
        case, _ = load_case(folder)
        case.case_id = case_id
        if (folder / "truth.json").is_file() and (folder / "evidence.npz").is_file():
            case.truth = load_truth(folder)
        return case


def _cell(value: Any) -> str | None:
    text = "" if value is None else str(value).strip()
    return text or None


class LabelledCohort(Cohort):
    """Case folders under ``folder`` named by the ``case_id`` column of ``labels_csv``."""

    kind = "labelled"

    def __init__(self, folder: str | Path, labels_csv: str | Path | None = None):
        self.root = Path(folder)
        self.source = Path(labels_csv) if labels_csv is not None else self.root / LABELS_FILE
        if not self.root.is_dir():
            raise FileNotFoundError(f"{self.root}: not a folder")
        if not self.source.is_file():
            raise FileNotFoundError(f"{self.source}: no such labels file")
        self._folders, self._labels, self._tasks = {}, {}, []
        self._read()

    def _read(self) -> None:
        src = self.source
        try:
            with src.open(newline="", encoding="utf-8-sig") as f:
                rows = list(csv.reader(f))
        except (OSError, UnicodeDecodeError, csv.Error) as exc:
            raise CohortError(f"{src}: cannot be read as CSV ({exc})") from exc
        rows = [r for r in rows if any(c.strip() for c in r)]
        if not rows:
            raise CohortError(f"{src}: empty (needs a header with {CASE_ID!r} and task columns)")
        header = [c.strip() for c in rows[0]]
        if CASE_ID not in header:
            raise CohortError(
                f"{src}: no {CASE_ID!r} column (columns: {', '.join(h for h in header if h)})"
            )
        blank = [i + 1 for i, h in enumerate(header) if not h]
        if blank:
            raise CohortError(f"{src}: column {blank[0]} of the header has no name")
        repeated = sorted({h for h in header if header.count(h) > 1})
        if repeated:
            raise CohortError(f"{src}: repeated columns {', '.join(repeated)}")
        id_col = header.index(CASE_ID)
        self._tasks = [h for h in header if h != CASE_ID]
        if not self._tasks:
            raise CohortError(f"{src}: no task columns besides {CASE_ID!r}")
        seen: dict[str, int] = {}
        missing: list[str] = []
        for line, row in enumerate(rows[1:], start=2):
            if len(row) > len(header) and any(c.strip() for c in row[len(header) :]):
                raise CohortError(f"{src}: line {line} has more cells than the header")
            cells = [_cell(c) for c in row] + [None] * (len(header) - len(row))
            case_id = cells[id_col]
            if case_id is None:
                raise CohortError(f"{src}: line {line} has no {CASE_ID}")
            if case_id in seen:
                raise CohortError(
                    f"{src}: duplicate {CASE_ID} {case_id!r} (lines {seen[case_id]} and {line})"
                )
            seen[case_id] = line
            folder = self.root / case_id
            if Path(case_id).name != case_id or case_id in (".", ".."):
                raise CohortError(f"{src}: line {line}: {case_id!r} is not a case folder name")
            if not folder.is_dir():
                missing.append(case_id)
                continue
            self._folders[case_id] = folder
            self._labels[case_id] = {
                t: v for t, v in zip(header, cells, strict=False) if t != CASE_ID and v
            }
        if missing:
            shown = ", ".join(repr(m) for m in missing[:5]) + (" ..." if len(missing) > 5 else "")
            raise CohortError(
                f"{src}: no case folder under {self.root} for {CASE_ID} {shown} "
                f"({len(missing)} of {len(seen)})"
            )
        if not self._folders:
            raise CohortError(f"{src}: no cases (only a header)")


class SyntheticCohort(Cohort):
    """A ``fuselens synth`` cohort: every case folder with a ``truth.json``, sorted by name."""

    kind = "synthetic"

    def __init__(self, folder: str | Path):
        from fuselens.model_zoo.synth.truth import case_folders, truth_answers
        from fuselens.model_zoo.tasks import TASK_MODALITY

        self.root = self.source = Path(folder)
        try:
            folders = case_folders(self.root)
        except FileNotFoundError as exc:
            if self.root.is_dir():
                raise FileNotFoundError(
                    f"{self.root}: no {LABELS_FILE} and no case folders with truth.json "
                    "(a `fuselens synth` cohort)"
                ) from exc
            raise
        self._folders = {f.name: f for f in folders}
        self._labels = {}
        tasks: dict[str, None] = dict.fromkeys(TASK_MODALITY)
        for name, f in self._folders.items():
            path = f / "truth.json"
            try:
                meta = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise CohortError(f"{path}: cannot be read ({exc})") from exc
            labels = truth_answers(meta)
            tasks.update(dict.fromkeys(labels))
            self._labels[name] = labels
        self._tasks = list(tasks)

    def describe(self) -> str:
        return f"{self.root} (truth.json files)"


def open_cohort(folder: str | Path, labels: str | Path | None = None) -> Cohort:
    """The cohort in ``folder``: ``labels`` (a labels.csv) given -> :class:`LabelledCohort`,
    else ``folder/labels.csv`` -> :class:`LabelledCohort`, else :class:`SyntheticCohort`."""
    root = Path(folder)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: not a folder")
    if labels is not None:
        return LabelledCohort(root, labels)
    if (root / LABELS_FILE).is_file():
        return LabelledCohort(root, root / LABELS_FILE)
    return SyntheticCohort(root)
