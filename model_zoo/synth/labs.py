"""Synthetic laboratory panel with free-text history and medications.

The planted values (NT-proBNP, sodium, creatinine) come from the latent; the rest of the
panel is drawn consistently with them (eGFR from creatinine by CKD-EPI 2021, urea with
creatinine, haemoglobin lower in kidney disease). The text never names the label: it
mentions comorbidities (confounders) and drugs that both classes take.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

from fuselens.model_zoo.case import format_lab_value, reference_flag
from fuselens.model_zoo.lab_reference import lookup
from fuselens.model_zoo.synth.latent import Latent
from fuselens.model_zoo.synth.vocab import LAB_EVIDENCE_ITEMS

ALWAYS = ("NT-proBNP", "Sodium", "Creatinine")
OPTIONAL = {
    "Potassium": 0.8,
    "eGFR": 0.7,
    "Urea nitrogen": 0.6,
    "Hemoglobin": 0.7,
    "Troponin T": 0.4,
    "Glucose": 0.5,
    "Albumin": 0.4,
}
PANEL_ORDER = ("NT-proBNP", "Troponin T", "Sodium", "Potassium", "Creatinine", "eGFR",
               "Urea nitrogen", "Glucose", "Albumin", "Hemoglobin")  # fmt: skip
HISTORY_ROW = "History"
MEDICATIONS_ROW = "Medications"

NEUTRAL_HISTORY = {
    "type 2 diabetes": 0.22,
    "hyperlipidaemia": 0.3,
    "osteoarthritis": 0.15,
    "hypothyroidism": 0.08,
    "gout": 0.06,
}
DRUGS = {
    "hypertension": ("ramipril 5 mg daily", "amlodipine 5 mg daily", "losartan 50 mg daily",
                     "indapamide 2.5 mg daily", "bisoprolol 2.5 mg daily"),
    "type 2 diabetes": ("metformin 500 mg twice daily",),
    "hyperlipidaemia": ("atorvastatin 20 mg at night",),
    "copd": ("tiotropium 18 micrograms inhaled daily", "salbutamol inhaler as required"),
    "pneumonia": ("amoxicillin 500 mg three times daily",),
    "hypothyroidism": ("levothyroxine 75 micrograms daily",),
    "gout": ("allopurinol 100 mg daily",),
}  # fmt: skip


@dataclass(frozen=True)
class LabRow:
    name: str
    value: float
    unit: str
    low: float | None
    high: float | None


@dataclass(frozen=True)
class LabPanel:
    rows: tuple[LabRow, ...]
    history: str
    medications: str

    def names(self) -> list[str]:
        return [r.name for r in self.rows]


def egfr_ckd_epi_2021(creatinine: float, age: int, sex: str) -> float:
    """Estimated GFR (mL/min/1.73m2), CKD-EPI 2021 race-free equation."""
    kappa, alpha = (0.7, -0.241) if sex == "F" else (0.9, -0.302)
    ratio = creatinine / kappa
    value = 142.0 * min(ratio, 1.0) ** alpha * max(ratio, 1.0) ** -1.209 * 0.9938**age
    return value * (1.012 if sex == "F" else 1.0)


def _values(latent: Latent, rng: np.random.Generator) -> dict[str, float]:
    p = latent.params
    ckd = "ckd" in latent.confounders
    diabetic = rng.random() < NEUTRAL_HISTORY["type 2 diabetes"]
    creat = round(float(p["creatinine"]), 2)
    hb_mean = (14.4 if latent.sex == "M" else 13.0) - (1.4 if ckd else 0.0)
    return {
        "NT-proBNP": float(round(float(p["ntprobnp"]))),
        "Sodium": float(round(float(p["sodium"]))),
        "Creatinine": creat,
        "Potassium": round(
            float(np.clip(rng.normal(4.3 + (0.3 if ckd else 0.0), 0.35), 3.2, 6.0)), 1
        ),
        "eGFR": float(round(egfr_ckd_epi_2021(creat, latent.age, latent.sex))),
        "Urea nitrogen": float(round(15.0 * (creat / 0.9) ** 0.9 * rng.uniform(0.8, 1.25))),
        "Hemoglobin": round(float(np.clip(rng.normal(hb_mean, 1.1), 8.0, 18.0)), 1),
        "Troponin T": float(round(np.exp(rng.normal(np.log(9.0), 0.45)) * (1.8 if ckd else 1.0))),
        "Glucose": float(round(rng.normal(165.0, 40.0) if diabetic else rng.normal(98.0, 14.0))),
        "Albumin": round(float(np.clip(rng.normal(4.0, 0.35), 2.6, 5.0)), 1),
        "diabetic": float(diabetic),
    }


def _history(
    latent: Latent, rng: np.random.Generator, diabetic: bool
) -> tuple[list[str], list[str]]:
    """History phrases (in random order) and the condition keys that drive medications."""
    conf = set(latent.confounders)
    items: list[tuple[str, str]] = []
    if "hypertension" in conf:
        items.append(("hypertension", "hypertension"))
    if diabetic:
        items.append(("type 2 diabetes", "type 2 diabetes"))
    if "ckd" in conf:
        stage = rng.choice(["3a", "3b", "4"], p=[0.5, 0.35, 0.15])
        items.append((f"chronic kidney disease stage {stage}", "ckd"))
    if "copd" in conf:
        items.append((f"COPD, ex-smoker ({int(rng.integers(20, 60))} pack-years)", "copd"))
    for name, prob in NEUTRAL_HISTORY.items():
        if name != "type 2 diabetes" and rng.random() < prob:
            items.append((name, name))
    items = [items[i] for i in rng.permutation(len(items))]
    if "pneumonia" in conf:
        items.insert(
            0, (f"productive cough and fever for {int(rng.integers(2, 8))} days", "pneumonia")
        )
    return [text for text, _ in items], [key for _, key in items]


def _medications(latent: Latent, rng: np.random.Generator, conditions: list[str]) -> list[str]:
    meds: list[str] = []
    for key in conditions:
        options = DRUGS.get(key, ())
        if key == "copd":
            meds.extend(options)
        elif options:
            meds.append(options[int(rng.integers(len(options)))])
    expressed = "labs" in latent.evidence_modalities
    p_loop = 0.45 if expressed else (0.3 if "ckd" in latent.confounders else 0.08)
    if rng.random() < p_loop:
        meds.append(f"furosemide {int(rng.choice([20, 40, 80]))} mg daily")
    return meds


def make_labs(latent: Latent, rng: np.random.Generator) -> LabPanel:
    """The lab panel, history and medications for a latent that has labs."""
    values = _values(latent, rng)
    chosen = set(ALWAYS) | {name for name, prob in OPTIONAL.items() if rng.random() < prob}
    rows = []
    for name in PANEL_ORDER:
        ref = lookup(name)
        if name in chosen and ref is not None:
            rows.append(LabRow(name, values[name], ref.unit, ref.low, ref.high))
    history, conditions = _history(latent, rng, bool(values["diabetic"]))
    meds = _medications(latent, rng, conditions)
    return LabPanel(
        rows=tuple(rows),
        history=", ".join(history) if history else "no significant past medical history",
        medications=", ".join(meds) if meds else "no regular medications",
    )


def lab_evidence(latent: Latent, panel: LabPanel) -> list[str]:
    """Lab items carrying the planted lab findings (those outside their reference range)."""
    rows = {r.name: r for r in panel.rows}
    out: list[str] = []
    for finding in latent.findings["labs"]:
        for name in LAB_EVIDENCE_ITEMS[finding]:
            row = rows.get(name)
            flag = reference_flag(row.value, row.low, row.high) if row else ""
            if flag in ("H", "L") and name not in out:
                out.append(name)
    return out


def _cell(value: float | None) -> str:
    return "" if value is None else format_lab_value(value)


def labs_csv(panel: LabPanel) -> str:
    """CSV text with columns name,value,unit,low,high plus History and Medications rows."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["name", "value", "unit", "low", "high"])
    for r in panel.rows:
        writer.writerow([r.name, format_lab_value(r.value), r.unit, _cell(r.low), _cell(r.high)])
    writer.writerow([HISTORY_ROW, panel.history, "", "", ""])
    writer.writerow([MEDICATIONS_ROW, panel.medications, "", "", ""])
    return buf.getvalue()
