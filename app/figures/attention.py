"""Cross-modal attention matrices as annotated heat maps."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from fuselens.app.figures.margins import (
    COLORBAR_X,
    bottom_margin,
    colorbar_margin,
    label_margin,
    text_px,
)

ANNOTATE_MAX_CELLS = 400
CROWDED_COLUMNS = 12  # more columns than this may have their labels slanted at 30°
# Room for the ticks plotly writes on a 0-1 weight scale ("0.05", "0.2") and the "weight"
# title above the bar (5 characters and 6 px of tick marks fell 1 px short on the demo maps).
WEIGHT_TICKS = ("0.0025",)


def attention_heatmap_figure(
    matrix: np.ndarray,
    row_labels: Sequence[str],
    col_labels: Sequence[str],
    title: str,
    annotate: bool | None = None,
) -> go.Figure:
    """Attention weights (rows attend to columns) with each value written in its cell.

    ``annotate=None`` writes values when the matrix has at most 400 cells.
    """
    m = np.asarray(matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape != (len(row_labels), len(col_labels)):
        raise ValueError(
            f"matrix {m.shape} does not match {len(row_labels)} rows x {len(col_labels)} columns"
        )
    if not np.isfinite(m).all():
        raise ValueError("attention weights must be finite")
    if annotate is None:
        annotate = m.size <= ANNOTATE_MAX_CELLS
    text = [[f"{v:.2f}" for v in row] for row in m] if annotate else None
    zmax = max(float(m.max()), 1e-12)
    fig = go.Figure(
        go.Heatmap(
            z=m,
            x=list(col_labels),
            y=list(row_labels),
            zmin=min(0.0, float(m.min())),
            zmax=zmax,
            colorscale="Viridis",
            text=text,
            texttemplate="%{text}" if annotate else None,
            hovertemplate="%{y} → %{x}: %{z:.4f}<extra></extra>",
            colorbar=dict(title=dict(text="weight"), x=COLORBAR_X),
        )
    )
    slant = math.ceil(0.7 * text_px(col_labels)) if len(col_labels) > CROWDED_COLUMNS else 0
    fig.update_layout(
        title=dict(text=title, x=0.01),
        xaxis=dict(title="attended to (key)", side="bottom"),
        yaxis=dict(title="attending (query)", autorange="reversed"),
        height=180 + 40 * min(len(row_labels), 16),
        margin=dict(
            l=label_margin(row_labels, titled=True),
            r=colorbar_margin(WEIGHT_TICKS),
            t=50,
            b=bottom_margin(titled=True) + slant,
        ),
        plot_bgcolor="white",
    )
    return fig
