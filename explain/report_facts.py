"""Facts in a generated report: every number the patient's own, every finding the model's.

A word-level decoder cannot copy a value it has no word for, so the words it writes for a
number are never shown as they are. Each number in a decoded report is tied to a quantity
by the words around it and then:

- a **lab value** is replaced by the case's own value and unit (the item the clause names);
  a clause giving a value for a lab the case does not hold is withheld;
- a **measured** quantity (heart rate, QRS duration: ``measured``, e.g. from neurokit2)
  is replaced by the measurement, naming its method;
- an ejection fraction or cardiothoracic ratio is replaced by the model's own estimate
  (its estimate heads, :mod:`fuselens.model_zoo.estimates`) and written as one
  ("model-estimated"); a model without that head gets the number removed;
- a quantity with none of these (any number not recognised) is removed with its parenthesis
  or phrase.

Each clause's findings are read with the report parser's phrases
(:data:`fuselens.model_zoo.synth.reports.PATTERNS`) plus the phrases that state a finding
absent ("chamber sizes are normal"); a clause that contradicts the model's own answer
for a finding it has a head for (P(yes) against the head's operating point, 0.5 unless
the model's card holds one chosen on validation) is withheld. A finding the model
answers yes to that its modality's section leaves out is stated there in the report
language (:data:`ADDED`), so the report says what the model answers. Every withheld and
every added clause is listed in :attr:`FactReport.checks`, so the panel shows the
disagreement between the decoder and the heads instead of hiding it.
Repeated clauses are dropped, and words are written as clinicians write them (NT-proBNP,
aVL, mmol/L).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from fuselens.model_zoo.case import LabItem, format_lab_value
from fuselens.model_zoo.operating_points import DEFAULT_YES_AT
from fuselens.model_zoo.report import join_words, split_words
from fuselens.model_zoo.synth.reports import IMPRESSION_TERMS, NEGATION, PATTERNS

_NUMBER = re.compile(r"^\d[\d,]*(\.\d+)?(%|/min)?$")
_UNIT = re.compile(r"^(ms|%|[a-z0-9.]*/[a-z0-9./]+)$")
SECTIONS = {"labs": "labs", "ecg": "ecg", "echo": "echo", "chest x-ray": "cxr"}
IMPRESSION = "impression"
# Phrases of the report language that state a finding absent.
ABSENT: dict[str, tuple[str, ...]] = {
    "reduced_ef": (r"systolic function is normal",),
    "dilated_lv": (r"chamber sizes are normal",),
    "enlarged_la": (r"chamber sizes are normal",),
    "cardiomegaly": (r"normal heart size", r"heart size is normal"),
    "pulmonary_edema": (r"clear lungs",),
    "pleural_effusion": (r"sharp costophrenic angles",),
    "atrial_fibrillation": (r"sinus rhythm",),
    "lbbb": (r"normal conduction",),
    "lateral_st_t": (r"normal conduction and repolarisation",),
    "raised_ntprobnp": (r"no significant abnormality",),
    "hyponatraemia": (r"no significant abnormality",),
    "raised_creatinine": (r"no significant abnormality",),
}
# Word -> how clinicians write it (lab names come from the case itself).
CLINICAL = {
    "nt-probnp": "NT-proBNP",
    "ecg": "ECG",
    "qrs": "QRS",
    "st": "ST",
    "st-t": "ST-T",
    "t-wave": "T-wave",
    "lbbb": "LBBB",
    "copd": "COPD",
    "egfr": "eGFR",
    "x-ray": "X-ray",
    "kerley": "Kerley",
    "b": "B",
    "i": "I",
    "ii": "II",
    "iii": "III",
    "avr": "aVR",
    "avl": "aVL",
    "avf": "aVF",
    **{f"v{i}": f"V{i}" for i in range(1, 7)},
    "pg/ml": "pg/mL",
    "mmol/l": "mmol/L",
    "mg/dl": "mg/dL",
    "g/dl": "g/dL",
    "ml/min/1.73m2": "mL/min/1.73m2",
}


# How a finding the decoder left out is stated (in the words the report parser reads).
ADDED: dict[str, str] = {
    "raised_ntprobnp": "nt-probnp is raised",
    "hyponatraemia": "sodium is low",
    "raised_creatinine": "creatinine is raised",
    "lbbb": "left bundle branch block",
    "atrial_fibrillation": "atrial fibrillation",
    "lateral_st_t": "lateral st-t abnormality",
    "reduced_ef": "left ventricular ejection fraction is reduced",
    "dilated_lv": "the left ventricle is dilated",
    "enlarged_la": "the left atrium is enlarged",
    "cardiomegaly": "cardiomegaly",
    "pleural_effusion": "pleural effusion",
    "pulmonary_edema": "pulmonary oedema",
}
ADDED_INDEX = -1
"""The decoded-word index of an added word: it was not decoded, so it has no attention."""
QUANTITY_LABELS = {
    "heart_rate": "Heart rate",
    "qrs_ms": "QRS duration (ms)",
    "ef": "LV ejection fraction",
    "ctr": "Cardiothoracic ratio",
}
ESTIMATED = ("ef", "ctr")
"""Quantities only a model estimates: a report states them as the model's estimate."""
ESTIMATE_FINDING = {
    "ef": ("reduced_ef", lambda v: v < 50.0),
    "ctr": ("cardiomegaly", lambda v: v > 0.5),
}
"""Each estimate's finding head and when the estimate alone would call the finding present."""


@dataclass(frozen=True)
class Measured:
    """A quantity measured on the case by a named method (or estimated by a named head)."""

    value: float
    text: str  # as the report writes it, e.g. "72/min" or "96"
    source: str


@dataclass
class FactReport:
    """The checked report: its words, for each the decoded word it stands in place of (for
    the attention it was written with), the numbers it states and the checks made."""

    words: list[str]
    index: list[int]
    numbers: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class _Clause:
    words: list[str]
    index: list[int]

    @property
    def text(self) -> str:
        return " ".join(self.words)


def _clauses(words: list[str]) -> list[tuple[str | None, list[_Clause]]]:
    """Sentences as ``(section, clauses)``: the heading (if any) is dropped, clauses split
    at ``;`` and the final ``.``; a line break or ``.`` ends a sentence."""
    out: list[tuple[str | None, list[_Clause]]] = []
    section: str | None = None
    current: list[_Clause] = [_Clause([], [])]
    at_line_start = True

    def close() -> None:
        nonlocal current
        kept = [c for c in current if c.words]
        if kept:
            out.append((section, kept))
        current = [_Clause([], [])]

    for i, w in enumerate(words):
        if at_line_start:
            section = _heading(words, i) or section
        if w == "\n":
            close()
            at_line_start = True
            continue
        at_line_start = False
        if w == ":" and len(current) == 1 and _heading_words(current[0].words):
            current[-1] = _Clause([], [])
        elif w == ";":
            current.append(_Clause([], []))
        elif w == ".":
            close()
        else:
            current[-1].words.append(w)
            current[-1].index.append(i)
    close()
    return out


def _heading_words(words: list[str]) -> bool:
    return " ".join(words) in (*SECTIONS, IMPRESSION, "chest x-ray")


def _heading(words: list[str], i: int) -> str | None:
    for name in (*SECTIONS, IMPRESSION):
        n = len(name.split())
        if words[i : i + n] == name.split() and i + n < len(words) and words[i + n] == ":":
            return SECTIONS.get(name, IMPRESSION)
    return None


def _lab_names(labs: list[LabItem]) -> dict[tuple[str, ...], LabItem]:
    return {tuple(split_words(item.name)): item for item in labs}


def _named_lab(words: list[str], end: int, names: dict) -> tuple[str, ...] | None:
    """The last lab name among ``words[:end]``."""
    best, at = None, -1
    for name in names:
        n = len(name)
        for j in range(end - n, -1, -1):
            if tuple(words[j : j + n]) == name:
                if j > at:
                    best, at = name, j
                break
    return best


_LAB_WORDS = {"nt-probnp", "sodium", "creatinine", "potassium", "egfr", "urea", "glucose"}


def _fix_numbers(
    section: str | None,
    clause: _Clause,
    labs: dict[tuple[str, ...], LabItem],
    measured: dict[str, Measured],
    numbers: list[dict[str, Any]],
    checks: list[dict[str, Any]],
) -> _Clause | None:
    """The clause with each number replaced by its source or removed; None: withheld. An
    estimate against the finding its own clause states is removed and listed in ``checks``."""
    words, index = list(clause.words), list(clause.index)
    i = 0
    while i < len(words):
        w = words[i]
        if not _NUMBER.match(w):
            i += 1
            continue
        lab = _named_lab(words, i, labs) if section in ("labs", None) else None
        if lab is None and section == "labs" and _LAB_WORDS & set(words[:i]):
            return None  # a value for a lab the case does not hold
        if lab is not None:
            item = labs[lab]
            words[i] = format_lab_value(item.value)
            has_unit = i + 1 < len(words) and _UNIT.match(words[i + 1])
            if has_unit:
                words[i + 1] = item.unit
            elif item.unit:
                words.insert(i + 1, item.unit)
                index.insert(i + 1, index[i])
            numbers.append(
                {"quantity": item.name, "value": item.value, "unit": item.unit, "source": "input"}
            )
            i += 2
            continue
        quantity = _measured_quantity(section, words, i)
        against = _estimate_against(quantity, measured, clause.text)
        if against:
            checks.append(
                {"kind": "withheld", "finding": against[0], "text": clause.text, "why": against[1]}
            )
            start, stop = _phrase(words, i)
            del words[start:stop], index[start:stop]
            i = start
            continue
        if quantity in measured:
            m = measured[quantity]
            words[i] = m.text
            numbers.append(
                {"quantity": quantity, "value": m.value, "text": m.text, "source": m.source}
            )
            if quantity in ESTIMATED:
                i += _call_estimated(words, index, i)
            i += 1
            continue
        start, stop = _phrase(words, i)
        del words[start:stop], index[start:stop]
        i = start
    return _Clause(words, index) if words else None


_RAISED = re.compile(r"\b(raised|elevated|high)\b")
_LOW = re.compile(r"\blow\b")


def _against_range(section: str | None, clause: _Clause, labs: dict) -> str | None:
    """Why a lab clause is false of the case's own value against its reference range."""
    if section != "labs":
        return None
    lab = _named_lab(clause.words, len(clause.words), labs)
    if lab is None:
        return None
    item, text = labs[lab], clause.text
    said = "H" if _RAISED.search(text) else "L" if _LOW.search(text) else None
    if said is None or item.flag not in ("H", "L", "N") or said == item.flag:
        return None
    where = {"H": "above", "L": "below", "N": "within"}[item.flag]
    return (
        f"calls {item.name} {'raised' if said == 'H' else 'low'}; the case's "
        f"{format_lab_value(item.value)} {item.unit} is {where} its reference range"
    )


def _measured_quantity(section: str | None, words: list[str], i: int) -> str | None:
    if section == "ecg" and words[i].endswith("/min"):
        return "heart_rate"
    if section == "ecg" and "qrs" in words[max(0, i - 2) : i]:
        return "qrs_ms"
    if section == "echo" and words[i].endswith("%"):
        return "ef"
    if section == "cxr" and "ratio" in words[max(0, i - 2) : i]:
        return "ctr"
    return None


def _estimate_against(
    quantity: str | None, measured: dict[str, Measured], text: str
) -> tuple[str, str] | None:
    """(finding, why) when the model's estimate of ``quantity`` is against the finding the
    clause states ("ejection fraction is reduced" with an EF estimate of 62%)."""
    if quantity not in ESTIMATE_FINDING or quantity not in measured:
        return None
    finding, present = ESTIMATE_FINDING[quantity]
    said, m = _states(text, finding), measured[quantity]
    if said is None or said == present(m.value):
        return None
    return finding, (
        f"states {finding} {'present' if said else 'absent'}; the model's {quantity.upper()} "
        f"estimate is {m.text}, so the number is left out"
    )


def _call_estimated(words: list[str], index: list[int], i: int) -> int:
    """Mark the number at ``i`` as the model's estimate ("estimated" -> "model-estimated",
    else "model-estimated" before its phrase); returns how many words were inserted."""
    start, _ = _phrase(words, i)
    span = range(start, i)
    hit = next((j for j in span if words[j] == "estimated"), None)
    if hit is not None:
        words[hit] = "model-estimated"
        return 0
    at = start + 1 if words[start] == "(" else start
    words.insert(at, "model-estimated")
    index.insert(at, index[min(at, len(index) - 1)])
    return 1


def _phrase(words: list[str], i: int) -> tuple[int, int]:
    """The span to remove with an unsourced number: its parenthesis, else the number, its
    unit and the words that lead up to it ("at", "of about", "estimated")."""
    opens = [j for j in range(i, -1, -1) if words[j] == "("]
    closes = [j for j in range(i, len(words)) if words[j] == ")"]
    if opens and closes and ")" not in words[opens[0] : i]:
        return opens[0], closes[0] + 1
    stop = i + 1 + (i + 1 < len(words) and bool(_UNIT.match(words[i + 1])))
    start = i
    for lead in (("with", "a", "ventricular", "rate", "of", "about"), ("of", "about"), ("at",)):
        n = len(lead)
        if tuple(words[start - n : start]) == lead:
            start -= n
            break
    return start, stop


def _states(text: str, finding: str) -> bool | None:
    """True: the clause states ``finding``; False: states it absent; None: neither."""
    for pattern in PATTERNS.get(finding, ()):
        for m in re.finditer(pattern, text):
            if not NEGATION.search(re.split(r"[;.,]", text[: m.start()])[-1]):
                return True
    if any(re.search(p, text) for p in ABSENT.get(finding, ())):
        return False
    return None


def _impression_terms(clause: _Clause) -> list[tuple[str, int, int]]:
    """``(finding, start, stop)`` of each impression term in the clause's words."""
    out = []
    for finding, phrase in IMPRESSION_TERMS:
        term = phrase.split()
        for j in range(len(clause.words) - len(term) + 1):
            if clause.words[j : j + len(term)] == term:
                start = j - 1 if j > 0 and clause.words[j - 1] in ("a", "an") else j
                out.append((finding, start, j + len(term)))
    return out


def _drop_terms(clause: _Clause, spans: list[tuple[int, int]]) -> _Clause | None:
    """The impression without the given terms (and the "and"/"," that joined them)."""
    keep = [True] * len(clause.words)
    for start, stop in spans:
        for j in range(start, stop):
            keep[j] = False
        for j in (start - 1, stop):
            if 0 <= j < len(clause.words) and clause.words[j] in ("and", ","):
                keep[j] = False
                break
    words = [w for w, k in zip(clause.words, keep, strict=True) if k]
    index = [x for x, k in zip(clause.index, keep, strict=True) if k]
    while words and words[0] in ("and", ","):
        del words[0], index[0]
    if not words:
        return None
    if "and" not in words and "," in words:
        words[len(words) - 1 - words[::-1].index(",")] = "and"
    return _Clause(words, index)


class _Answers(dict):
    """P(yes) per finding head, with the operating point each answers yes at."""

    def __init__(self, p_yes: dict[str, float], yes_at: dict[str, float] | None):
        super().__init__(p_yes)
        self.yes_at = yes_at or {}

    def says_yes(self, finding: str) -> bool:
        return self[finding] >= self.yes_at.get(finding, DEFAULT_YES_AT)

    def describe(self, finding: str) -> str:
        """ "yes (P(yes) = 0.38 against its operating point 0.31)" or "no (P(yes) = 0.20)"."""
        at = self.yes_at.get(finding, DEFAULT_YES_AT)
        point = f" against its operating point {at:.2f}" if at != DEFAULT_YES_AT else ""
        answer = "yes" if self.says_yes(finding) else "no"
        return f"{answer} (P(yes) = {self[finding]:.2f}{point})"


def _check_findings(
    section: str | None, clause: _Clause, answers: _Answers, checks: list, stated: set
) -> _Clause | None:
    """The clause, or None when it contradicts the model's answer for a finding."""
    if section == IMPRESSION:
        wrong = []
        for finding, start, stop in _impression_terms(clause):
            if finding in answers and not answers.says_yes(finding):
                wrong.append((start, stop))
                checks.append(
                    _contradiction(finding, " ".join(clause.words[start:stop]), True, answers)
                )
            elif finding in answers:
                stated.add((finding, section))
        return _drop_terms(clause, wrong) if wrong else clause
    text = clause.text
    for finding in answers:
        said = _states(text, finding)
        if said is None:
            continue
        if said != answers.says_yes(finding):
            checks.append(_contradiction(finding, text, said, answers))
            return None
        if said:
            stated.add((finding, section))
    return clause


def _contradiction(finding: str, text: str, said: bool, answers: _Answers) -> dict[str, Any]:
    return {
        "kind": "withheld",
        "finding": finding,
        "text": text,
        "why": f"states {finding} {'present' if said else 'absent'}; the model's {finding} "
        f"head answers {answers.describe(finding)}",
    }


def _typeset(words: list[str], labs: list[LabItem]) -> list[str]:
    """Words as clinicians write them: the table above, and a lab name spelt with its own
    capitals ("NT-proBNP", "eGFR"; not "Sodium") as the case spells it."""
    out = [CLINICAL.get(w, w) for w in words]
    for item in labs:
        name, shown = tuple(split_words(item.name)), item.name.split()
        if item.name == item.name.capitalize() or len(name) != len(shown):
            continue
        for j in range(len(words) - len(name) + 1):
            if tuple(words[j : j + len(name)]) == name:
                out[j : j + len(name)] = shown
    return out


def check_report(
    words: list[str],
    labs: list[LabItem],
    answers: dict[str, float],
    measured: dict[str, Measured] | None = None,
    modalities: list[str] | None = None,
    yes_at: dict[str, float] | None = None,
) -> FactReport:
    """The decoded report ``words`` with its numbers sourced and its findings checked.

    ``labs`` are the case's lab items, ``answers`` the model's P(yes) per finding head,
    ``measured`` the measurements by quantity, ``modalities`` those the model read (a
    finding of an absent modality is not expected in the report), ``yes_at`` each head's
    operating point (0.5 where not given).
    """
    answers = _Answers(answers, yes_at)
    measured = measured or {}
    names = _lab_names(labs)
    numbers: list[dict[str, Any]] = []
    checks: list[dict[str, Any]] = []
    stated: set[tuple[str, str | None]] = set()
    seen: set[str] = set()
    sections: dict[str | None, list[_Clause]] = {}
    for section, clauses in _clauses(words):
        for clause in clauses:
            stated_numbers: list[dict[str, Any]] = []
            fixed = _fix_numbers(section, clause, names, measured, stated_numbers, checks)
            if fixed is None:
                checks.append(
                    {
                        "kind": "withheld",
                        "text": clause.text,
                        "why": "gives a value for a lab the case does not hold",
                    }
                )
                continue
            against = _against_range(section, fixed, names)
            if against:
                checks.append({"kind": "withheld", "text": fixed.text, "why": against})
                continue
            if fixed.text in seen:
                continue  # said already
            seen.add(fixed.text)
            fixed = _check_findings(section, fixed, answers, checks, stated)
            if fixed is None:
                continue
            sections.setdefault(section, []).append(fixed)
            numbers += stated_numbers
    read = set(modalities) if modalities is not None else None
    for finding in answers:
        modality = _modality_of(finding)
        if not answers.says_yes(finding) or finding not in ADDED or (finding, modality) in stated:
            continue
        if modality is None or (read is not None and modality not in read):
            continue
        words = ADDED[finding].split()
        clause = _Clause(words, [ADDED_INDEX] * len(words))
        if modality == "labs":
            if _named_lab(clause.words, len(clause.words), names) is None:
                continue  # the case holds no such lab: nothing to state it of
            against = _against_range(modality, clause, names)
            if against:  # the head against the case's own value: not stated, shown
                checks.append(
                    {
                        "kind": "disagreement",
                        "finding": finding,
                        "why": f"the model's {finding} head answers {answers.describe(finding)}, "
                        f"but {against.split('; ', 1)[-1]}",
                    }
                )
                continue
        sections.setdefault(modality, []).append(clause)
        checks.append(
            {
                "kind": "added",
                "finding": finding,
                "text": clause.text,
                "why": f"the model's {finding} head answers {answers.describe(finding)}; "
                "the decoder did not write it, so the report states it",
            }
        )
    out_words, out_index = _assemble(sections)
    checks += _estimate_disagreements(answers, measured)
    for check in checks:
        if "text" in check:
            check["text"] = join_words(_typeset(split_words(check["text"]), labs))
    return FactReport(_typeset(out_words, labs), out_index, numbers, checks)


def _estimate_disagreements(
    answers: _Answers, measured: dict[str, Measured]
) -> list[dict[str, Any]]:
    """An estimate head and its finding head that disagree (EF 62% with reduced EF 'yes')."""
    out = []
    for quantity, (finding, present) in ESTIMATE_FINDING.items():
        if quantity not in measured or finding not in answers:
            continue
        m = measured[quantity]
        if present(m.value) != answers.says_yes(finding):
            out.append(
                {
                    "kind": "disagreement",
                    "finding": finding,
                    "why": f"the model's {quantity.upper()} estimate is {m.text} but its "
                    f"{finding} head answers {answers.describe(finding)}",
                }
            )
    return out


def _modality_of(finding: str) -> str | None:
    from fuselens.model_zoo.synth.vocab import FINDINGS

    return next((m for m, fs in FINDINGS.items() if finding in fs), None)


def _assemble(sections: dict[str | None, list[_Clause]]) -> tuple[list[str], list[int]]:
    """The report's words and decoded-word indices: a line per section in the report's
    order (modality sections, then the impression), clauses joined by ``;``."""
    order = [None, *SECTIONS.values(), IMPRESSION]
    out_words: list[str] = []
    out_index: list[int] = []
    for section in sorted(sections, key=order.index):
        kept = sections[section]
        decoded = [i for c in kept for i in c.index if i != ADDED_INDEX]
        first = decoded[0] if decoded else ADDED_INDEX
        heading = _heading_of(section)
        if heading:
            out_words += [*heading, ":"]
            out_index += [first] * (len(heading) + 1)
        for n, clause in enumerate(kept):
            if n:
                out_words.append(";")
                out_index.append(clause.index[0])
            out_words += clause.words
            out_index += clause.index
        out_words += [".", "\n"]
        out_index += [kept[-1].index[-1]] * 2
    if out_words:
        out_words.pop(), out_index.pop()
    return out_words, out_index


def _heading_of(section: str | None) -> list[str]:
    if section is None:
        return []
    if section == IMPRESSION:
        return ["impression"]
    return next(name.split() for name, key in SECTIONS.items() if key == section)
