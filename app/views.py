"""Panel values of the workstation, computed from a case and its explanation bundle.

Pure functions: a case (and a bundle, possibly unfinished) in, the values Gradio
components show out (text segments, tables, plotly figures, RGB images, file paths).
:func:`stage_panels` says which panels a finished stage fills, so the app can show each
stage as soon as it is done and tests can check every panel without a browser.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pandas as pd
import plotly.graph_objects as go

from app.figures.attention import attention_heatmap_figure
from app.figures.contributions import interaction_matrix_figure, modality_title, shapley_bar_figure
from app.figures.ecg_print import ecg_print_figure
from app.figures.loops import write_loop
from app.figures.overlays import cam_overlay, cxr_overlay, echo_overlay_frames, resample_cam_frames
from app.figures.prediction import prediction_markdown
from app.figures.text_highlight import Segment, highlighted_tokens, lab_item_table
from explain.bundle import ExplanationBundle, GradCAMMaps, GroundedReport
from model_zoo.case import ECHO_VIEWS, MODALITIES, EchoCine, GroundTruth, PatientCase
from model_zoo.case import format_lab_value as fmt_value

ECHO_SLOTS = 3
ECHO_DISPLAY_SIDE = 256
CXR_DISPLAY_SIDE = 768
SELECTED = "selected sentence"
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
    "gradcam": "Grad-CAM++",
    "attention": "attention",
    "shapley": "modality Shapley",
    "report": "report",
    "text_shap": "lab text SHAP",
}


def task_label(task: str) -> str:
    """Display name of a task key."""
    return TASK_LABELS.get(task, task.replace("_", " ").capitalize())


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
    )


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
            others.append(f"{task_label(task)} {p:.0%}")
    lines.append("Other tasks, P(yes): " + " · ".join(others))
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
    table["Contribution"] = table["Contribution"].round(4)
    return table


# ---------------------------------------------------------------- ECG, echo, CXR


def ecg_panel(case: PatientCase, gradcam: GradCAMMaps | None) -> go.Figure | None:
    """The 12-lead print, shaded with Grad-CAM++ when it has run."""
    if case.ecg is None:
        return None
    heat = None
    if gradcam is not None and gradcam.ecg is not None:
        order = [gradcam.ecg_leads.index(lead) for lead in case.ecg.lead_names]
        heat = np.asarray(gradcam.ecg)[order]
    return ecg_print_figure(case.ecg, heat, heat_label="Grad-CAM++", height=760)


def echo_slots(case: PatientCase) -> list[str]:
    """The echo views shown, standard views first, at most :data:`ECHO_SLOTS`."""
    views = sorted(case.echo, key=lambda v: (ECHO_VIEWS.index(v) if v in ECHO_VIEWS else 99, v))
    return views[:ECHO_SLOTS]


def _display_scale(shape: Sequence[int], side: int) -> tuple[int, int]:
    h, w = int(shape[0]), int(shape[1])
    scale = side / max(h, w)
    return max(2, round(h * scale)), max(2, round(w * scale))


def _upscale_frames(frames: np.ndarray, side: int) -> np.ndarray:
    h, w = _display_scale(frames.shape[1:], side)
    if (h, w) == frames.shape[1:]:
        return frames
    return np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in frames])


def echo_cam(gradcam: GradCAMMaps | None, view: str) -> np.ndarray | None:
    """The view's Grad-CAM++ frames, or ``None`` before Grad-CAM++ or for an unused view."""
    if gradcam is None or view not in gradcam.echo:
        return None
    return np.asarray(gradcam.echo[view], dtype=np.float32)


def echo_rgb_frames(cine: EchoCine, cam: np.ndarray | None, opacity: float) -> np.ndarray:
    """Every frame of the cine, enlarged for display, with its overlay: ``(F, H, W, 3)``."""
    frames = _upscale_frames(cine.frames, ECHO_DISPLAY_SIDE)
    if cam is None:
        return np.repeat(frames[..., None], 3, axis=-1)
    return echo_overlay_frames(frames, cam, opacity)


def echo_frame_image(
    cine: EchoCine, cam: np.ndarray | None, opacity: float, index: int
) -> np.ndarray:
    """Frame ``index`` (clamped) with its overlay, for the frame scrubber."""
    i = int(np.clip(int(index), 0, cine.frames.shape[0] - 1))
    frame = _upscale_frames(cine.frames[i : i + 1], ECHO_DISPLAY_SIDE)[0]
    if cam is None:
        return np.repeat(frame[..., None], 3, axis=-1)
    per_frame = resample_cam_frames(cam, cine.frames.shape[0])
    return cam_overlay(frame, per_frame[i], opacity)


def echo_loop_file(
    cine: EchoCine, cam: np.ndarray | None, opacity: float, out_dir: str | Path
) -> Path:
    """An MP4 loop of the cine with its overlay, under a fresh name in ``out_dir``."""
    rgb = echo_rgb_frames(cine, cam, opacity)
    path = Path(out_dir) / f"echo-{cine.view}-{uuid.uuid4().hex[:10]}.mp4"
    return write_loop(rgb, cine.frame_rate, path)


def echo_panels(
    case: PatientCase, gradcam: GradCAMMaps | None, settings: dict[str, Any]
) -> dict[str, Any]:
    """Each echo slot's loop (when ``settings`` has a ``media_dir``) and first frame."""
    opacities = settings.get("echo_opacity", [0.5] * ECHO_SLOTS)
    media = settings.get("media_dir")
    slots = [(i, case.echo[v], echo_cam(gradcam, v)) for i, v in enumerate(echo_slots(case))]
    out: dict[str, Any] = {}
    if media is not None:
        with ThreadPoolExecutor(max_workers=len(slots) or 1) as pool:
            files = pool.map(lambda s: echo_loop_file(s[1], s[2], opacities[s[0]], media), slots)
            for (i, _, _), path in zip(slots, files, strict=True):
                out[f"echo_video:{i}"] = str(path)
    for i, cine, cam in slots:
        out[f"echo_frame:{i}"] = echo_frame_image(cine, cam, opacities[i], 0)
    return out


def cxr_panel(case: PatientCase, gradcam: GradCAMMaps | None, opacity: float) -> np.ndarray | None:
    """The radiograph (display size) with its Grad-CAM++ overlay when it has run."""
    if case.cxr is None:
        return None
    cam = gradcam.cxr if gradcam is not None else None
    if cam is None:
        cam = np.zeros((8, 8), np.float32)
        opacity = 0.0
    return cxr_overlay(case.cxr, cam, opacity, max_side=CXR_DISPLAY_SIDE)


# ---------------------------------------------------------------- Shapley and attention


def shapley_panels(bundle: ExplanationBundle) -> tuple[go.Figure | None, go.Figure | None]:
    """Shapley bars and the interaction matrix (``None`` with a single modality)."""
    sh = bundle.shapley
    if sh is None or not sh.values:
        return None, None
    answer = f"{bundle.target}" + f" ({task_label(bundle.task)})"
    bars = shapley_bar_figure(sh.values, sh.base_value, sh.full_value, answer)
    matrix = (
        interaction_matrix_figure(np.asarray(sh.interactions), sh.modalities)
        if len(sh.modalities) > 1
        else None
    )
    return bars, matrix


def attention_panels(bundle: ExplanationBundle) -> tuple[go.Figure | None, go.Figure | None]:
    """MedFlexFusion's modality attention and the task guidance's attention over Z_all."""
    att = bundle.attention
    if att is None:
        return None, None
    keep = [i for i, p in enumerate(att.present) if p]
    names = [modality_title(att.modalities[i]) for i in keep]
    m = np.asarray(att.modality_attention)[np.ix_(keep, keep)]
    fusion = attention_heatmap_figure(m, names, names, "Cross-modal attention (MedFlexFusion)")
    guidance = attention_heatmap_figure(
        np.asarray(att.guidance),
        att.guidance_rows,
        att.token_labels,
        f"Task guidance: “{task_label(bundle.task)}” prompt over fused tokens",
    )
    return fusion, guidance


# ---------------------------------------------------------------- report and evidence


def report_sentences(report: GroundedReport | None) -> list[str]:
    """The generated report's sentences, numbered, as choices."""
    if report is None:
        return []
    return [f"{i + 1}. {s.text}" for i, s in enumerate(report.sentences)]


def report_highlight(report: GroundedReport | None, index: int | None) -> list[Segment]:
    """The report text with the chosen sentence marked."""
    if report is None:
        return []
    out: list[Segment] = []
    for i, s in enumerate(report.sentences):
        if out:
            out.append((" ", None))
        out.append((s.text, SELECTED if i == index else None))
    return out


def _bbox_image(image: np.ndarray, bbox: Sequence[int], side: int) -> np.ndarray:
    """``image`` (RGB uint8) enlarged to ``side`` with the stored-geometry ``bbox`` outlined."""
    h, w = image.shape[:2]
    nh, nw = _display_scale((h, w), side)
    out = cv2.resize(image, (nw, nh), interpolation=cv2.INTER_AREA if nh < h else cv2.INTER_CUBIC)
    r0, c0, r1, c1 = (float(v) for v in bbox)
    sy, sx = nh / h, nw / w
    p0 = (int(round(c0 * sx)), int(round(r0 * sy)))
    p1 = (int(round(c1 * sx)), int(round(r1 * sy)))
    thickness = max(2, side // 200)
    cv2.rectangle(out, p0, p1, (0, 255, 255), thickness + 2)
    cv2.rectangle(out, p0, p1, (255, 0, 160), thickness)
    return np.ascontiguousarray(out)


def _ecg_windows_heat(case: PatientCase, windows: Sequence[dict]) -> np.ndarray:
    ecg = case.ecg
    heat = np.zeros(ecg.signal.shape, np.float32)
    for w in windows:
        if w["lead"] not in ecg.lead_names:
            continue
        a = int(max(0.0, float(w["start_s"])) * ecg.sampling_rate)
        b = int(float(w["end_s"]) * ecg.sampling_rate)
        heat[ecg.lead_names.index(w["lead"]), a : max(b, a + 1)] = 1.0
    return heat


def _evidence_markdown(sentence: Any) -> str:
    """The chosen sentence, where it is grounded, and its evidence in words."""
    modality = sentence.modality
    where = modality_title(modality) if modality else "no single modality"
    shares = sorted(sentence.attention.items(), key=lambda kv: -kv[1])
    paragraphs = [
        f"**Evidence for:** {sentence.text}",
        f"Grounded in **{where}** (by {sentence.basis}) · the sentence's cross-attention: "
        + ", ".join(f"{modality_title(k)} {v:.0%}" for k, v in shares),
    ]
    ev = sentence.evidence or {}
    if modality == "labs" and ev.get("items"):
        rows = ["| lab item | value | contribution |", "| --- | --- | ---: |"]
        for item in ev["items"]:
            value = f"{fmt_value(float(item['value']))} {item.get('unit', '')}".strip()
            rows.append(f"| {item['name']} | {value} | {float(item['attribution']):+.3f} |")
        paragraphs.append("\n".join(rows))
        paragraphs.append(f"Contributions from {ev.get('source', 'attribution')} (log-odds).")
    elif modality == "ecg" and ev.get("leads"):
        leads = ", ".join(f"{x['lead']} ({float(x['score']):.2f})" for x in ev["leads"])
        paragraphs.append(f"Leads: {leads}; their windows are shaded below.")
    elif modality == "echo" and ev.get("view"):
        frames = ev.get("frames") or []
        span = f"frames {min(frames)}–{max(frames)}" if frames else "all frames"
        paragraphs.append(f"View {ev['view']}, {span}; the region is outlined below.")
    elif modality == "cxr" and ev.get("bbox"):
        paragraphs.append(f"Region: {ev.get('region', 'outlined')}; outlined below.")
    return "\n\n".join(paragraphs)


def sentence_evidence(
    case: PatientCase, bundle: ExplanationBundle, index: int | None
) -> dict[str, Any]:
    """What choosing sentence ``index`` shows: the report with it marked, its evidence
    described, and (for ECG, echo and CXR) the evidence drawn on the signal or image."""
    report = bundle.report
    out: dict[str, Any] = {
        "report_text": report_highlight(report, index),
        "evidence_md": "",
        "evidence_image": None,
        "evidence_ecg": None,
    }
    if report is None or index is None or not 0 <= index < len(report.sentences):
        return out
    sentence = report.sentences[index]
    out["evidence_md"] = _evidence_markdown(sentence)
    ev = sentence.evidence or {}
    gradcam = bundle.gradcam
    if sentence.modality == "ecg" and case.ecg is not None and ev.get("windows"):
        heat = _ecg_windows_heat(case, ev["windows"])
        out["evidence_ecg"] = ecg_print_figure(
            case.ecg, heat, heat_label="evidence", title="Evidence windows", height=560
        )
    elif sentence.modality == "echo" and ev.get("view") in case.echo and ev.get("bbox"):
        cine = case.echo[ev["view"]]
        frames = ev.get("frames") or [cine.frames.shape[0] // 2]
        i = int(frames[len(frames) // 2])
        cam = echo_cam(gradcam, ev["view"])
        frame = cine.frames[int(np.clip(i, 0, cine.frames.shape[0] - 1))]
        rgb = (
            cam_overlay(frame, resample_cam_frames(cam, cine.frames.shape[0])[i], 0.3)
            if cam is not None
            else np.repeat(frame[..., None], 3, axis=-1)
        )
        out["evidence_image"] = _bbox_image(rgb, ev["bbox"], ECHO_DISPLAY_SIDE)
    elif sentence.modality == "cxr" and case.cxr is not None and ev.get("bbox"):
        cam = gradcam.cxr if gradcam is not None and gradcam.cxr is not None else None
        base = cam_overlay(case.cxr.image, cam if cam is not None else np.zeros((8, 8)), 0.3)
        out["evidence_image"] = _bbox_image(base, ev["bbox"], 512)
    return out


# ---------------------------------------------------------------- stages


def progress_markdown(bundle: ExplanationBundle | None, running: str | None = None) -> str:
    """One line per stage: done (with seconds), running, or waiting."""
    from explain.pipeline import STAGES

    done = set(bundle.stages) if bundle is not None else set()
    parts = []
    for stage in STAGES:
        title = STAGE_TITLES.get(stage, stage)
        if stage in done:
            parts.append(f"✓ {title} {bundle.timings.get(stage, 0.0):.1f} s")
        elif stage == running:
            parts.append(f"▸ **{title}…**")
        else:
            parts.append(f"○ {title}")
    return " · ".join(parts)


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
    elif stage == "gradcam":
        out["ecg"] = ecg_panel(case, bundle.gradcam)
        out.update(echo_panels(case, bundle.gradcam, settings))
        out["cxr"] = cxr_panel(case, bundle.gradcam, settings.get("cxr_opacity", 0.5))
    elif stage == "attention":
        out["attention_modality"], out["attention_guidance"] = attention_panels(bundle)
    elif stage == "shapley":
        out["shapley"], out["interactions"] = shapley_panels(bundle)
    elif stage in ("report", "text_shap"):
        if stage == "text_shap":
            out["lab_text"] = lab_text_panel(case, bundle)
            out["lab_table"] = lab_table_panel(case, bundle)
        out["report_sentences"] = report_sentences(bundle.report)
        out.update(sentence_evidence(case, bundle, 0 if bundle.report else None))
    return out


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
        "prediction": "",
        "prediction_context": f"Case holds: {present_modalities(case)}",
        "lab_text": lab_text_panel(case, None),
        "lab_table": lab_table_panel(case, None),
        "ecg": None,
        "cxr": cxr_panel(case, None, 0.0),
        "shapley": None,
        "interactions": None,
        "attention_modality": None,
        "attention_guidance": None,
        "report_sentences": [],
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
