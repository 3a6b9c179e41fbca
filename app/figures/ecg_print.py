"""The 12-lead ECG as a clinical print: 3 x 4 leads plus a lead II rhythm strip.

Paper conventions: 25 mm/s and 10 mm/mV on a pink 1 mm / 5 mm grid, a 1 mV x 0.2 s
calibration pulse at the start of each row. The x axis is time in seconds, the y axis
millivolts (each row offset by a whole number of 5 mm boxes); ``scaleratio`` keeps a
1 mm box square. An optional attribution map (leads x samples, [0, 1]) is drawn as warm
shading behind the traces, binned to half a small box (0.02 s).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import plotly.graph_objects as go
from scipy.signal import resample_poly

from fuselens.app.figures.margins import COLORBAR_X, colorbar_margin
from fuselens.model_zoo.case import ECG

MM_PER_S = 25.0
MM_PER_MV = 10.0
MINOR_S, MAJOR_S = 0.04, 0.2
MINOR_MV, MAJOR_MV = 0.1, 0.5
SHADE_BINS_PER_S = 50  # 0.02 s: half a small box, so 2.5 s columns hold whole bins
PRINT_S = 10.0
COLUMN_S = 2.5
ROW_PITCH_MV = 4.0
SHADE_HALF_MV = 1.75
DRAW_RATE_HZ = 250.0
CAL_START_S, CAL_RISE_S, CAL_FALL_S, CAL_END_S = -0.35, -0.3, -0.1, -0.05
X_RANGE = (-0.4, PRINT_S)
GRID_LAYOUT: tuple[tuple[str, ...], ...] = (
    ("I", "aVR", "V1", "V4"),
    ("II", "aVL", "V2", "V5"),
    ("III", "aVF", "V3", "V6"),
)
RHYTHM_PREFERENCE: tuple[str, ...] = ("II", "V1", "I", "III", "aVF", "V5")
MINOR_GRID = "#f6c9d1"
MAJOR_GRID = "#e58a9b"
HEAT_COLORSCALE = [
    [0.0, "rgba(255,220,0,0)"],
    [0.25, "rgba(255,190,0,0.22)"],
    [0.6, "rgba(255,110,0,0.38)"],
    [1.0, "rgba(215,0,0,0.52)"],
]


def row_baseline(row: int) -> float:
    """Baseline (mV) of print row ``row``: 0, 1, 2 for the grid, 3 for the rhythm strip."""
    return -ROW_PITCH_MV * row


def _drawing_signal(ecg: ECG) -> tuple[np.ndarray, float]:
    """The first 10 s, baseline-centred, resampled to at most 250 Hz for drawing."""
    rate = float(ecg.sampling_rate)
    n_keep = min(ecg.signal.shape[1], int(round(PRINT_S * rate)))
    sig = ecg.signal[:, :n_keep].astype(np.float64)
    sig = sig - np.median(sig, axis=1, keepdims=True)
    if rate <= DRAW_RATE_HZ:
        return sig, rate
    ratio = Fraction(DRAW_RATE_HZ / rate).limit_denominator(1000)
    drawn = resample_poly(sig, ratio.numerator, ratio.denominator, axis=1)
    return drawn, rate * ratio.numerator / ratio.denominator


def _binned_heat(ecg: ECG, heat: np.ndarray) -> np.ndarray:
    """Heat resampled to the signal's length, cut to 10 s and averaged per 0.02 s bin.

    Returns ``(leads, bins)`` with NaN for bins past the end of the recording.
    """
    heat = np.asarray(heat, dtype=np.float64)
    n_leads, n_samples = ecg.signal.shape
    if heat.ndim != 2 or heat.shape[0] != n_leads:
        raise ValueError(f"heat must be (leads={n_leads}, samples), got {heat.shape}")
    if not np.isfinite(heat).all():
        raise ValueError("heat has NaN or infinite values")
    if heat.min() < -1e-6 or heat.max() > 1 + 1e-6:
        raise ValueError(f"heat must lie in [0, 1], got [{heat.min():.3g}, {heat.max():.3g}]")
    heat = np.clip(heat, 0.0, 1.0)
    if heat.shape[1] != n_samples:
        src = (np.arange(heat.shape[1]) + 0.5) / heat.shape[1]
        dst = (np.arange(n_samples) + 0.5) / n_samples
        heat = np.stack([np.interp(dst, src, row) for row in heat])
    rate = float(ecg.sampling_rate)
    n_boxes = int(round(PRINT_S * SHADE_BINS_PER_S))
    box = np.floor(np.arange(n_samples) * SHADE_BINS_PER_S / rate + 1e-9).astype(int)
    keep = box < n_boxes
    counts = np.bincount(box[keep], minlength=n_boxes).astype(np.float64)
    out = np.full((n_leads, n_boxes), np.nan)
    filled = counts > 0
    for i, row in enumerate(heat):
        sums = np.bincount(box[keep], weights=row[keep], minlength=n_boxes)
        out[i, filled] = sums[filled] / counts[filled]
    return out


SHADE_TICKS = ["0 none", "0.5", "1 high"]


def _shading_trace(z: np.ndarray, row: int, label: str, show_scale: bool) -> go.Heatmap:
    base = row_baseline(row)
    edges = np.round(np.arange(z.size + 1) / SHADE_BINS_PER_S, 6)
    return go.Heatmap(
        z=z[None, :],
        x=edges,
        y=[base - SHADE_HALF_MV, base + SHADE_HALF_MV],
        zmin=0.0,
        zmax=1.0,
        colorscale=HEAT_COLORSCALE,
        showscale=show_scale,
        colorbar=dict(
            title=dict(text=label, side="right"),
            tickvals=[0, 0.5, 1],
            ticktext=SHADE_TICKS,
            len=0.6,
            thickness=14,
            x=COLORBAR_X,
        ),
        hoverinfo="skip",
        name=f"{label} (row {row + 1})",
        meta={"kind": "shading", "row": row},
    )


def _lead_trace(t: np.ndarray, v: np.ndarray, lead: str, row: int, col: int | None) -> go.Scatter:
    return go.Scatter(
        x=t.astype(np.float32),
        y=(v + row_baseline(row)).astype(np.float32),
        customdata=v.astype(np.float32),
        mode="lines",
        line=dict(color="black", width=1.1),
        name=lead if col is not None else f"{lead} rhythm",
        hovertemplate=f"{lead}<br>%{{x:.3f}} s<br>%{{customdata:.2f}} mV<extra></extra>",
        showlegend=False,
        meta={"kind": "lead", "lead": lead, "row": row, "col": col},
    )


def _calibration_trace(rows: int) -> go.Scatter:
    xs: list[float | None] = []
    ys: list[float | None] = []
    for row in range(rows):
        b = row_baseline(row)
        xs += [CAL_START_S, CAL_RISE_S, CAL_RISE_S, CAL_FALL_S, CAL_FALL_S, CAL_END_S, None]
        ys += [b, b, b + 1.0, b + 1.0, b, b, None]
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line=dict(color="black", width=1.3),
        hoverinfo="skip",
        showlegend=False,
        name="calibration 1 mV",
        meta={"kind": "calibration"},
    )


def _separator_trace() -> go.Scatter:
    xs: list[float | None] = []
    ys: list[float | None] = []
    for row in range(len(GRID_LAYOUT)):
        b = row_baseline(row)
        for col in range(1, 4):
            xs += [col * COLUMN_S, col * COLUMN_S, None]
            ys += [b - 0.3, b + 0.3, None]
    return go.Scatter(
        x=xs,
        y=ys,
        mode="lines",
        line=dict(color="black", width=1.0),
        hoverinfo="skip",
        showlegend=False,
        name="lead change",
        meta={"kind": "separator"},
    )


def _label(x: float, y: float, text: str, name: str, missing: bool = False) -> dict:
    return dict(
        bgcolor="rgba(255,255,255,0.85)" if missing else None,
        x=x,
        y=y,
        text=f"<i>{text}</i>" if missing else f"<b>{text}</b>",
        name=name,
        showarrow=False,
        xanchor="left",
        yanchor="bottom",
        font=dict(size=12 if missing else 13, color="#777" if missing else "black"),
    )


def _rhythm_lead(present: list[str]) -> str | None:
    for lead in RHYTHM_PREFERENCE:
        if lead in present:
            return lead
    return present[0] if present else None


def ecg_print_figure(
    ecg: ECG,
    heat: np.ndarray | None = None,
    *,
    heat_label: str = "attribution",
    title: str | None = None,
    height: int = 820,
) -> go.Figure:
    """The standard 12-lead print of ``ecg``, with ``heat`` (leads x samples, [0, 1]) as shading.

    The width follows the container (the grid keeps its 25 mm/s : 10 mm/mV aspect by
    shrinking the plot area); ``height`` is in pixels. Traces carry ``meta`` dicts
    (``kind`` = lead, calibration, separator, shading) so callers and tests can find them;
    lead-label annotations are named ``label:<lead>`` and empty slots ``missing:<lead>``.
    """
    sig, draw_rate = _drawing_signal(ecg)
    leads = list(ecg.lead_names)
    heat_boxes = _binned_heat(ecg, heat) if heat is not None else None
    t_all = np.arange(sig.shape[1]) / draw_rate
    n_rows = len(GRID_LAYOUT) + 1
    traces: list[go.BaseTraceType] = []
    lead_traces: list[go.Scatter] = []
    notes: list[dict] = []
    bins_per_col = int(round(COLUMN_S * SHADE_BINS_PER_S))

    for row, row_leads in enumerate(GRID_LAYOUT):
        base = row_baseline(row)
        row_heat = np.full(int(round(PRINT_S * SHADE_BINS_PER_S)), np.nan)
        for col, lead in enumerate(row_leads):
            x0 = col * COLUMN_S
            if lead not in leads:
                notes.append(_label(x0 + 0.06, base + 1.2, lead, f"label:{lead}"))
                notes.append(
                    _label(x0 + 0.45, base - 0.25, "lead missing", f"missing:{lead}", True)
                )
                continue
            notes.append(_label(x0 + 0.06, base + 1.2, lead, f"label:{lead}"))
            idx = leads.index(lead)
            window = (t_all >= x0 - 1e-9) & (t_all < x0 + COLUMN_S - 1e-9)
            if window.any():
                lead_traces.append(_lead_trace(t_all[window], sig[idx, window], lead, row, col))
            if heat_boxes is not None:
                cols = slice(col * bins_per_col, (col + 1) * bins_per_col)
                row_heat[cols] = heat_boxes[idx, cols]
        if heat_boxes is not None:
            traces.append(_shading_trace(row_heat, row, heat_label, show_scale=row == 0))

    rhythm_row = n_rows - 1
    rhythm = _rhythm_lead(leads)
    base = row_baseline(rhythm_row)
    if rhythm is None:
        notes.append(_label(0.45, base - 0.25, "no leads recorded", "missing:rhythm", True))
    else:
        idx = leads.index(rhythm)
        notes.append(_label(0.06, base + 1.2, f"{rhythm} (rhythm)", f"label:rhythm:{rhythm}"))
        lead_traces.append(_lead_trace(t_all, sig[idx], rhythm, rhythm_row, None))
        if heat_boxes is not None:
            traces.append(_shading_trace(heat_boxes[idx], rhythm_row, heat_label, False))

    fig = go.Figure(traces + lead_traces + [_calibration_trace(n_rows), _separator_trace()])
    y_range = (row_baseline(rhythm_row) - 2.0, 2.5)
    grid_axis = dict(
        showticklabels=False,
        ticks="",
        zeroline=False,
        showline=True,
        linecolor=MAJOR_GRID,
        mirror=True,
        constrain="domain",
        gridcolor=MAJOR_GRID,
        gridwidth=1,
    )
    fig.update_xaxes(
        range=list(X_RANGE),
        tick0=0.0,
        dtick=MAJOR_S,
        minor=dict(dtick=MINOR_S, tick0=0.0, showgrid=True, gridcolor=MINOR_GRID, gridwidth=0.6),
        **grid_axis,
    )
    fig.update_yaxes(
        range=list(y_range),
        tick0=0.0,
        dtick=MAJOR_MV,
        minor=dict(dtick=MINOR_MV, tick0=0.0, showgrid=True, gridcolor=MINOR_GRID, gridwidth=0.6),
        scaleanchor="x",
        scaleratio=MM_PER_MV / MM_PER_S,
        **grid_axis,
    )
    duration = ecg.duration_s
    shown = min(duration, PRINT_S)
    extent = f"first {PRINT_S:g} s of {duration:.1f} s" if duration > PRINT_S else f"{shown:.1f} s"
    footer = (
        f"25 mm/s · 10 mm/mV · recorded at {ecg.sampling_rate:g} Hz, drawn at "
        f"{draw_rate:g} Hz · {extent}"
    )
    notes.append(
        dict(
            x=0.0,
            y=-0.01,
            xref="paper",
            yref="paper",
            text=footer,
            name="footer",
            showarrow=False,
            xanchor="left",
            yanchor="top",
            font=dict(size=11, color="#444"),
        )
    )
    fig.update_layout(
        title=dict(text=title or "12-lead ECG", x=0.01, font=dict(size=15)),
        annotations=notes,
        plot_bgcolor="#fffafb",
        paper_bgcolor="white",
        height=height,
        margin=dict(
            l=10, r=colorbar_margin(SHADE_TICKS, side_title=True, thickness=14), t=45, b=35
        ),
        dragmode="zoom",
    )
    return fig
