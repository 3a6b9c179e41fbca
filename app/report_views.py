"""The generated report: its sentences as choices and, for the chosen one, its evidence.

Each grounded sentence points at one modality; its evidence is drawn where it lives: ECG
windows shaded on full 10 s strips of the evidence leads, the echo region outlined on the
evidence frame, the CXR region outlined on the radiograph, lab items as a table.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fuselens.app.figures.contributions import modality_title
from fuselens.app.figures.ecg_print import MAJOR_GRID, MINOR_GRID, PRINT_S
from fuselens.app.figures.margins import bottom_margin, label_margin
from fuselens.app.figures.overlays import cam_overlay, resample_cam_frames
from fuselens.app.figures.text_highlight import Segment
from fuselens.app.image_views import ECHO_DISPLAY_SIDE, bbox_image, echo_cam
from fuselens.explain.bundle import ExplanationBundle, GroundedReport, GroundedSentence
from fuselens.explain.report_facts import QUANTITY_LABELS
from fuselens.model_zoo.case import ECG, PatientCase
from fuselens.model_zoo.case import format_lab_value as fmt_value

SELECTED = "selected sentence"
EVIDENCE_OPACITY = 0.3
CXR_EVIDENCE_SIDE = 512
MAX_EVIDENCE_LEADS = 4
DRAW_RATE_HZ = 250.0
MV_TICKS = ("-0.25",)  # the longest millivolt tick of an evidence lead
WINDOW_FILL = "rgba(255, 0, 160, 0.22)"


def report_sentences(report: GroundedReport | None) -> list[str]:
    """The generated report's sentences, numbered, as choices."""
    if report is None:
        return []
    return [f"{i + 1}. {s.text}" for i, s in enumerate(report.sentences)]


def report_checks_markdown(report: GroundedReport | None) -> str:
    """Where each stated number comes from, and every statement the checks withheld or the
    report left out against the model's own answers."""
    if report is None:
        return ""
    lines = []
    for n in report.numbers:
        unit = f" {n['unit']}" if n.get("unit") else ""
        origin = "copied from the case's labs" if n["source"] == "input" else n["source"]
        name = QUANTITY_LABELS.get(n["quantity"], n["quantity"])
        shown = n.get("text") or f"{fmt_value(float(n['value']))}{unit}"
        lines.append(f"- {name} {shown}: {origin}")
    out = "**Numbers in the report**\n" + "\n".join(lines) if lines else ""
    checks = [c for c in report.checks if c["kind"] == "withheld"]
    added = [c for c in report.checks if c["kind"] == "added"]
    if checks:
        out += "\n\n**Withheld from the report** (false of the case or against the model)\n"
        out += "\n".join(f'- ⚠️ "{c["text"]}": {c["why"]}' for c in checks)
    if added:
        out += "\n\n**Added from the model's finding heads** (the decoder left them out)\n"
        out += "\n".join(f'- "{c["text"]}": {c["why"]}' for c in added)
    split = [c for c in report.checks if c["kind"] == "disagreement"]
    if split:
        out += "\n\n**The model disagrees with itself or with the case's values**\n"
        out += "\n".join(f"- ⚠️ {c['why']}" for c in split)
    if not report.checks:
        out += "\n\nEvery finding the report states agrees with the model's own answers."
    return out.strip()


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


def ecg_evidence_figure(ecg: ECG, windows: Sequence[dict[str, Any]]) -> go.Figure | None:
    """The evidence leads as full 10 s strips (mV) with their windows shaded."""
    leads = [w["lead"] for w in windows if w["lead"] in ecg.lead_names]
    leads = list(dict.fromkeys(leads))[:MAX_EVIDENCE_LEADS]
    if not leads:
        return None
    step = max(1, int(round(ecg.sampling_rate / DRAW_RATE_HZ)))
    n = min(ecg.signal.shape[1], int(PRINT_S * ecg.sampling_rate))
    t = np.arange(0, n, step) / ecg.sampling_rate
    fig = make_subplots(rows=len(leads), cols=1, shared_xaxes=True, vertical_spacing=0.04)
    shapes: list[dict[str, Any]] = []  # one layout update: add_vrect per window costs ~20 ms
    for row, lead in enumerate(leads, start=1):
        v = ecg.lead(lead)[:n:step]
        fig.add_trace(
            go.Scatter(
                x=t,
                y=v - float(np.median(v)),
                mode="lines",
                line=dict(color="black", width=1),
                name=lead,
                meta={"kind": "lead", "lead": lead},
                hovertemplate=f"{lead} %{{x:.2f}} s: %{{y:.2f}} mV<extra></extra>",
            ),
            row=row,
            col=1,
        )
        axis = "" if row == 1 else str(row)
        shapes += [
            dict(type="rect", xref=f"x{axis}", yref=f"y{axis} domain", y0=0, y1=1,
                 x0=float(w["start_s"]), x1=float(w["end_s"]), fillcolor=WINDOW_FILL,
                 line_width=0)
            for w in windows
            if w["lead"] == lead
        ]  # fmt: skip
        fig.update_yaxes(title_text=lead, row=row, col=1, gridcolor=MINOR_GRID)
    fig.update_xaxes(range=[0, PRINT_S], dtick=0.2, gridcolor=MINOR_GRID, showticklabels=False)
    fig.update_xaxes(showticklabels=True, dtick=1.0, title_text="s", row=len(leads), col=1)
    fig.update_layout(
        title=dict(text="Evidence windows (shaded) on the evidence leads", x=0.01),
        height=90 + 120 * len(leads),
        margin=dict(
            l=label_margin(MV_TICKS, titled=True), r=20, t=45, b=bottom_margin(titled=True)
        ),
        plot_bgcolor="#fffafb",
        showlegend=False,
        shapes=shapes,
    )
    fig.update_xaxes(linecolor=MAJOR_GRID, mirror=True, showline=True)
    return fig


def _item_value(item: dict[str, Any]) -> str:
    """A lab evidence item's value with its unit; text lines (history) have none."""
    if item.get("value") is None:
        return "(text)"
    return f"{fmt_value(float(item['value']))} {item.get('unit', '')}".strip()


def evidence_markdown(sentence: GroundedSentence) -> str:
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
        rows = ["| lab line | value | contribution |", "| --- | --- | ---: |"]
        for item in ev["items"]:
            rows.append(
                f"| {item['name']} | {_item_value(item)} | {float(item['attribution']):+.3f} |"
            )
        paragraphs.append("\n".join(rows))
        source = f"Contributions from {ev.get('source', 'attribution')} (log-odds)."
        if ev.get("tokens"):
            words = ", ".join(
                f"“{t['token']}” {float(t['attribution']):+.3f}" for t in ev["tokens"]
            )
            source += f" Top word pieces: {words}."
        paragraphs.append(source)
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


def _echo_evidence_image(case: PatientCase, bundle: ExplanationBundle, ev: dict) -> np.ndarray:
    cine = case.echo[ev["view"]]
    n = cine.frames.shape[0]
    frames = ev.get("frames") or [n // 2]
    i = int(np.clip(int(frames[len(frames) // 2]), 0, n - 1))
    cam = echo_cam(bundle.shown_maps(), ev["view"])
    frame = cine.frames[i]
    if cam is None:
        rgb = np.repeat(frame[..., None], 3, axis=-1)
    else:
        rgb = cam_overlay(frame, resample_cam_frames(cam, n)[i], EVIDENCE_OPACITY)
    return bbox_image(rgb, ev["bbox"], ECHO_DISPLAY_SIDE)


def _cxr_evidence_image(case: PatientCase, bundle: ExplanationBundle, ev: dict) -> np.ndarray:
    gradcam = bundle.shown_maps()
    cam = gradcam.cxr if gradcam is not None and gradcam.cxr is not None else None
    if cam is None:
        rgb = np.repeat(np.round(case.cxr.image * 255).astype(np.uint8)[..., None], 3, axis=-1)
    else:
        rgb = cam_overlay(case.cxr.image, cam, EVIDENCE_OPACITY)
    return bbox_image(rgb, ev["bbox"], CXR_EVIDENCE_SIDE)


def sentence_evidence(
    case: PatientCase, bundle: ExplanationBundle, index: int | None
) -> dict[str, Any]:
    """What choosing sentence ``index`` shows: the report with it marked, its evidence in
    words, and (ECG, echo, CXR) the evidence drawn on the signal or image."""
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
    out["evidence_md"] = evidence_markdown(sentence)
    ev = sentence.evidence or {}
    if sentence.modality == "ecg" and case.ecg is not None and ev.get("windows"):
        out["evidence_ecg"] = ecg_evidence_figure(case.ecg, ev["windows"])
    elif sentence.modality == "echo" and ev.get("view") in case.echo and ev.get("bbox"):
        out["evidence_image"] = _echo_evidence_image(case, bundle, ev)
    elif sentence.modality == "cxr" and case.cxr is not None and ev.get("bbox"):
        out["evidence_image"] = _cxr_evidence_image(case, bundle, ev)
    return out
