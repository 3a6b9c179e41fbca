"""Reference reports: one templated sentence per present modality plus an impression, and
the parser that reads findings back out of a report (the finding-level F1 parser).

Fixed clinical phrases name each finding, so ``findings_from_report(make_report(...))``
returns exactly the planted findings. The impression summarises and never names the label.
"""

from __future__ import annotations

import re

from fuselens.model_zoo.case import ECHO_VIEWS, MODALITIES
from fuselens.model_zoo.synth.latent import Latent
from fuselens.model_zoo.synth.vocab import FINDINGS

VIEW_NAMES = {
    "A4C": "apical four-chamber",
    "A2C": "apical two-chamber",
    "PLAX": "parasternal long-axis",
}
HEADERS = {"labs": "Labs", "ecg": "ECG", "echo": "Echo", "cxr": "Chest X-ray"}
IMPRESSION_TERMS = (
    ("reduced_ef", "reduced left ventricular systolic function"),
    ("dilated_lv", "left ventricular dilatation"),
    ("enlarged_la", "left atrial enlargement"),
    ("cardiomegaly", "an enlarged cardiac silhouette"),
    ("pulmonary_edema", "pulmonary venous congestion"),
    ("pleural_effusion", "pleural fluid"),
    ("raised_ntprobnp", "a raised natriuretic peptide"),
    ("hyponatraemia", "hyponatraemia"),
    ("raised_creatinine", "renal impairment"),
    ("atrial_fibrillation", "atrial fibrillation"),
    ("lbbb", "conduction disease"),
    ("lateral_st_t", "a lateral repolarisation abnormality"),
)
CONFOUNDER_TERMS = (
    ("pneumonia", "consolidation in keeping with infection"),
    ("copd", "hyperinflation in keeping with COPD"),
)
PATTERNS: dict[str, tuple[str, ...]] = {
    "raised_ntprobnp": (
        r"nt-?pro-?bnp (is )?(raised|elevated|high)",
        r"(raised|elevated|high) nt-?pro-?bnp",
    ),
    "hyponatraemia": (r"sodium (is )?low", r"low sodium", r"hyponatra?emia"),
    "raised_creatinine": (
        r"creatinine (is )?(raised|elevated|high)",
        r"(raised|elevated|high) creatinine",
    ),
    "lbbb": (r"left bundle branch block", r"\blbbb\b"),
    "atrial_fibrillation": (r"atrial fibrillation",),
    "lateral_st_t": (r"lateral st depression", r"lateral t-wave inversion", r"lateral st-t"),
    "reduced_ef": (
        r"ejection fraction (is )?reduced",
        r"reduced (left ventricular )?ejection fraction",
    ),
    "dilated_lv": (r"left ventricle (is )?dilated", r"dilated left ventricle"),
    "enlarged_la": (r"left atrium (is )?(enlarged|dilated)", r"(enlarged|dilated) left atrium"),
    "cardiomegaly": (r"cardiomegaly",),
    "pleural_effusion": (r"pleural effusion",),
    "pulmonary_edema": (r"pulmonary o?edema",),
}
NEGATION = re.compile(r"\b(no|without|not|nor)\b")


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _labs_sentence(latent: Latent) -> str:
    p, found = latent.params, latent.findings["labs"]
    parts = []
    if "raised_ntprobnp" in found:
        parts.append(f"NT-proBNP is raised at {round(float(p['ntprobnp'])):,} pg/mL")
    if "hyponatraemia" in found:
        parts.append(f"sodium is low at {round(float(p['sodium']))} mmol/L")
    if "raised_creatinine" in found:
        parts.append(f"creatinine is raised at {float(p['creatinine']):.2f} mg/dL")
    if not parts:
        return "Labs: NT-proBNP, sodium and creatinine show no significant abnormality."
    return "Labs: " + "; ".join(parts) + "."


def _ecg_sentence(latent: Latent) -> str:
    p, found = latent.params, latent.findings["ecg"]
    rate = round(float(p["heart_rate"]))
    if "atrial_fibrillation" in found:
        rhythm = f"atrial fibrillation with a ventricular rate of about {rate}/min"
    else:
        rhythm = f"sinus rhythm at {rate}/min"
    extra = []
    if "lbbb" in found:
        extra.append(f"left bundle branch block (QRS {round(float(p['qrs_ms']))} ms)")
    if "lateral_st_t" in found:
        extra.append("lateral ST depression with T-wave inversion in I, aVL, V5 and V6")
    tail = "; ".join(extra) if extra else "normal conduction and repolarisation"
    return f"ECG: {rhythm}; {tail}."


def _echo_sentence(latent: Latent) -> str:
    p, found = latent.params, latent.findings["echo"]
    ef = round(float(p["ef"]))
    parts = []
    if "reduced_ef" in found:
        parts.append(f"left ventricular ejection fraction is reduced (estimated {ef}%)")
    else:
        parts.append(
            f"left ventricular systolic function is normal (estimated ejection fraction {ef}%)"
        )
    if "dilated_lv" in found:
        parts.append("the left ventricle is dilated")
    if "enlarged_la" in found:
        parts.append("the left atrium is enlarged")
    if not {"dilated_lv", "enlarged_la"} & set(found):
        parts.append("chamber sizes are normal")
    missing = [VIEW_NAMES[v] for v in ECHO_VIEWS if v not in latent.echo_views]
    if missing:
        parts.append(
            f"the {_join(missing)} view{'s were' if len(missing) > 1 else ' was'} not obtained"
        )
    return "Echo: " + "; ".join(parts) + "."


def _cxr_sentence(latent: Latent) -> str:
    p, found = latent.params, latent.findings["cxr"]
    lead = (
        f"cardiomegaly (cardiothoracic ratio {float(p['ctr']):.2f})"
        if "cardiomegaly" in found
        else ""
    )
    extra = []
    if "pleural_effusion" in found:
        size = "small" if float(p["effusion_size"]) < 0.6 else "moderate"
        side = str(p["effusion_side"])
        extra.append(
            f"{size} bilateral pleural effusions"
            if side == "bilateral"
            else f"a {size} {side} pleural effusion"
        )
    if "pulmonary_edema" in found:
        extra.append("pulmonary oedema (perihilar haze, Kerley B lines)")
    if lead and extra:
        text = f"{lead} with {_join(extra)}"
    elif extra:
        text = f"{_join(extra)}; heart size is normal"
    else:
        text = lead
    conf = latent.confounders
    if not (lead or extra):
        lungs = "" if {"copd", "pneumonia"} & set(conf) else ", clear lungs"
        text = f"normal heart size{lungs} and sharp costophrenic angles"
    if "copd" in conf:
        text += "; hyperinflated lungs with flattened hemidiaphragms"
    if "pneumonia" in conf:
        text += f"; {p['pneumonia_side']} {p['pneumonia_zone']} zone consolidation"
    return f"Chest X-ray: {text}."


def _impression(latent: Latent) -> str:
    found = {f for fs in latent.findings.values() for f in fs}
    terms = [phrase for f, phrase in IMPRESSION_TERMS if f in found]
    terms += [phrase for c, phrase in CONFOUNDER_TERMS if c in latent.confounders]
    if not terms:
        return "Impression: no cardiopulmonary abnormality."
    return f"Impression: {_join(terms)}."


SENTENCES = {
    "labs": _labs_sentence,
    "ecg": _ecg_sentence,
    "echo": _echo_sentence,
    "cxr": _cxr_sentence,
}


def make_report(latent: Latent) -> str:
    """The reference report: one line per present modality, then the impression."""
    lines = [SENTENCES[m](latent) for m in MODALITIES if m in latent.modalities]
    return "\n".join([*lines, _impression(latent)])


_SECTION = re.compile(r"(labs|ecg|echo|chest x-ray|impression)\s*:", re.IGNORECASE)
_KEYS = {"labs": "labs", "ecg": "ecg", "echo": "echo", "chest x-ray": "cxr"}


def _sections(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    marks = list(_SECTION.finditer(text))
    for i, m in enumerate(marks):
        key = _KEYS.get(m.group(1).lower())
        end = marks[i + 1].start() if i + 1 < len(marks) else len(text)
        if key:
            out[key] = out.get(key, "") + " " + text[m.end() : end].lower()
    return out


def _present(section: str, pattern: str) -> bool:
    for m in re.finditer(pattern, section):
        clause = re.split(r"[;.,]", section[: m.start()])[-1]
        if not NEGATION.search(clause):
            return True
    return False


def findings_from_report(text: str) -> dict[str, set[str]]:
    """Findings named in a report's modality sections (negated mentions are ignored)."""
    sections = _sections(text)
    out: dict[str, set[str]] = {m: set() for m in MODALITIES}
    for modality in MODALITIES:
        section = sections.get(modality, "")
        for finding in FINDINGS[modality]:
            if any(_present(section, pat) for pat in PATTERNS[finding]):
                out[modality].add(finding)
    return out
