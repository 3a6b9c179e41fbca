"""The report's facts: numbers copied from the case or measured, findings checked against
the model's own answers, clinical typography (:mod:`fuselens.explain.report_facts`)."""

from __future__ import annotations

from fuselens.explain.report_facts import Measured, check_report
from fuselens.explain.report_factuality import factuality, stated_values
from fuselens.model_zoo.case import GroundTruth, LabItem, Labs, PatientCase
from fuselens.model_zoo.report import join_words, split_words
from fuselens.model_zoo.synth.reports import findings_from_report

LABS = [
    LabItem("NT-proBNP", 1763.0, "pg/mL", 0, 125),
    LabItem("Sodium", 143.0, "mmol/L", 135, 145),
    LabItem("Creatinine", 1.93, "mg/dL", 0.6, 1.2),
]
NO = 0.1
ANSWERS = {
    "raised_ntprobnp": 0.9,
    "raised_creatinine": 0.8,
    "hyponatraemia": NO,
    "lbbb": NO,
    "atrial_fibrillation": NO,
    "lateral_st_t": NO,
    "reduced_ef": NO,
    "dilated_lv": NO,
    "enlarged_la": NO,
    "cardiomegaly": NO,
    "pleural_effusion": NO,
    "pulmonary_edema": NO,
}
MEASURED = {
    "heart_rate": Measured(67.6, "68/min", "neurokit2"),
    "qrs_ms": Measured(91.0, "91", "neurokit2"),
}


HEADINGS = {"Labs:": "labs", "ECG:": "ecg", "Echo:": "echo", "Chest X-ray:": "cxr"}


def _check(text: str, answers=ANSWERS, measured=MEASURED):
    """The checked report of ``text`` for a case holding the modalities it has sections for."""
    read = [m for heading, m in HEADINGS.items() if heading.lower() in text.lower()]
    facts = check_report(split_words(text), LABS, answers, measured, read)
    return join_words(facts.words), facts


def test_lab_values_are_the_cases_own_with_its_units():
    text, facts = _check(
        "Labs: nt-probnp is raised at 900 pg/ml; creatinine is raised at 2.40 mg/dl."
    )
    assert text == "Labs: NT-proBNP is raised at 1763 pg/mL; creatinine is raised at 1.93 mg/dL."
    assert [(n["quantity"], n["value"], n["source"]) for n in facts.numbers] == [
        ("NT-proBNP", 1763.0, "input"),
        ("Creatinine", 1.93, "input"),
    ]


def test_a_value_for_a_lab_the_case_lacks_or_against_its_range_is_withheld():
    text, facts = _check(
        "Labs: nt-probnp is raised at 900 pg/ml; potassium is raised at 6.1 mmol/l; "
        "sodium is low at 129 mmol/l.",
        {**ANSWERS, "raised_creatinine": NO},
    )
    assert text == "Labs: NT-proBNP is raised at 1763 pg/mL."
    whys = [c["why"] for c in facts.checks if c["kind"] == "withheld"]
    assert any("does not hold" in w for w in whys)
    assert any("143 mmol/L is within its reference range" in w for w in whys)


def test_measured_numbers_replace_decoded_ones_and_unsourced_ones_go():
    text, facts = _check(
        "ECG: sinus rhythm at 90/min; normal conduction and repolarisation.\n"
        "Echo: left ventricular systolic function is normal (estimated ejection fraction 20%)"
        "; chamber sizes are normal.\n"
        "Chest X-ray: normal heart size, clear lungs and sharp costophrenic angles."
    )
    assert "sinus rhythm at 68/min" in text
    assert "%" not in text and "20" not in text  # the model estimates no EF: no number
    assert "Echo: left ventricular systolic function is normal; chamber sizes are normal." in text
    assert not [c for c in facts.checks if c["kind"] == "withheld"]
    qrs, _ = _check(
        "ECG: sinus rhythm at 90/min; left bundle branch block (qrs 150 ms).",
        {**ANSWERS, "lbbb": 0.9},
    )
    assert "(QRS 91 ms)" in qrs
    gone, _ = _check(
        "ECG: sinus rhythm at 90/min; left bundle branch block (qrs 150 ms).",
        {**ANSWERS, "lbbb": 0.9},
        {},
    )
    assert gone == "ECG: sinus rhythm; left bundle branch block."  # nothing measured


def test_a_finding_against_the_models_answer_is_withheld_and_shown():
    text, facts = _check(
        "Echo: left ventricular ejection fraction is reduced (estimated 20%); "
        "the left ventricle is dilated; the left ventricle is dilated.\n"
        "Impression: a raised natriuretic peptide, left ventricular dilatation and renal "
        "impairment."
    )
    assert "dilat" not in text.lower() and "reduced" not in text
    assert text.endswith("Impression: a raised natriuretic peptide and renal impairment.")
    withheld = [c for c in facts.checks if c["kind"] == "withheld"]
    assert {c["finding"] for c in withheld} == {"reduced_ef", "dilated_lv"}
    assert len([c for c in withheld if c["finding"] == "dilated_lv"]) == 2  # repeat dropped
    assert "P(yes) = 0.10" in withheld[0]["why"]


def test_a_yes_the_report_leaves_out_is_stated_in_its_section_and_listed():
    answers = {**ANSWERS, "cardiomegaly": 0.8, "hyponatraemia": 0.7, "pleural_effusion": 0.6}
    words = split_words("Labs: nt-probnp is raised at 900 pg/ml.\nImpression: cardiomegaly.")
    facts = check_report(words, LABS, answers, MEASURED, ["labs", "cxr"])
    text = join_words(facts.words)
    assert text.splitlines() == [
        "Labs: NT-proBNP is raised at 1763 pg/mL; creatinine is raised.",
        "Chest X-ray: cardiomegaly; pleural effusion.",
        "Impression: cardiomegaly.",
    ]
    assert findings_from_report(text)["cxr"] == {"cardiomegaly", "pleural_effusion"}
    added = {c["finding"]: c for c in facts.checks if c["kind"] == "added"}
    assert set(added) == {"raised_creatinine", "cardiomegaly", "pleural_effusion"}
    assert "P(yes) = 0.80" in added["cardiomegaly"]["why"]
    # hyponatraemia: the head says yes, but the case's sodium 143 is in range
    (low,) = [c for c in facts.checks if c.get("finding") == "hyponatraemia"]
    assert low["kind"] == "disagreement" and "143 mmol/L is within" in low["why"]
    # an added word was not decoded: it carries no decoded index
    assert {facts.index[i] for i, w in enumerate(facts.words) if w == "effusion"} == {-1}
    alone = check_report(words, LABS, answers, MEASURED, ["labs"])
    assert "cardiomegaly" not in [c.get("finding") for c in alone.checks]  # no X-ray read
    assert "Chest X-ray" not in join_words(alone.words)


def test_clinical_typography_and_alignment_with_the_decoded_words():
    words = split_words(
        "ECG: sinus rhythm at 90/min; lateral st depression with t-wave inversion in i, avl, "
        "v5 and v6."
    )
    facts = check_report(words, LABS, {**ANSWERS, "lateral_st_t": 0.9}, MEASURED, ["ecg"])
    text = join_words(facts.words)
    assert "lateral ST depression with T-wave inversion in I, aVL, V5 and V6" in text
    assert len(facts.index) == len(facts.words)
    assert all(0 <= i < len(words) for i in facts.index)
    assert words[facts.index[facts.words.index("68/min")]] == "90/min"


def _case(text_truth: dict) -> PatientCase:
    case = PatientCase(case_id="x", labs=Labs(items=list(LABS)))
    case.truth = GroundTruth(measurements=text_truth)
    return case


def test_factuality_reads_the_text_back():
    case = _case({"heart_rate": 70.0, "qrs_ms": 90.0, "ef": 55.0, "ctr": 0.45})
    decoded = (
        "Labs: NT-proBNP is raised at 900 pg/mL; creatinine is raised at 1.93 mg/dL.\n"
        "ECG: sinus rhythm at 90/min.\nEcho: ejection fraction is reduced (estimated 20%)."
    )
    values = stated_values(decoded, case)
    assert values["lab"] == [(900.0, 1763.0), (1.93, 1.93)]
    assert values["heart_rate"] == [(90.0, 70.0)] and values["ef"] == [(20.0, 55.0)]
    shown, _ = _check(decoded)
    out = factuality([decoded, shown], [case, case], [ANSWERS] * 2, [MEASURED] * 2)
    assert out["lab_values_equal_to_input"] == {"stated": 4, "within": 0.75, "median_error": 0.0}
    assert out["ef"]["stated"] == 1  # only the decoded one states an EF
    assert out["reports_contradicting_the_model"] == 0.5  # the decoded one says "reduced"


def test_top_evidence_tokens_skip_punctuation_and_template_words():
    import numpy as np

    from fuselens.explain.evidence import top_tokens

    tokens = [".", "of", "the", "patient", "is", "nt", "##pro", "##bn", ")", "sodium"]
    values = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.95, -0.1])
    assert [t["token"] for t in top_tokens(tokens, values)] == ["nt", "##pro", "##bn"]


def test_ef_and_ctr_are_the_models_estimates_and_said_to_be():
    estimates = {
        **MEASURED,
        "ef": Measured(62.4, "62%", "model estimate (echo head)"),
        "ctr": Measured(0.45, "0.45", "model estimate (cxr head)"),
    }
    text, facts = _check(
        "Echo: left ventricular systolic function is normal (estimated ejection fraction 20%).\n"
        "Chest x-ray: normal heart size (cardiothoracic ratio 0.61).",
        measured=estimates,
    )
    assert "(model-estimated ejection fraction 62%)" in text
    assert "(model-estimated cardiothoracic ratio 0.45)" in text
    assert "20%" not in text and "0.61" not in text
    assert {n["quantity"]: n["value"] for n in facts.numbers} == {"ef": 62.4, "ctr": 0.45}
    assert [n["text"] for n in facts.numbers] == ["62%", "0.45"]
    assert len(facts.words) == len(facts.index)


def test_an_estimate_against_its_finding_head_is_shown_as_a_disagreement():
    estimates = {"ef": Measured(35.0, "35%", "model estimate (echo head)")}
    _, facts = _check("Echo: chamber sizes are normal.", measured=estimates)
    disagree = [c for c in facts.checks if c["kind"] == "disagreement"]
    assert [c["finding"] for c in disagree] == ["reduced_ef"]
    assert "EF estimate is 35%" in disagree[0]["why"]
    agree = {"ef": Measured(62.0, "62%", "model estimate (echo head)")}
    _, facts = _check("Echo: chamber sizes are normal.", measured=agree)
    assert not [c for c in facts.checks if c["kind"] == "disagreement"]


def test_an_estimate_against_the_finding_its_clause_states_is_left_out_and_listed():
    estimates = {"ef": Measured(62.0, "62%", "model estimate (echo head)")}
    answers = {**ANSWERS, "reduced_ef": 0.9}  # the finding head says yes, the EF head 62%
    text, facts = _check(
        "Echo: left ventricular ejection fraction is reduced (estimated 20%).",
        answers=answers,
        measured=estimates,
    )
    assert text == "Echo: left ventricular ejection fraction is reduced."
    withheld = [c for c in facts.checks if c["kind"] == "withheld"]
    assert [c["finding"] for c in withheld] == ["reduced_ef"]
    assert "EF estimate is 62%" in withheld[0]["why"] and not facts.numbers
