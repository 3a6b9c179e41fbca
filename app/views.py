"""Panel values of the workstation, computed from a case and its explanation bundle.

Pure functions: a case (and a bundle, possibly unfinished) in, the values Gradio
components show out (text segments, tables, plotly figures, RGB images, file paths).
:func:`stage_panels` says which panels a finished stage fills, so the app can show each
stage as soon as it is done and tests can check every panel without a browser.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from fuselens.app.explain_worker import RequestKey
from fuselens.app.figures.attention import attention_heatmap_figure
from fuselens.app.figures.contributions import (
    interaction_matrix_figure,
    modality_title,
    shapley_bar_figure,
)
from fuselens.app.figures.prediction import prediction_markdown
from fuselens.app.figures.text_highlight import Segment, highlighted_tokens, lab_item_table
from fuselens.app.image_views import ECHO_SLOTS, cxr_panel, ecg_panel, echo_panels, echo_slots
from fuselens.app.ingest import FileReport
from fuselens.app.report_views import (
    report_checks_markdown,
    report_sentences,
    sentence_evidence,
)
from fuselens.explain.bundle import ExplanationBundle
from fuselens.explain.context import PREDICTED
from fuselens.explain.ecg_measurements import ECGMeasurements
from fuselens.explain.methods import DEFAULT_METHOD, REGISTRY
from fuselens.explain.pipeline import stage_names
from fuselens.model_zoo.case import MODALITIES, GroundTruth, PatientCase
from fuselens.model_zoo.case import format_lab_value as fmt_value

TASK_LABELS = {
    "heart_failure": "Heart failure",
    "raised_ntprobnp": "Raised NT-proBNP",
    "hyponatraemia": "Hyponatraemia",
    "raised_creatinine": "Raised creatinine",
    "lbbb": "Left bundle branch block",
    "atrial_fibrillation": "Atrial fibrillation",
    "lateral_st_t": "Lateral ST-T changes",
    "reduced_ef": "Reduced ejection fraction",
    "dilated_lv": "Dilated left ventricle",
    "enlarged_la": "Enlarged left atrium",
    "cardiomegaly": "Cardiomegaly",
    "pleural_effusion": "Pleural effusion",
    "pulmonary_edema": "Pulmonary oedema",
}
STAGE_TITLES = {
    "prediction": "prediction",
    **{name: method.label for name, method in REGISTRY.items()},
    "attention": "attention",
    "shapley": "modality Shapley",
    "measurements": "ECG measurements",
    "report": "report",
    "text_lines": "lab lines (exact)",
    "text_shap": "lab text SHAP (word pieces)",
}


def task_label(task: str) -> str:
    """Display name of a task key."""
    return TASK_LABELS.get(task, task.replace("_", " ").capitalize())


def target_choices(answers: Sequence[str]) -> list[tuple[str, str]]:
    """The class picker: the model's own answer first (the default), then every answer."""
    return [("the model's answer", PREDICTED), *((a, a) for a in answers)]


def task_choices(tasks: Sequence[str]) -> list[tuple[str, str]]:
    """``(label, key)`` pairs for the task picker, in the model's order."""
    return [(task_label(t), t) for t in tasks]


def truth_answer(truth: GroundTruth | None, task: str) -> str | None:
    """The planted answer of ``task`` for a synthetic case, ``None`` for a real one."""
    if truth is None:
        return None
    if task in truth.labels:
        return "yes" if truth.labels[task] else "no"
    if not truth.findings:
        return None
    return "yes" if any(task in fs for fs in truth.findings.values()) else "no"


# ---------------------------------------------------------------- prediction


def prediction_card(bundle: ExplanationBundle) -> str:
    """The prediction card for the bundle's task: the model's answer and its probability."""
    pred = bundle.prediction[bundle.task]
    answer = pred["answer"]
    return prediction_markdown(
        task_label(bundle.task),
        answer,
        float(pred["probabilities"][answer]),
        bundle.device,
        bundle.model_name,
        bundle.caveat,
        pred.get("yes_at"),
    )


def identity_markdown(key: RequestKey, title: str) -> str:
    """What every panel on screen was computed for: case, task, class, method and model."""
    method = REGISTRY[key.method].label if key.method in REGISTRY else key.method
    return (
        f"Computed for **{title}** (`{key.case}`) · task **{task_label(key.task)}** · "
        f"class **{key.target}** · maps **{method}** · model **{key.model}**"
    )


def _estimate_source(estimate: dict[str, Any]) -> str:
    """Which head gave an estimate and, when its card says, the error it was measured at."""
    return "; ".join(filter(None, (estimate["source"], estimate.get("error"))))


def prediction_context(bundle: ExplanationBundle, truth: GroundTruth | None) -> str:
    """What is being explained, the planted truth when known, and every task's P(yes)."""
    used = ", ".join(modality_title(m) for m in bundle.modalities) or "none"
    lines = [
        f"Explaining **why “{bundle.target}”** for {task_label(bundle.task)} "
        f"(P = {bundle.probability:.1%}) · modalities used: {used}",
    ]
    planted = truth_answer(truth, bundle.task)
    if planted is not None:
        model_answer = bundle.prediction[bundle.task]["answer"]
        verdict = "agrees" if planted == model_answer else "**disagrees**"
        lines.append(f"Planted truth (synthetic case): **{planted}** — the model {verdict}.")
    others = []
    for task, pred in bundle.prediction.items():
        if task != bundle.task:
            p = pred["probabilities"].get("yes", pred["probability"])
            at = pred.get("yes_at", 0.5)
            point = f" ({pred['answer']}: operating point {at:.0%})" if at != 0.5 else ""
            others.append(f"{task_label(task)} {p:.0%}{point}")
    lines.append("Other tasks, P(yes): " + " · ".join(others))
    estimates = bundle.measurements.get("model_estimates") or {}
    if estimates:
        said = " · ".join(
            f"{e['label']} **{e['text']}** ({_estimate_source(e)})" for e in estimates.values()
        )
        lines.append(f"Model estimates (the model's, not measured on the case): {said}")
    return "\n\n".join(lines)


# ---------------------------------------------------------------- labs


def lab_values(case: PatientCase) -> dict[str, str]:
    """What the per-item table shows as each lab line's value."""
    if case.labs is None:
        return {}
    out = {}
    for item in case.labs.items:
        flag = f" ({item.flag})" if item.flag in ("H", "L") else ""
        out[item.name] = f"{fmt_value(item.value)} {item.unit}".rstrip() + flag
    if case.labs.history.strip():
        out["History"] = case.labs.history.strip()
    if case.labs.medications.strip():
        out["Medications"] = case.labs.medications.strip()
    return out


def lab_text_panel(case: PatientCase, bundle: ExplanationBundle | None) -> list[Segment]:
    """The lab text, SHAP-highlighted once text SHAP has run, plain before."""
    if case.labs is None:
        return [("No lab results in this case.", None)]
    text_attr = bundle.text if bundle is not None else None
    if text_attr is None:
        return [(case.labs.textualise(), None)]
    return highlighted_tokens(text_attr.tokens, text_attr.token_values, text=text_attr.text)


def lab_table_panel(case: PatientCase, bundle: ExplanationBundle | None) -> pd.DataFrame:
    """Per-item SHAP contributions (log-odds), largest first; values only before SHAP."""
    values = lab_values(case)
    text_attr = bundle.text if bundle is not None else None
    if text_attr is None:
        return pd.DataFrame({"Lab item": list(values), "Value": list(values.values())})
    items = list(text_attr.items)
    table = lab_item_table(
        items, [float(v) for v in text_attr.item_values], [values.get(i, "") for i in items]
    )
    return table


# ---------------------------------------------------------------- Shapley and attention


def shapley_panels(bundle: ExplanationBundle) -> tuple[go.Figure | None, go.Figure | None]:
    """Shapley bars and the interaction matrix (``None`` with a single modality)."""
    sh = bundle.shapley
    if sh is None or not sh.values:
        return None, None
    answer = f"{bundle.target} ({task_label(bundle.task)})"
    bars = shapley_bar_figure(sh.values, sh.base_value, sh.full_value, answer)
    matrix = (
        interaction_matrix_figure(np.asarray(sh.interactions), sh.modalities)
        if len(sh.modalities) > 1
        else None
    )
    return bars, matrix


def attention_panels(bundle: ExplanationBundle) -> tuple[go.Figure | None, go.Figure | None]:
    """The model's first two attention matrices (for the demo model: MedFlexFusion's modality
    attention and the task guidance's attention over Z_all)."""
    att = bundle.attention
    if att is None:
        return None, None
    figures: list[go.Figure | None] = []
    for title, m, rows, cols in list(
        zip(att.titles, att.matrices, att.rows, att.columns, strict=True)
    )[:2]:
        rows = [modality_title(r) if r in MODALITIES else r for r in rows]
        cols = [modality_title(c) if c in MODALITIES else c for c in cols]
        figures.append(attention_heatmap_figure(np.asarray(m), rows, cols, title))
    figures += [None] * (2 - len(figures))
    return figures[0], figures[1]


def unavailable_markdown(bundle: ExplanationBundle | None) -> str:
    """One line per panel the model's capabilities leave empty, saying why."""
    if bundle is None or not bundle.unavailable:
        return ""
    lines = []
    for key, reason in bundle.unavailable.items():
        stage, _, modality = key.partition(":")
        title = STAGE_TITLES.get(stage, stage)
        lines.append(
            f"- **{title}{f' ({modality_title(modality)})' if modality else ''}**: {reason}"
        )
    return "Not shown for this model:\n" + "\n".join(lines)


# ---------------------------------------------------------------- stages


def progress_markdown(
    bundle: ExplanationBundle | None,
    running: str | None = None,
    finished: bool = False,
    methods: Sequence[str] | None = None,
) -> str:
    """The stages in order: done (with seconds), running, waiting, or (once ``finished``)
    not applicable to this case (e.g. text SHAP without labs); ``methods`` are the chosen map
    methods (default: those in the bundle, else the default method)."""
    done = set(bundle.stages) if bundle is not None else set()
    if methods is None:
        methods = list(bundle.maps) if bundle is not None and bundle.maps else [DEFAULT_METHOD]
    parts = []
    for stage in stage_names(methods):
        title = STAGE_TITLES.get(stage, stage)
        if stage in done:
            parts.append(f"✓ {title} {bundle.timings.get(stage, 0.0):.1f} s")
        elif stage == running:
            parts.append(f"▸ **{title}…**")
        elif finished:
            parts.append(f"– {title} (not applicable)")
        else:
            parts.append(f"○ {title}")
    text = " · ".join(parts)
    if finished and bundle is not None:
        text += f" · done ({sum(bundle.timings.values()):.1f} s)"
    return text


def measurements_markdown(bundle: ExplanationBundle) -> str:
    """The ECG's intervals as an ECG machine prints them, with the method that measured them."""
    ecg = bundle.measurements.get("ecg")
    if not ecg:
        why = bundle.unavailable.get("measurements")
        return f"ECG measurements: {why}" if why else ""
    line = ECGMeasurements(**ecg).print_line()
    how = f"{ecg['method']}, lead {ecg['lead']}, {ecg['n_beats']} beats"
    return f"**Measured:** {line}  \n<small>{how}</small>"


def stage_panels(
    stage: str,
    case: PatientCase,
    bundle: ExplanationBundle,
    settings: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Panel name -> value for every panel that ``stage`` fills.

    ``settings`` holds ``echo_opacity`` (list per slot), ``cxr_opacity``, ``media_dir``.
    Echo panels are ``echo_video:i`` / ``echo_frame:i`` for slot ``i``.
    """
    settings = settings or {}
    out: dict[str, Any] = {}
    if stage == "prediction":
        out["prediction"] = prediction_card(bundle)
        out["prediction_context"] = prediction_context(bundle, case.truth)
        out["unavailable"] = unavailable_markdown(bundle)
    elif stage in REGISTRY:
        if stage != settings.get("method", stage):
            return out
        maps = bundle.maps.get(stage)
        out["ecg"] = ecg_panel(case, maps)
        out.update(echo_panels(case, maps, settings))
        out["cxr"] = cxr_panel(case, maps, settings.get("cxr_opacity", 0.5))
    elif stage == "measurements":
        out["ecg_measurements"] = measurements_markdown(bundle)
    elif stage == "attention":
        out["attention_modality"], out["attention_guidance"] = attention_panels(bundle)
    elif stage == "shapley":
        out["shapley"], out["interactions"] = shapley_panels(bundle)
    elif stage == "text_lines":
        out["lab_text"] = lab_text_panel(case, bundle)
        out["lab_table"] = lab_table_panel(case, bundle)
    elif stage in ("report", "text_shap"):
        if stage == "text_shap":
            out["lab_text"] = lab_text_panel(case, bundle)
            out["lab_table"] = lab_table_panel(case, bundle)
            if not _first_sentence_cites_labs(bundle):
                return out  # word pieces change only lab evidence: nothing else to redraw
        out["report_sentences"] = report_sentences(bundle.report)
        out["report_checks"] = report_checks_markdown(bundle.report)
        out.update(sentence_evidence(case, bundle, 0 if bundle.report else None))
    return out


def _first_sentence_cites_labs(bundle: ExplanationBundle) -> bool:
    sentences = bundle.report.sentences if bundle.report is not None else []
    return bool(sentences) and sentences[0].modality == "labs"


def unused_markdown(reports: Sequence[FileReport]) -> str:
    """The files read but left out of the model, each with why (empty when none)."""
    lines = [f"- ⚠️ **{Path(r.path).name}**: {r.unused}" for r in reports if r.ok and r.unused]
    return "\n\n**Read but not used:**\n" + "\n".join(lines) if lines else ""


def present_modalities(case: PatientCase) -> str:
    """A one-line summary of what the case holds."""
    held = []
    for m in MODALITIES:
        if m == "echo" and case.echo:
            held.append(f"Echo ({', '.join(echo_slots(case))})")
        elif m != "echo" and getattr(case, m) is not None:
            held.append(modality_title(m))
    return ", ".join(held) if held else "nothing readable"


def opened_panels(case: PatientCase) -> dict[str, Any]:
    """Every panel right after a case is opened: lab text and radiograph as read, the rest
    empty (the ECG print and echo loops come with Grad-CAM++, a moment later)."""
    out: dict[str, Any] = {
        "identity": "",
        "prediction": "",
        "prediction_context": f"Case holds: {present_modalities(case)}",
        "unavailable": "",
        "lab_text": lab_text_panel(case, None),
        "lab_table": lab_table_panel(case, None),
        "ecg": None,
        "cxr": cxr_panel(case, None, 0.0),
        "shapley": None,
        "interactions": None,
        "attention_modality": None,
        "attention_guidance": None,
        "report_sentences": [],
        "report_checks": "",
        "ecg_measurements": "",
        "report_text": [],
        "evidence_md": "",
        "evidence_image": None,
        "evidence_ecg": None,
    }
    for i in range(ECHO_SLOTS):
        out[f"echo_video:{i}"] = None
        out[f"echo_frame:{i}"] = None
    return out


def bundle_panels(
    case: PatientCase, bundle: ExplanationBundle, settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Every panel of a finished (e.g. cached) bundle at once."""
    out: dict[str, Any] = {}
    for stage in bundle.stages:
        out.update(stage_panels(stage, case, bundle, settings))
    return out
