"""The model's tasks: heart-failure diagnosis plus one yes/no question per planted finding."""

from __future__ import annotations

from fuselens.model_zoo.synth.vocab import FINDINGS, LABEL

ANSWERS: tuple[str, ...] = ("no", "yes")

_FINDING_QUESTIONS: dict[str, str] = {
    "raised_ntprobnp": "Is the NT-proBNP of the patient raised?",
    "hyponatraemia": "Does the patient have a low sodium?",
    "raised_creatinine": "Is the creatinine of the patient raised?",
    "lbbb": "Does the ECG show left bundle branch block?",
    "atrial_fibrillation": "Does the ECG show atrial fibrillation?",
    "lateral_st_t": "Does the ECG show lateral ST depression or T inversion?",
    "reduced_ef": "Does the echocardiogram show a reduced ejection fraction?",
    "dilated_lv": "Does the echocardiogram show a dilated left ventricle?",
    "enlarged_la": "Does the echocardiogram show an enlarged left atrium?",
    "cardiomegaly": "Does the chest radiograph show cardiomegaly?",
    "pleural_effusion": "Does the chest radiograph show a pleural effusion?",
    "pulmonary_edema": "Does the chest radiograph show pulmonary edema?",
}

TASK_PROMPTS: dict[str, str] = {
    LABEL: "Does the patient have heart failure given the labs, ECG, echo and chest X-ray?",
    **{f: _FINDING_QUESTIONS[f] for fs in FINDINGS.values() for f in fs},
}

TASK_MODALITY: dict[str, str | None] = {
    LABEL: None,
    **{f: m for m, fs in FINDINGS.items() for f in fs},
}


def default_tasks() -> dict[str, list[str]]:
    """Task name -> candidate answers, in a fixed order (heart failure first)."""
    return {name: list(ANSWERS) for name in TASK_PROMPTS}
