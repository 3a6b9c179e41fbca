"""How true a cohort's reports are of their patients: stated numbers against the case and
its planted truth, and stated findings against the model's own answers.

Every figure is read back from the report *text* (not from the checker's own record), so
it measures what a reader is told: each lab value the text gives after the lab's name, the
heart rate ("N/min") and QRS ("QRS N ms") of the ECG line, any ejection fraction ("N%") of
the echo line and cardiothoracic ratio of the X-ray line.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from fuselens.explain.ecg_measurements import measure_ecg
from fuselens.explain.pipeline import measured_quantities
from fuselens.explain.report_facts import Measured, check_report
from fuselens.model_zoo.case import PatientCase
from fuselens.model_zoo.estimates import ESTIMATES
from fuselens.model_zoo.operating_points import thresholds
from fuselens.model_zoo.report import join_words, split_words

LAB_TOLERANCE = 0.02  # relative: "equal to the case"
HR_TOLERANCE = 5.0
QRS_TOLERANCE = 20.0
_NUM = r"(\d[\d,]*(?:\.\d+)?)"


def _lines(text: str) -> dict[str, str]:
    out = {}
    for line in text.lower().splitlines():
        head, _, rest = line.partition(":")
        out[head.strip()] = rest
    return out


def _number(s: str) -> float:
    return float(s.replace(",", ""))


def stated_values(text: str, case: PatientCase) -> dict[str, list[tuple[float, float]]]:
    """``quantity -> [(stated, truth)]`` read from the report text."""
    lines = _lines(text)
    truth = case.truth.measurements if case.truth is not None else {}
    out: dict[str, list[tuple[float, float]]] = {"lab": [], "heart_rate": [], "qrs_ms": []}
    out.update({"ef": [], "ctr": []})
    labs = lines.get("labs", "")
    for item in case.labs.items if case.labs is not None else []:
        for clause in re.split(r";|\.(?=\s|$)", labs):
            m = re.search(re.escape(item.name.lower()) + r"\D*?" + _NUM, clause)
            if m:
                out["lab"].append((_number(m.group(1)), item.value))
    ecg, echo, cxr = lines.get("ecg", ""), lines.get("echo", ""), lines.get("chest x-ray", "")
    for key, pattern, line in (
        ("heart_rate", _NUM + r"/min", ecg),
        ("qrs_ms", r"qrs " + _NUM + r" ms", ecg),
        ("ef", _NUM + r"%", echo),
        ("ctr", r"ratio " + _NUM, cxr),
    ):
        for m in re.finditer(pattern, line):
            out[key].append((_number(m.group(1)), float(truth.get(key, np.nan))))
    return out


def _share(pairs: list[tuple[float, float]], tol: float, relative: bool = False) -> dict:
    if not pairs:
        return {"stated": 0, "within": None, "median_error": None}
    err = np.array([abs(a - b) / (abs(b) if relative else 1.0) for a, b in pairs])
    ok = err <= tol
    return {
        "stated": len(pairs),
        "within": round(float(np.mean(ok)), 4),
        "median_error": round(float(np.nanmedian([abs(a - b) for a, b in pairs])), 3),
    }


def factuality(
    texts: list[str],
    cases: list[PatientCase],
    answers: list[dict[str, float]],
    measured: list[dict[str, Any]],
    yes_at: dict[str, float] | None = None,
) -> dict[str, Any]:
    """Per quantity: how many reports state it and the share within tolerance of the case
    (labs: the input, ±2%) or its truth (HR ±5/min, QRS ±20 ms, EF ±10, CTR ±0.05); and
    the share of reports with a finding that contradicts the model's own answer (at its
    operating points ``yes_at``)."""
    pooled: dict[str, list[tuple[float, float]]] = {}
    contradicted = 0
    for text, case, ans, meas in zip(texts, cases, answers, measured, strict=True):
        for key, pairs in stated_values(text, case).items():
            pooled.setdefault(key, []).extend(pairs)
        labs = case.labs.items if case.labs is not None else []
        again = check_report(split_words(text), labs, ans, meas, case.modalities(), yes_at)
        contradicted += any(c["kind"] == "withheld" and "finding" in c for c in again.checks)
    return {
        "n": len(texts),
        "lab_values_equal_to_input": _share(pooled.get("lab", []), LAB_TOLERANCE, True),
        "heart_rate": _share(pooled.get("heart_rate", []), HR_TOLERANCE),
        "qrs_ms": _share(pooled.get("qrs_ms", []), QRS_TOLERANCE),
        "ef": _share(pooled.get("ef", []), ESTIMATES["ef"].tolerance),
        "ctr": _share(pooled.get("ctr", []), ESTIMATES["ctr"].tolerance),
        "reports_contradicting_the_model": round(contradicted / max(1, len(texts)), 4),
    }


def case_facts(
    model, case: PatientCase, probabilities: dict[str, float]
) -> tuple[dict[str, float], dict[str, Measured]]:
    """The model's P(yes) per yes/no task and the ECG's measurements, as the workstation
    checks a report of ``case`` against them."""
    answers = {t: probabilities[t] for t, a in model.tasks.items() if list(a) == ["no", "yes"]}
    measured: dict[str, Measured] = {}
    if case.ecg is not None:
        try:
            measured = measured_quantities({"ecg": measure_ecg(case.ecg).to_dict()})
        except ValueError:
            measured = {}
    return answers, measured


def estimated(probs: dict[str, np.ndarray], i: int) -> dict[str, Measured]:
    """Case ``i``'s model estimates from ``probs["estimate:<name>"]``, as a report cites them
    (as the workstation gets them from the model's ``estimate`` capability)."""
    estimates = {}
    for key, values in probs.items():
        name = key.removeprefix("estimate:")
        if name != key and not np.isnan(values[i]):
            estimates[name] = ESTIMATES[name].describe(float(values[i]))
    return measured_quantities({"model_estimates": estimates})


def fact_check(model, cases: list[PatientCase], yes_at: dict[str, float] | None = None):
    """A :data:`fuselens.model_zoo.evaluation.ReportCheck` for ``fuselens eval``: the decoded
    reports of ``cases`` after the workstation's fact checks, with the factuality of both;
    findings answered at ``yes_at`` (default: the model's operating points)."""
    points = thresholds(model) if yes_at is None else yes_at

    def check(texts: list[str], idx: np.ndarray, probs: dict[str, np.ndarray]):
        shown, answers, measured, chosen = [], [], [], []
        for text, i in zip(texts, idx, strict=True):
            case = cases[int(i)]
            ans, meas = case_facts(model, case, {t: float(probs[t][i]) for t in model.tasks})
            meas |= estimated(probs, int(i))
            labs = case.labs.items if case.labs is not None else []
            facts = check_report(split_words(text), labs, ans, meas, case.modalities(), points)
            shown.append(join_words(facts.words))
            answers.append(ans)
            measured.append(meas)
            chosen.append(case)
        return shown, {
            "checked": True,
            "factuality": factuality(shown, chosen, answers, measured, points),
            "factuality_decoded": factuality(texts, chosen, answers, measured, points),
            "operating_points": points,
        }

    return check
