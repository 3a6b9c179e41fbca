"""Fixed vocabularies of the synthetic cohort: findings, confounders, evidence lab items.

Models, report parsing and evaluation import these; changing a name changes the data.
"""

from __future__ import annotations

from fuselens.model_zoo.case import MODALITIES

LABEL = "heart_failure"

FINDINGS: dict[str, tuple[str, ...]] = {
    "labs": ("raised_ntprobnp", "hyponatraemia", "raised_creatinine"),
    "ecg": ("lbbb", "atrial_fibrillation", "lateral_st_t"),
    "echo": ("reduced_ef", "dilated_lv", "enlarged_la"),
    "cxr": ("cardiomegaly", "pleural_effusion", "pulmonary_edema"),
}

ALL_FINDINGS: tuple[str, ...] = tuple(f for m in MODALITIES for f in FINDINGS[m])

CONFOUNDERS: tuple[str, ...] = ("ckd", "copd", "pneumonia", "hypertension")

LAB_EVIDENCE_ITEMS: dict[str, tuple[str, ...]] = {
    "raised_ntprobnp": ("NT-proBNP",),
    "hyponatraemia": ("Sodium",),
    "raised_creatinine": ("Creatinine", "eGFR"),
}

ECHO_VIEW_CODES: dict[str, tuple[str, str]] = {
    "A4C": ("399214001", "Apical four chamber"),
    "A2C": ("399232001", "Apical two chamber"),
    "PLAX": ("399139001", "Parasternal long axis"),
}

FORBIDDEN_LABEL_TERMS: tuple[str, ...] = (
    "heart failure",
    "cardiac failure",
    "ventricular failure",
    "chf",
    "hfref",
    "hfpef",
    "hf",
    "congestive",
)
