"""Plotly figures of a review run: the confusion matrix and the calibration curve."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go

from fuselens.app.figures.margins import LEGEND_ROW_PX, bottom_margin
from fuselens.app.review.metrics import Calibration

CELL_NAMES = (("TN", "FP"), ("FN", "TP"))


def _confusion_heatmap(
    counts: np.ndarray, answers: list[str], text: list[list[str]], size: int, task_label: str
) -> go.Figure:
    """Annotated heat map of ``counts``: rows the truth, columns the predicted answer."""
    fig = go.Figure(
        go.Heatmap(
            z=counts,
            x=[f"predicted {a}" for a in answers],
            y=[f"truth {a}" for a in answers],
            text=text,
            texttemplate="%{text}",
            textfont={"size": size},
            colorscale="Blues",
            showscale=False,
            hovertemplate="%{y}, %{x}: %{z}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"{task_label}: confusion matrix (n = {int(counts.sum())})",
        yaxis={"autorange": "reversed"},
        height=340,
        margin={"l": 80, "r": 20, "t": 50, "b": 40},
    )
    return fig


def confusion_figure(counts: np.ndarray, task_label: str = "Heart failure") -> go.Figure:
    """Annotated 2 x 2 heat map: rows the truth, columns the prediction."""
    counts = np.asarray(counts, dtype=int)
    if counts.shape != (2, 2):
        raise ValueError(f"a confusion matrix is 2 x 2, got {counts.shape}")
    text = [[f"{CELL_NAMES[i][j]}<br>{counts[i, j]}" for j in range(2)] for i in range(2)]
    return _confusion_heatmap(counts, ["no", "yes"], text, 18, task_label)


def answer_confusion_figure(
    counts: np.ndarray, answers: list[str], task_label: str = "Task"
) -> go.Figure:
    """Annotated ``n x n`` heat map of a task with several answers: rows the truth, columns
    the predicted (top) answer."""
    counts = np.asarray(counts, dtype=int)
    n = len(answers)
    if counts.shape != (n, n):
        raise ValueError(f"{n} answers need an {n} x {n} matrix, got {counts.shape}")
    return _confusion_heatmap(counts, answers, counts.astype(str).tolist(), 16, task_label)


def calibration_figure(
    cal: Calibration,
    y_title: str = "fraction with heart failure",
    x_title: str = "mean predicted probability",
) -> go.Figure:
    """Reliability diagram: observed fraction against mean predicted probability per bin."""
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[0, 1],
            y=[0, 1],
            mode="lines",
            line={"dash": "dash", "color": "#888"},
            name="perfectly calibrated",
            hoverinfo="skip",
        )
    )
    fig.add_trace(
        go.Scatter(
            x=cal.mean_predicted,
            y=cal.fraction_positive,
            customdata=cal.counts,
            mode="lines+markers",
            marker={"size": 6 + 14 * np.sqrt(cal.counts / cal.counts.max())},
            name="model",
            hovertemplate="mean P %{x:.2f}: %{y:.2f} positive (%{customdata} cases)<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"Calibration ({cal.n_bins} bins) · Brier score {cal.brier:.3f}",
        xaxis={"title": x_title, "range": [0, 1]},
        yaxis={"title": y_title, "range": [-0.02, 1.02]},
        height=340,
        margin={"l": 60, "r": 20, "t": 50, "b": bottom_margin(titled=True) + LEGEND_ROW_PX},
        legend={"orientation": "h", "yref": "container", "y": 0, "yanchor": "bottom"},
    )
    return fig
