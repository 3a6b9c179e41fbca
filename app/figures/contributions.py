"""Modality contributions: Shapley value bars and the pairwise interaction matrix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go

from fuselens.app.figures.margins import COLORBAR_X, bottom_margin, colorbar_margin, label_margin

RAISES_COLOR = "#d62728"
LOWERS_COLOR = "#1f5fbf"
MODALITY_TITLES = {"labs": "Labs", "ecg": "ECG", "echo": "Echo", "cxr": "Chest X-ray"}


def modality_title(name: str) -> str:
    """Display name of a modality key (``"cxr"`` -> ``"Chest X-ray"``)."""
    return MODALITY_TITLES.get(name, name)


def shapley_bar_figure(
    values: Mapping[str, float],
    base_value: float,
    full_value: float,
    answer_label: str,
) -> go.Figure:
    """Horizontal bars of each modality's Shapley value towards ``answer_label``.

    Red bars push the output towards the answer, blue bars away from it; the largest
    magnitude is on top. ``base_value`` is the output with no modality, ``full_value`` with
    all of them (Shapley values sum to their difference).
    """
    if not values:
        raise ValueError("no modality contributions to plot")
    items = sorted(values.items(), key=lambda kv: abs(kv[1]))
    names = [modality_title(k) for k, _ in items]
    vals = np.array([float(v) for _, v in items])
    if not np.isfinite(vals).all():
        raise ValueError("contributions must be finite")
    colors = [RAISES_COLOR if v > 0 else LOWERS_COLOR for v in vals]
    span = float(np.abs(vals).max()) or 1.0
    fig = go.Figure(
        go.Bar(
            x=vals,
            y=names,
            orientation="h",
            marker=dict(color=colors),
            text=[f"{v:+.3f}" for v in vals],
            textposition="outside",
            cliponaxis=False,
            hovertemplate="%{y}: %{x:+.4f}<extra></extra>",
            name="Shapley value",
        )
    )
    total = float(vals.sum())
    fig.update_layout(
        title=dict(
            text=(
                f"What pushes the model towards “{answer_label}”"
                f"<br><sup>red raises, blue lowers · no modality {base_value:.3f} → "
                f"all modalities {full_value:.3f} (sum {total:+.3f})</sup>"
            ),
            x=0.01,
        ),
        xaxis=dict(
            title="Shapley value",
            range=[-1.35 * span, 1.35 * span],
            zeroline=True,
            zerolinecolor="#444",
            zerolinewidth=1.5,
        ),
        yaxis=dict(automargin=True),
        height=120 + 45 * len(names),
        margin=dict(l=label_margin(names), r=20, t=70, b=bottom_margin(titled=True)),
        plot_bgcolor="white",
        showlegend=False,
    )
    return fig


INTERACTION_TICKS = ["redundancy", "0", "synergy"]


def interaction_matrix_figure(matrix: np.ndarray, modalities: Sequence[str]) -> go.Figure:
    """Pairwise interaction indices, diverging around 0: red synergy, blue redundancy."""
    m = np.asarray(matrix, dtype=np.float64)
    n = len(modalities)
    if m.shape != (n, n):
        raise ValueError(f"matrix must be ({n}, {n}) for {n} modalities, got {m.shape}")
    finite = m[np.isfinite(m)]
    span = float(np.abs(finite).max()) if finite.size else 0.0
    span = span or 1.0
    names = [modality_title(x) for x in modalities]
    text = [["" if not np.isfinite(v) else f"{v:+.3f}" for v in row] for row in m]
    fig = go.Figure(
        go.Heatmap(
            z=m,
            x=names,
            y=names,
            zmid=0.0,
            zmin=-span,
            zmax=span,
            colorscale="RdBu_r",
            text=text,
            texttemplate="%{text}",
            hovertemplate="%{y} × %{x}: %{z:+.4f}<extra></extra>",
            colorbar=dict(
                title=dict(text="interaction", side="right"),
                tickvals=[-span, 0, span],
                ticktext=INTERACTION_TICKS,
                x=COLORBAR_X,
            ),
        )
    )
    fig.update_layout(
        title=dict(
            text="Modality interactions<br><sup>red: synergy (together more than apart) · "
            "blue: redundancy (overlapping evidence)</sup>",
            x=0.01,
        ),
        xaxis=dict(side="bottom", constrain="domain"),
        yaxis=dict(autorange="reversed", scaleanchor="x", constrain="domain"),
        height=160 + 70 * n,
        margin=dict(
            l=label_margin(names), r=colorbar_margin(INTERACTION_TICKS, side_title=True), t=70, b=40
        ),
        plot_bgcolor="white",
    )
    return fig
