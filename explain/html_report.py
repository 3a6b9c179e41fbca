"""A self-contained HTML report of one explanation bundle: opens offline, no external files.

Charts are inline SVG or HTML tables; ECG, echo and CXR overlays are PNGs embedded as base64
``data:`` URIs (overlays blended with pytorch-grad-cam's ``show_cam_on_image``). No scripts.
"""

from __future__ import annotations

import base64
import html
import io
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402
from pytorch_grad_cam.utils.image import show_cam_on_image  # noqa: E402

from fuselens.explain.bundle import ExplanationBundle  # noqa: E402
from fuselens.explain.methods import REGISTRY  # noqa: E402
from fuselens.model_zoo.case import PatientCase  # noqa: E402

TITLES = {"labs": "Labs", "ecg": "ECG", "echo": "Echo", "cxr": "Chest X-ray"}
RED, BLUE = (214, 39, 40), (31, 95, 191)
CSS = """
body{font-family:system-ui,sans-serif;margin:24px;max-width:1100px;color:#222}
h1{font-size:1.5em} h2{font-size:1.2em;border-bottom:1px solid #ccc;padding-bottom:4px}
.caveat{background:#fff3cd;border:1px solid #e0c060;padding:8px 12px;font-weight:600}
table{border-collapse:collapse;margin:8px 0} td,th{border:1px solid #ddd;padding:3px 8px;
font-size:.9em;text-align:right} th{background:#f4f4f4} td.l,th.l{text-align:left}
.tok{padding:1px 0;border-radius:2px} .text{line-height:1.9;font-family:monospace}
.badge{display:inline-block;padding:0 6px;border-radius:8px;background:#e8eef8;font-size:.85em}
img{max-width:100%;border:1px solid #ddd} .muted{color:#777;font-size:.85em}
"""


def png_data_uri(rgb: np.ndarray) -> str:
    """An ``(H, W, 3)`` uint8 image as a ``data:image/png;base64,...`` URI."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb, dtype=np.uint8)).save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def _img(rgb: np.ndarray, alt: str) -> str:
    return f'<img src="{png_data_uri(rgb)}" alt="{html.escape(alt)}">'


def _fig_rgb(fig) -> np.ndarray:
    fig.canvas.draw()
    rgb = np.asarray(fig.canvas.buffer_rgba())[..., :3].copy()
    plt.close(fig)
    return rgb


def signed_color(value: float, scale: float) -> str:
    """Red for positive, blue for negative, transparent at zero (CSS rgba)."""
    a = min(1.0, abs(value) / scale) * 0.8 if scale > 0 else 0.0
    r, g, b = RED if value > 0 else BLUE
    return f"rgba({r},{g},{b},{a:.2f})"


def _matrix_table(m: np.ndarray, rows: list[str], cols: list[str]) -> str:
    scale = float(np.abs(m).max()) or 1.0
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    body = ""
    for name, row in zip(rows, m, strict=True):
        cells = "".join(
            f'<td style="background:{signed_color(float(v), scale)}">{v:+.3f}</td>' for v in row
        )
        body += f'<tr><th class="l">{html.escape(name)}</th>{cells}</tr>'
    return f"<table><tr><th></th>{head}</tr>{body}</table>"


def bar_svg(values: dict[str, float], width: int = 520, row: int = 26) -> str:
    """Horizontal signed bars as inline SVG."""
    names = list(values)
    scale = max((abs(v) for v in values.values()), default=1.0) or 1.0
    mid, half = width // 2 + 60, width // 2 - 70
    parts = []
    for i, name in enumerate(names):
        v = float(values[name])
        y, w = i * row + 4, abs(v) / scale * half
        x = mid if v >= 0 else mid - w
        color = "#d62728" if v > 0 else "#1f5fbf"
        parts.append(
            f'<text x="4" y="{y + 15}" font-size="13">{html.escape(name)}</text>'
            f'<rect x="{x:.1f}" y="{y}" width="{w:.1f}" height="{row - 8}" fill="{color}"/>'
            f'<text x="{mid + (half + 4 if v >= 0 else 4)}" y="{y + 15}" font-size="12">'
            f"{v:+.3f}</text>"
        )
    h = len(names) * row + 8
    axis = f'<line x1="{mid}" y1="0" x2="{mid}" y2="{h}" stroke="#888"/>'
    return f'<svg width="{width + 120}" height="{h}" role="img">{axis}{"".join(parts)}</svg>'


def ecg_png(case: PatientCase, cam: np.ndarray) -> np.ndarray:
    """The ECG leads stacked, each with its Grad-CAM++ map as shading behind the trace."""
    ecg = case.ecg
    n = len(ecg.lead_names)
    t = np.arange(ecg.signal.shape[1]) / ecg.sampling_rate
    fig, axes = plt.subplots(n, 1, figsize=(12, 0.75 * n), sharex=True, dpi=80)
    rows = zip(np.atleast_1d(axes), ecg.lead_names, ecg.signal, cam, strict=True)
    for ax, name, sig, heat in rows:
        lo, hi = float(sig.min()) - 0.2, float(sig.max()) + 0.2
        ax.imshow(
            heat[None],
            aspect="auto",
            cmap="Reds",
            vmin=0,
            vmax=1,
            alpha=0.7,
            extent=(t[0], t[-1], lo, hi),
        )
        ax.plot(t, sig, color="black", linewidth=0.6)
        ax.set_ylim(lo, hi)
        ax.set_ylabel(name, rotation=0, labelpad=18, fontsize=9)
        ax.set_yticks([])
    np.atleast_1d(axes)[-1].set_xlabel("seconds")
    fig.tight_layout(pad=0.3)
    return _fig_rgb(fig)


def overlay(gray: np.ndarray, cam: np.ndarray) -> np.ndarray:
    """A grey image (uint8 or [0, 1]) with the map blended on top (JET), uint8 RGB."""
    img = gray.astype(np.float32) / (255.0 if gray.dtype == np.uint8 else 1.0)
    rgb = np.repeat(img[..., None], 3, axis=2)
    return show_cam_on_image(rgb, cam.astype(np.float32), use_rgb=True, image_weight=0.6)


def echo_strip(frames: np.ndarray, cam: np.ndarray, k: int = 4) -> np.ndarray:
    """The ``k`` frames with the most map mass, side by side, with their overlays."""
    per_frame = cam.reshape(cam.shape[0], -1).mean(1)
    idx = sorted(np.argsort(-per_frame)[:k].tolist())
    return np.concatenate([overlay(frames[i], cam[i]) for i in idx], axis=1)


def _downsize(rgb: np.ndarray, max_side: int = 640) -> np.ndarray:
    h, w = rgb.shape[:2]
    if max(h, w) <= max_side:
        return rgb
    s = max_side / max(h, w)
    return np.asarray(Image.fromarray(rgb).resize((int(w * s), int(h * s)), Image.BILINEAR))


def _text_section(bundle: ExplanationBundle) -> str:
    ta = bundle.text
    scale = float(np.abs(ta.token_values).max()) or 1.0
    out, cursor = [], 0
    for (a, b), v in zip(ta.token_spans.tolist(), ta.token_values.tolist(), strict=True):
        out.append(html.escape(ta.text[cursor:a]).replace("\n", "<br>"))
        out.append(
            f'<span class="tok" style="background:{signed_color(v, scale)}" '
            f'title="{v:+.4f}">{html.escape(ta.text[a:b])}</span>'
        )
        cursor = b
    out.append(html.escape(ta.text[cursor:]).replace("\n", "<br>"))
    items = dict(zip(ta.items, ta.item_values.tolist(), strict=True))
    return (
        f'<div class="text">{"".join(out)}</div><h3>Per lab line</h3>{bar_svg(items)}'
        f'<p class="muted">Partition SHAP, {ta.evals} evaluations; base {ta.base_value:+.3f}, '
        f"full {ta.full_value:+.3f} (log-odds).</p>"
    )


def _report_section(bundle: ExplanationBundle) -> str:
    rows = ""
    for s in bundle.report.sentences:
        ev = html.escape(_evidence_text(s.modality, s.evidence))
        badge = TITLES.get(s.modality, "—") if s.modality else "—"
        rows += (
            f'<tr><td class="l">{html.escape(s.text)}</td><td class="l"><span class="badge">'
            f'{badge}</span> <span class="muted">({s.basis})</span></td>'
            f'<td class="l">{ev}</td></tr>'
        )
    return (
        f'<table><tr><th class="l">sentence</th><th class="l">modality</th>'
        f'<th class="l">evidence</th></tr>{rows}</table>'
    )


def _evidence_text(modality: str | None, ev: dict) -> str:
    if not ev:
        return ""
    if modality == "labs":
        return ", ".join(f"{i['name']} {i['value']} {i['unit']}".strip() for i in ev["items"])
    if modality == "ecg":
        leads = ", ".join(x["lead"] for x in ev["leads"])
        wins = "; ".join(
            f"{w['lead']} {w['start_s']:.2f}-{w['end_s']:.2f} s" for w in ev["windows"][:4]
        )
        return f"leads {leads}; {wins}"
    if modality == "echo":
        return f"{ev['view']} frames {', '.join(map(str, ev['frames']))}, region {ev['bbox']}"
    if modality == "cxr":
        return f"{ev['region']}, box {ev['bbox']}"
    return ""


def render_html(bundle: ExplanationBundle, case: PatientCase) -> str:
    """The whole report as one HTML string (``case`` supplies the signals and images)."""
    esc = html.escape
    parts = [
        f"<h1>FuseLens explanation — case {esc(bundle.case_id)}</h1>",
        f'<p class="caveat">{esc(bundle.caveat)}</p>',
        f"<p>Model <b>{esc(bundle.model_name)}</b> on {esc(bundle.device)}; modalities used: "
        f"{esc(', '.join(TITLES[m] for m in bundle.modalities))}.</p>",
        f"<h2>Prediction</h2><p><b>{esc(bundle.task)}</b> = <b>{esc(bundle.target)}</b>: "
        f"probability {bundle.probability:.1%}</p>",
    ]
    rows = "".join(
        f'<tr><td class="l">{esc(t)}</td><td class="l">{esc(p["answer"])}</td>'
        f"<td>{p['probability']:.3f}</td></tr>"
        for t, p in bundle.prediction.items()
    )
    parts.append(
        f'<table><tr><th class="l">task</th><th class="l">answer</th><th>P(yes)</th>'
        f"</tr>{rows}</table>"
    )
    if bundle.shapley is not None:
        sh = bundle.shapley
        names = [TITLES[m] for m in sh.modalities]
        parts += [
            "<h2>Modality contributions (exact Shapley values, log-odds)</h2>",
            bar_svg({TITLES[m]: v for m, v in sh.values.items()}),
            f'<p class="muted">f(all) = {sh.full_value:+.3f}; {esc(sh.baseline)}: '
            f"{sh.base_value:+.3f}.</p><h3>Pairwise interactions</h3>",
            _matrix_table(sh.interactions, names, names),
        ]
    if bundle.attention is not None:
        at = bundle.attention
        parts.append("<h2>Attention</h2>")
        for title, m, rows, cols in zip(at.titles, at.matrices, at.rows, at.columns, strict=True):
            if m.size <= 64:
                rows = [TITLES.get(r, r) for r in rows]
                cols = [TITLES.get(c, c) for c in cols]
                parts += [f"<h3>{esc(title)}</h3>", _matrix_table(m, rows, cols)]
        if at.block_shares:
            parts += ["<h3>Share of the task's attention per block</h3>", bar_svg(at.block_shares)]
    if bundle.unavailable:
        items = "".join(f"<li>{esc(k)}: {esc(v)}</li>" for k, v in bundle.unavailable.items())
        parts.append(f"<h2>Not available for this model</h2><ul>{items}</ul>")
    for cams in bundle.maps.values():
        label = REGISTRY[cams.method].label if cams.method in REGISTRY else cams.method
        parts.append(f"<h2>{esc(label)}</h2>")
        if cams.ecg is not None and case.ecg is not None:
            parts.append("<h3>ECG (lead × time)</h3>" + _img(ecg_png(case, cams.ecg), "ECG"))
        for view, cam in cams.echo.items():
            strip = echo_strip(case.echo[view].frames, cam)
            parts.append(f"<h3>Echo {esc(view)}</h3>" + _img(_downsize(strip, 900), view))
        if cams.cxr is not None and case.cxr is not None:
            plain = np.repeat((case.cxr.image[..., None] * 255).astype(np.uint8), 3, axis=2)
            pair = np.concatenate([plain, overlay(case.cxr.image, cams.cxr)], axis=1)
            parts.append("<h3>Chest X-ray</h3>" + _img(_downsize(pair, 900), "CXR"))
    if bundle.text is not None:
        parts.append("<h2>Lab text (SHAP)</h2>" + _text_section(bundle))
    if bundle.report is not None:
        parts.append("<h2>Generated report, grounded</h2>" + _report_section(bundle))
    timings = "".join(
        f'<tr><td class="l">{esc(k)}</td><td>{v:.3f}</td></tr>' for k, v in bundle.timings.items()
    )
    parts.append(f"<h2>Timings (s)</h2><table>{timings}</table>")
    parts.append(f'<p class="caveat">{esc(bundle.caveat)}</p>')
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>FuseLens — {esc(bundle.case_id)}</title><style>{CSS}</style></head>"
        f"<body>{''.join(parts)}</body></html>"
    )


def write_html(bundle: ExplanationBundle, case: PatientCase, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render_html(bundle, case), encoding="utf-8")
    return path
