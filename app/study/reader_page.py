"""The reader's page of one case: the case's own media with reading tools, then the panels
the reader's arm shows (from the files ``study create`` drew with the workstation's
builders, :mod:`fuselens.app.study.panels`), then the questions.

Every panel is a ``<details data-panel=...>``: the page script (``reader.js``) reports each
one opened or closed to the server, which times it. Reading tools: X-ray zoom, pan and
window/level, echo play / pause / frame step, heat-map overlays on and off with their
opacity, the ECG in the 25 mm/s, 10 mm/mV print; keys: ``+`` / ``-`` zoom, arrows pan,
``o`` overlay, space play/pause, ``,`` / ``.`` frame step, ``m`` mark mode. Every value put
into the page is escaped; the report's checks are HTML rendered without raw HTML at study
creation.
"""

from __future__ import annotations

import html
import json
from pathlib import Path
from typing import Any
from urllib.parse import quote

CAVEAT = "Demonstration model trained on synthetic data, not for clinical use."  # studies
# created before a study kept its model's caveat
OVERLAY_OPACITY = 50  # percent, as the workstation's default blend
STYLE = """<style>
.tools{margin:4px 0;font-size:90%}.tools button{margin-right:4px}
.stack{position:relative;display:inline-block}.stack video.heat{position:absolute;left:0;top:0}
#cxr-canvas{border:1px solid #999;cursor:crosshair;max-width:100%}
.echo-view{display:inline-block;margin-right:12px;vertical-align:top}
.echo-view video{cursor:crosshair}.lab-text span{padding:0 1px;border-radius:2px}
.marking #cxr-canvas,.marking video{outline:3px solid #d35400}
</style>"""


def _q(text: str) -> str:
    return quote(text, safe="")


def _num(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def _details(panel: str, title: str, body: str, element_id: str = "") -> str:
    ident = f' id="{html.escape(element_id)}"' if element_id else ""
    return (
        f'<details class="panel" open data-panel="{html.escape(panel)}"{ident}>'
        f"<summary><h3 style='display:inline'>{html.escape(title)}</h3></summary>{body}</details>"
    )


def _overlay_tools(target: str, label: str) -> str:
    return (
        f'<label><input type="checkbox" class="overlay-toggle" data-target="{target}" checked> '
        f"{html.escape(label)} overlay</label> <label>opacity <input type='range' "
        f'class="overlay-opacity" data-target="{target}" min="0" max="100" '
        f'value="{OVERLAY_OPACITY}"></label>'
    )


def labs_html(path: Path) -> str:
    labs = json.loads(path.read_text(encoding="utf-8"))
    rows = "".join(
        f"<tr><td>{html.escape(i['name'])}</td><td>{i['value']:g} {html.escape(i['unit'])}</td>"
        f"<td>{_num(i['low'])}&ndash;{_num(i['high'])}</td><td>{html.escape(i['flag'])}</td></tr>"
        for i in labs["items"]
    )
    who = []
    if labs.get("age") is not None:
        who.append(f"age {labs['age']:g}")
    if labs.get("sex"):
        who.append(f"sex {html.escape(labs['sex'])}")
    text = "".join(
        f"<p><b>{k.title()}:</b> {html.escape(labs[k])}</p>"
        for k in ("history", "medications")
        if labs.get(k, "").strip()
    )
    body = (
        f"<p>{', '.join(who)}</p><table><tr><th>Test</th><th>Value</th><th>Reference</th>"
        f"<th>Flag</th></tr>{rows}</table>{text}"
    )
    return _details("labs", "Laboratory results", body, "labs")


def lab_text_html(path: Path) -> str:
    """The lab text with each word's SHAP colour (red: towards the answer, blue: away)."""
    segments = json.loads(path.read_text(encoding="utf-8"))["segments"]
    spans = []
    for text, score in segments:
        if score is None:
            spans.append(html.escape(text))
            continue
        rgb = "192,57,43" if score > 0 else "46,111,186"
        spans.append(
            f'<span class="shap" data-score="{float(score):.3f}" style="background:rgba({rgb},'
            f'{min(1.0, abs(float(score))):.2f})">{html.escape(text)}</span>'
        )
    body = (
        '<p class="lab-text" id="lab-text" style="white-space:pre-wrap">' + "".join(spans) + "</p>"
        "<p>Red: words that moved the model towards its answer; blue: away (SHAP).</p>"
    )
    return _details("lab_text", "Why: the lab results' words (SHAP)", body, "ai-lab-text")


def _figure_div(src: str, element_id: str) -> str:
    """A plotly figure the page script draws at the height its builder gave it."""
    return f'<div id="{element_id}" class="figure" data-figure="{html.escape(src)}"></div>'


def ecg_html(base: str, heat: str | None, label: str) -> str:
    tools = f'<div class="tools">{_overlay_tools("ecg", label)}</div>' if heat else ""
    heat_attr = f' data-heat-figure="{html.escape(f"{base}/{heat}")}"' if heat else ""
    body = (
        f'{tools}<div id="ecg" class="ecg-print" style="width:1000px;height:900px" '
        f'data-figure="{html.escape(base)}/ecg.json"{heat_attr}></div>'
        "<p>Click a lead in mark mode to mark a lead and time.</p>"
    )
    return _details("ecg", "12-lead ECG (25 mm/s, 10 mm/mV)", body)


def echo_html(base: str, media: list[str], meta: dict[str, Any], method: str, label: str) -> str:
    views = []
    for name in media:
        if not (name.startswith("echo_") and name.endswith(".mp4")) or "_heat_" in name:
            continue
        view = name[5:-4]
        info = meta.get(view, {})
        heat = f"echo_{view}_heat_{method}.mp4"
        heat_video = (
            f'<video class="heat" src="{html.escape(f"{base}/{heat}")}" muted loop playsinline '
            f'style="opacity:{OVERLAY_OPACITY / 100}"></video>'
            if heat in media
            else ""
        )
        tools = _overlay_tools(f"echo-{view}", label) if heat_video else ""
        views.append(
            f'<div class="echo-view" tabindex="0" data-view="{html.escape(view)}" '
            f'data-fps="{float(info.get("fps", 30.0)):g}" '
            f'data-frames="{int(info.get("frames", 0))}">'
            f'<div class="stack"><video class="plain" src="{html.escape(f"{base}/{name}")}" '
            f"muted loop playsinline autoplay></video>{heat_video}</div>"
            '<div class="tools"><button type="button" class="play">Play / pause</button>'
            '<button type="button" class="step" data-step="-1">&#9664; frame</button>'
            '<button type="button" class="step" data-step="1">frame &#9654;</button>'
            f'<span class="frame-no"></span> {tools}</div><b>{html.escape(view)}</b></div>'
        )
    return _details("echo", "Echocardiogram", "".join(views)) if views else ""


def cxr_html(base: str, heat: str | None, label: str) -> str:
    heat_attr = f' data-heat="{html.escape(f"{base}/{heat}")}"' if heat else ""
    tools = (
        '<div class="tools">Window <input type="range" class="ww" min="1" max="255" '
        'value="255"> Level <input type="range" class="wl" min="0" max="255" value="128"> '
        '<button type="button" class="zoom" data-zoom="1.25">Zoom +</button>'
        '<button type="button" class="zoom" data-zoom="0.8">Zoom &minus;</button>'
        '<button type="button" class="reset">Reset</button> '
        + (_overlay_tools("cxr", label) if heat else "")
        + "</div>"
    )
    body = (
        f'{tools}<canvas id="cxr-canvas" tabindex="0" width="600" height="600" '
        f'data-src="{html.escape(base)}/cxr.png"{heat_attr}></canvas>'
        "<p>Drag to pan, wheel or +/&minus; to zoom.</p>"
    )
    return _details("cxr", "Chest X-ray", body)


def report_html(path: Path, caveat: str) -> str:
    report = json.loads(path.read_text(encoding="utf-8"))
    items = "".join(f"<li>{html.escape(s['text'])}</li>" for s in report["sentences"])
    body = (
        f'<ol id="report-text">{items}</ol><div class="checks">{report["checks_html"]}</div>'
        f'<p class="caveat">{html.escape(caveat)}</p>'
    )
    return _details("report", "The model's report and its checks", body, "ai-report")


def prediction_html(p: dict[str, Any], caveat: str) -> str:
    body = (
        f"<p>The model answers <b>{'yes' if p['answer'] else 'no'}</b> (probability "
        f"{p['probability']:.2f}).</p><p class='caveat'>{html.escape(caveat)}</p>"
    )
    return _details("prediction", "AI answer", body, "ai-prediction")


def case_html(view: dict[str, Any], media_root: Path, method_label: str) -> str:
    """The whole page body of one assignment (``view`` from the server: the case, the
    arm's panels and media files, the questions, the model's caveat)."""
    key = view["case"]["key"]
    caveat = view["caveat"]
    base = f"/media/{_q(key)}"
    # media holds only what the reader's arm shows (the server filters it)
    media, panels, method = view["media"], view["arm"]["panels"], view["arm"]["method"]
    folder = (media_root or Path()) / key
    meta = json.loads((folder / "echo.json").read_text("utf-8")) if "echo.json" in media else {}
    parts = [
        STYLE,
        f"<h1>Case {view['position']} of {view['total']}</h1>",
        f'<p id="modalities">Modalities: '
        f"{html.escape(', '.join(view['case']['modalities']) or 'none')}</p>",
        '<p><button type="button" id="mark-mode">Mark what convinced you (m)</button> '
        '<span id="mark-count">0 marks</span> <button type="button" id="clear-marks">'
        "Clear marks</button></p>"
        if view["questions"].get("marks")
        else "",
    ]
    if "labs.json" in media:
        parts.append(labs_html(folder / "labs.json"))
    if "lab_text.json" in media:
        parts.append(lab_text_html(folder / "lab_text.json"))
    if "ecg.json" in media:
        ecg_heat = f"ecg_heat_{method}.json"
        parts.append(ecg_html(base, ecg_heat if ecg_heat in media else None, method_label))
    parts.append(echo_html(base, media, meta, method, method_label))
    if "cxr.png" in media:
        cxr_heat = f"cxr_heat_{method}.png"
        parts.append(cxr_html(base, cxr_heat if cxr_heat in media else None, method_label))
    if "prediction" in view:
        parts.append(prediction_html(view["prediction"], caveat))
    if "modality_contributions" in panels and (
        "contributions.json" in media or "explanation" in view
    ):
        if "contributions.json" in media:
            figs = _figure_div(f"{base}/contributions.json", "contributions")
        else:
            figs = shapley_table(view["explanation"], caveat)
        if "interactions.json" in media:
            figs += _figure_div(f"{base}/interactions.json", "interactions")
        title = "Why: contribution of each modality (Shapley values)"
        parts.append(_details("modality_contributions", title, figs, "ai-explanation"))
    figs = "".join(
        _figure_div(f"{base}/attention_{i}.json", f"attention-{i}")
        for i in (0, 1)
        if f"attention_{i}.json" in media
    )
    if figs:
        parts.append(
            _details("attention", "The model's cross-modal attention", figs, "ai-attention")
        )
    if "report.json" in media:
        parts.append(report_html(folder / "report.json", caveat))
    parts.append(form_html(view))
    parts.append(
        '<script src="/static/plotly.min.js"></script><script src="/static/reader.js"></script>'
    )
    return "".join(parts)


def shapley_table(expl: dict[str, Any], caveat: str) -> str:
    """The stored modality Shapley values as a table (a case given without drawn panels)."""
    values = expl["modality_shapley"]
    rows = "".join(
        f"<tr><td>{html.escape(m)}</td><td>{v:+.3f}</td>"
        f"<td>{'towards' if v > 0 else 'away from'} yes</td></tr>"
        for m, v in sorted(values.items(), key=lambda kv: -abs(kv[1]))
    )
    return (
        f"<p>Shapley values on the {html.escape(expl['scale'])}: with no modality "
        f"{expl['base_value']:.2f}, with all {expl['full_value']:.2f}.</p><table>{rows}</table>"
        f"<p class='caveat'>{html.escape(caveat)}</p>"
    )


def form_html(view: dict[str, Any]) -> str:
    q = view["questions"]
    useful = "".join(
        f"<p><label>Usefulness of {html.escape(text)} (1 = useless, 5 = very useful) "
        f'<select name="usefulness_{html.escape(p)}" required><option value=""></option>'
        + "".join(f'<option value="{i}">{i}</option>' for i in range(1, 6))
        + "</select></label></p>"
        for p, text in q["usefulness"].items()
    )
    free = (
        '<p><label>Comments<br><textarea name="free_text" rows="3" cols="60"></textarea>'
        "</label></p>"
        if q["free_text"]
        else ""
    )
    return f"""<form method="post" action="/read" class="panel" id="answer">
<input type="hidden" name="assignment_id" value="{int(view["assignment_id"])}">
<input type="hidden" name="csrf_token" value="{html.escape(view["csrf_token"])}">
<input type="hidden" name="marks" id="marks" value="[]">
<p><b>{html.escape(q["diagnosis"])}</b>
<label><input type="radio" name="diagnosis" value="1" required> Yes</label>
<label><input type="radio" name="diagnosis" value="0"> No</label></p>
<p><label>{html.escape(q["confidence"])}
<input type="number" name="confidence" min="0" max="100" step="1" required></label></p>
{useful}{free}<p><button type="submit">Submit answer</button></p></form>"""
