"""The planted ground truth of one synthetic patient, drawn before any file is rendered.

Each patient has its own random stream, ``np.random.default_rng([seed, index])``, so a
cohort is reproducible patient by patient and can be written in any order or in parallel.

Generative story (the numbers live in the constants below):

- heart failure (HF) ~ Bernoulli(0.45); confounders (CKD, COPD, pneumonia, hypertension)
  independently of HF;
- every patient gets *background* findings from confounders and chance (CKD raises
  NT-proBNP and creatinine, hypertension enlarges the LA and strains the lateral wall,
  pneumonia brings a parapneumonic effusion, AF without HF ...);
- an HF patient's modalities each *express* HF independently (p ~ 0.75); an expressing
  modality shows one to three of its findings, graded by a severity in [0, 1]; at least one
  present modality always expresses;
- interaction rule: HF with CKD always shows a reduced EF on echo, and CKD without HF never
  does, so a raised NT-proBNP in kidney disease means HF only when the EF is reduced;
- about a fifth of the patients lack one or two modalities; some echo studies lack a view.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from fuselens.model_zoo.case import ECHO_VIEWS, MODALITIES
from fuselens.model_zoo.synth.vocab import ALL_FINDINGS, CONFOUNDERS, FINDINGS

P_HEART_FAILURE = 0.45
P_CONFOUNDER: dict[str, float] = {"ckd": 0.2, "copd": 0.15, "pneumonia": 0.1, "hypertension": 0.4}
P_EXPRESS: dict[str, float] = {"labs": 0.72, "ecg": 0.74, "echo": 0.68, "cxr": 0.74}
# Which findings an expressing modality shows (independent draws, at least one kept).
P_HF_FINDING: dict[str, float] = {
    "raised_ntprobnp": 0.9,
    "hyponatraemia": 0.35,
    "raised_creatinine": 0.3,
    "lbbb": 0.35,
    "atrial_fibrillation": 0.45,
    "lateral_st_t": 0.45,
    "reduced_ef": 0.8,
    "dilated_lv": 0.5,
    "enlarged_la": 0.45,
    "cardiomegaly": 0.75,
    "pleural_effusion": 0.45,
    "pulmonary_edema": 0.5,
}
P_ALL_MODALITIES = 0.8
P_DROP_TWO = 0.3
P_DROP_ECHO_VIEW = 0.12


@dataclass(frozen=True)
class Latent:
    """Everything planted for one patient; renderers only turn it into files."""

    case_id: str
    seed: int
    index: int
    heart_failure: int
    confounders: tuple[str, ...]
    age: int
    sex: str
    modalities: tuple[str, ...]
    echo_views: tuple[str, ...]
    evidence_modalities: tuple[str, ...]
    findings: dict[str, tuple[str, ...]]
    params: dict[str, float | str] = field(default_factory=dict)

    def has(self, finding: str) -> bool:
        return any(finding in f for f in self.findings.values())


def case_id_for(index: int) -> str:
    return f"P{index:05d}"


def patient_rng(seed: int, index: int, stream: int | None = None) -> np.random.Generator:
    """The latent stream ``[seed, index]``; renderers use ``[seed, index, stream]``."""
    key = [int(seed), int(index)] if stream is None else [int(seed), int(index), int(stream)]
    return np.random.default_rng(key)


def _pick_findings(rng: np.random.Generator, modality: str) -> set[str]:
    names = FINDINGS[modality]
    chosen = {f for f in names if rng.random() < P_HF_FINDING[f]}
    if not chosen:
        weights = np.array([P_HF_FINDING[f] for f in names])
        chosen = {names[int(rng.choice(len(names), p=weights / weights.sum()))]}
    return chosen


def _background(rng: np.random.Generator, conf: set[str], hf: bool) -> dict[str, set[str]]:
    """Findings that confounders and chance plant in anyone, with or without HF."""
    u = rng.random(12)
    bg: dict[str, set[str]] = {m: set() for m in MODALITIES}
    ckd, htn = "ckd" in conf, "hypertension" in conf
    if ckd:
        if u[0] < 0.9:
            bg["labs"].add("raised_creatinine")
        if u[1] < 0.55:
            bg["labs"].add("raised_ntprobnp")
    elif u[0] < 0.02:
        bg["labs"].add("raised_creatinine")
    if u[2] < (0.1 if ckd else 0.035):
        bg["labs"].add("hyponatraemia")
    if u[3] < 0.06:
        bg["ecg"].add("atrial_fibrillation")
    if u[4] < 0.02:
        bg["ecg"].add("lbbb")
    if u[5] < (0.08 if htn else 0.01):
        bg["ecg"].add("lateral_st_t")
    af = "atrial_fibrillation" in bg["ecg"]
    if u[6] < 0.03 + (0.08 if htn else 0.0) + (0.3 if af else 0.0):
        bg["echo"].add("enlarged_la")
    if u[7] < 0.02:
        bg["echo"].add("dilated_lv")
    if not ckd and not hf and u[8] < 0.015:
        bg["echo"].add("reduced_ef")
    if u[9] < 0.03 + (0.05 if htn else 0.0):
        bg["cxr"].add("cardiomegaly")
    if u[10] < (0.3 if "pneumonia" in conf else 0.02):
        bg["cxr"].add("pleural_effusion")
    if u[11] < (0.05 if ckd else 0.005):
        bg["cxr"].add("pulmonary_edema")
    return bg


def _presence(rng: np.random.Generator) -> tuple[tuple[str, ...], tuple[str, ...]]:
    present = list(MODALITIES)
    if rng.random() >= P_ALL_MODALITIES:
        k = 2 if rng.random() < P_DROP_TWO else 1
        for m in rng.choice(len(MODALITIES), size=k, replace=False):
            present.remove(MODALITIES[int(m)])
    views = list(ECHO_VIEWS)
    if rng.random() < P_DROP_ECHO_VIEW:
        views.pop(int(rng.integers(len(views))))
    return tuple(present), tuple(views)


def _loguniform(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(np.exp(rng.uniform(np.log(lo), np.log(hi))))


Severity = Callable[[str], float]


def _lab_params(
    rng: np.random.Generator,
    labs: set[str],
    hf_labs: set[str],
    s: Severity,
    conf: set[str],
    sex: str,
) -> dict[str, float | str]:
    p: dict[str, float | str] = {}
    if "raised_ntprobnp" in hf_labs:
        v = float(np.clip(np.exp(rng.normal(np.log(3200.0), 0.75)), 900.0, 35000.0))
        p["ntprobnp"] = v * (1.4 if "ckd" in conf else 1.0)
    elif "raised_ntprobnp" in labs:
        p["ntprobnp"] = _loguniform(rng, 450.0, 2600.0)
    else:
        p["ntprobnp"] = float(np.clip(np.exp(rng.normal(np.log(90.0), 0.6)), 20.0, 420.0))
    if "hyponatraemia" in labs:
        p["sodium"] = float(133.0 - 9.0 * s("hyponatraemia"))
    else:
        p["sodium"] = float(np.clip(rng.normal(140.0, 2.0), 136.0, 145.0))
    if "raised_creatinine" in labs:
        base, span = (1.5, 1.8) if "ckd" in conf else (1.35, 1.0)
        p["creatinine"] = float(base + span * s("raised_creatinine"))
    else:
        p["creatinine"] = float(np.clip(rng.normal(0.95 if sex == "M" else 0.8, 0.12), 0.55, 1.15))
    return p


def _ecg_params(rng: np.random.Generator, ecg: set[str], s: Severity) -> dict[str, float | str]:
    af = "atrial_fibrillation" in ecg
    lbbb, lateral = "lbbb" in ecg, "lateral_st_t" in ecg
    return {
        "heart_rate": float(rng.uniform(75.0, 125.0) if af else rng.uniform(58.0, 92.0)),
        "qrs_ms": float(130.0 + 40.0 * s("lbbb") if lbbb else rng.uniform(78.0, 102.0)),
        "st_depression_mv": float(0.08 + 0.17 * s("lateral_st_t")) if lateral else 0.0,
    }


def _echo_params(
    rng: np.random.Generator, echo: set[str], hf_echo: set[str], s: Severity
) -> dict[str, float | str]:
    if "reduced_ef" in hf_echo:
        ef = 40.0 - 25.0 * s("reduced_ef")
    elif "reduced_ef" in echo:
        ef = 45.0 - 7.0 * s("reduced_ef")
    else:
        ef = rng.uniform(55.0, 70.0)
    dilated, big_la = "dilated_lv" in echo, "enlarged_la" in echo
    return {
        "ef": float(ef),
        "lv_scale": float(1.2 + 0.2 * s("dilated_lv") if dilated else rng.uniform(0.9, 1.05)),
        "la_scale": float(1.3 + 0.35 * s("enlarged_la") if big_la else rng.uniform(0.9, 1.05)),
    }


def _cxr_params(
    rng: np.random.Generator, cxr: set[str], hf_cxr: set[str], s: Severity, conf: set[str]
) -> dict[str, float | str]:
    big = "cardiomegaly" in cxr
    p: dict[str, float | str] = {
        "ctr": float(0.53 + 0.1 * s("cardiomegaly") if big else rng.uniform(0.4, 0.48)),
        "pneumonia_side": str(rng.choice(["right", "left"])),
        "pneumonia_zone": str(rng.choice(["lower", "lower", "middle"])),
    }
    if "pleural_effusion" in hf_cxr:
        p["effusion_side"] = str(rng.choice(["bilateral", "right", "left"], p=[0.55, 0.3, 0.15]))
    elif "pleural_effusion" in cxr:
        side = p["pneumonia_side"] if "pneumonia" in conf else rng.choice(["right", "left"])
        p["effusion_side"] = str(side)
    if "pleural_effusion" in cxr:
        p["effusion_size"] = float(0.3 + 0.7 * s("pleural_effusion"))
    if "pulmonary_edema" in cxr:
        p["edema_severity"] = float(0.4 + 0.6 * s("pulmonary_edema"))
    return p


def _params(
    rng: np.random.Generator,
    findings: dict[str, set[str]],
    hf_findings: dict[str, set[str]],
    conf: set[str],
    sex: str,
) -> dict[str, float | str]:
    """Physiological values behind the findings: HF-caused findings are graded more severe."""
    sev = {f: float(rng.beta(2.5, 2.0)) for f in ALL_FINDINGS}
    mild = {f: float(rng.beta(2.0, 3.5)) for f in ALL_FINDINGS}
    hf_caused = {f for fs in hf_findings.values() for f in fs}

    def s(f: str) -> float:
        return sev[f] if f in hf_caused else mild[f]

    return {
        **_lab_params(rng, findings["labs"], hf_findings["labs"], s, conf, sex),
        **_ecg_params(rng, findings["ecg"], s),
        **_echo_params(rng, findings["echo"], hf_findings["echo"], s),
        **_cxr_params(rng, findings["cxr"], hf_findings["cxr"], s, conf),
    }


def draw_latent(seed: int, index: int) -> Latent:
    """The planted truth for patient ``index`` of the cohort ``seed`` (no files, fast)."""
    rng = patient_rng(seed, index)
    hf = bool(rng.random() < P_HEART_FAILURE)
    conf = {c for c in CONFOUNDERS if rng.random() < P_CONFOUNDER[c]}
    age = int(np.clip(round(rng.normal(67.0, 12.0)), 30, 95))
    sex = "M" if rng.random() < 0.55 else "F"
    present, views = _presence(rng)

    express = {m: bool(rng.random() < P_EXPRESS[m]) for m in MODALITIES}
    candidate = {m: _pick_findings(rng, m) for m in MODALITIES}
    if hf and "ckd" in conf:
        express["echo"] = True
        candidate["echo"].add("reduced_ef")
    forced = MODALITIES[int(rng.integers(len(MODALITIES)))]
    bg = _background(rng, conf, hf)

    if hf and not any(express[m] for m in present):
        order = [forced, *[m for m in MODALITIES if m != forced]]
        express[next(m for m in order if m in present)] = True
    hf_findings = {
        m: candidate[m] if hf and express[m] and m in present else set() for m in MODALITIES
    }
    findings = {m: (hf_findings[m] | bg[m]) if m in present else set() for m in MODALITIES}
    params = _params(rng, findings, hf_findings, conf, sex)
    return Latent(
        case_id=case_id_for(index),
        seed=int(seed),
        index=int(index),
        heart_failure=int(hf),
        confounders=tuple(c for c in CONFOUNDERS if c in conf),
        age=age,
        sex=sex,
        modalities=present,
        echo_views=views if "echo" in present else (),
        evidence_modalities=tuple(m for m in MODALITIES if hf_findings[m]),
        findings={m: tuple(f for f in FINDINGS[m] if f in findings[m]) for m in MODALITIES},
        params=params,
    )
