"""Plotly figures of a run's explanation patterns: mean maps per outcome and per SpRAy
cluster, the clusters' spectral embedding, and modality Shapley values by outcome."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from fuselens.app.figures.margins import (
    COLORBAR_X,
    LEGEND_X,
    bottom_margin,
    colorbar_margin,
    label_margin,
    legend_margin,
)
from fuselens.app.review.patterns import CohortPatterns, ModalityPatterns
from fuselens.explain.cohort_maps import ECG_BINS
from fuselens.model_zoo.case import STANDARD_LEADS

OUTCOME_COLOURS = {
    "TP": "#1b7837", "FP": "#d6604d", "TN": "#4393c3", "FN": "#b2182b",
    "correct": "#1b7837", "wrong": "#b2182b",
}  # fmt: skip
CLUSTER_COLOURS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b",
                   "#e377c2", "#7f7f7f")  # fmt: skip
NAMES = {"ecg": "ECG", "echo": "Echo", "cxr": "Chest X-ray"}


def _heatmap(modality: str, z: np.ndarray, show_scale: bool) -> go.Heatmap:
    """One mean relevance distribution, as the share of the relevance in each cell (%)."""
    pct = 100.0 * np.asarray(z, dtype=float)
    common = {
        "z": pct,
        "colorscale": "Inferno",
        "zmin": 0.0,
        "showscale": show_scale,
        "colorbar": {"title": {"text": "% of relevance", "side": "right"}, "x": COLORBAR_X},
    }
    if modality == "ecg":
        x = np.arange(ECG_BINS) / ECG_BINS * 100
        return go.Heatmap(
            x=x, y=list(STANDARD_LEADS), hovertemplate="lead %{y}, %{x:.0f}% of the record:"
            " %{z:.3f}%<extra></extra>", **common,
        )  # fmt: skip
    return go.Heatmap(hovertemplate="row %{y}, column %{x}: %{z:.3f}%<extra></extra>", **common)


def _grid(
    modality: str, titles: Sequence[str], maps: Sequence[np.ndarray], title: str
) -> go.Figure:
    n = max(len(maps), 1)
    fig = make_subplots(1, n, subplot_titles=list(titles), horizontal_spacing=0.03)
    zmax = max((float(np.max(m)) for m in maps), default=0.0) * 100
    for i, m in enumerate(maps):
        fig.add_trace(_heatmap(modality, m, i == len(maps) - 1), 1, i + 1)
    fig.update_traces(zmax=zmax or None)
    for i in range(n):
        axis = "" if i == 0 else str(i + 1)
        if modality != "ecg":
            fig.layout[f"yaxis{axis}"].update(autorange="reversed", scaleanchor=f"x{axis}")
        fig.layout[f"xaxis{axis}"].update(showticklabels=modality == "ecg")
        if i:
            fig.layout[f"yaxis{axis}"].update(showticklabels=False)
    right = colorbar_margin([f"{zmax:.3g}"], side_title=True)  # plotly's ticks are no longer
    fig.update_layout(title=title, height=300, margin={"l": 50, "r": right, "t": 70, "b": 30})
    return fig


def _mix(counts: dict[str, int]) -> str:
    return " ".join(f"{o} {n}" for o, n in counts.items() if n)


def outcome_maps_figure(p: ModalityPatterns) -> go.Figure:
    """The mean map of each outcome (same colour scale)."""
    names = list(p.outcome_means)
    titles = [f"{o} (n {p.outcome_counts[o]})" for o in names]
    return _grid(
        p.modality,
        titles,
        [p.outcome_means[o] for o in names],
        f"{NAMES[p.modality]}: mean heat map by outcome",
    )


def cluster_maps_figure(p: ModalityPatterns) -> go.Figure:
    """The mean map of each SpRAy cluster, titled with its size and outcome mix."""
    titles = [f"cluster {c.index}: {len(c.cases)}<br>{_mix(c.outcomes)}" for c in p.clusters]
    return _grid(
        p.modality,
        titles,
        [c.mean_map for c in p.clusters],
        f"{NAMES[p.modality]}: {p.clustering.k} strategies (spectral relevance analysis)",
    )


def embedding_figure(p: ModalityPatterns, outcomes: dict[str, str]) -> go.Figure:
    """The cases on the graph's first two spectral coordinates, coloured by cluster."""
    fig = go.Figure()
    names = []
    for c in p.clusters:
        idx = [p.cases.index(case) for case in c.cases]
        xy = p.clustering.embedding[idx]
        names.append(f"cluster {c.index} ({len(c.cases)})")
        fig.add_trace(
            go.Scattergl(
                x=xy[:, 0],
                y=xy[:, 1],
                mode="markers",
                name=names[-1],
                marker={"color": CLUSTER_COLOURS[c.index % len(CLUSTER_COLOURS)], "size": 7},
                text=[f"{case} · {outcomes.get(case, '')}" for case in c.cases],
                hovertemplate="%{text}<extra></extra>",
            )
        )
    y = p.clustering.embedding[:, 1]
    y_ticks = [f"{v:.3g}" for v in (y.min(), y.max())]  # as long as plotly's, or longer
    fig.update_layout(
        title=f"{NAMES[p.modality]} maps: spectral embedding",
        height=320,
        margin={
            "l": label_margin(y_ticks, titled=True),
            "r": legend_margin(names),
            "t": 50,
            "b": bottom_margin(titled=True),
        },
        legend={"x": LEGEND_X},
        xaxis={"title": "spectral coordinate 1"},
        yaxis={"title": "spectral coordinate 2"},
    )
    return fig


def shapley_figure(patterns: CohortPatterns) -> go.Figure:
    """Each modality's Shapley value (log-odds) by outcome, as box plots."""
    fig = go.Figure()
    outcomes = [o for o in OUTCOME_COLOURS if any(o in by for by in patterns.shapley.values())]
    for o in outcomes:
        xs, ys = [], []
        for m, by in patterns.shapley.items():
            xs += [m] * len(by.get(o, []))
            ys += by.get(o, [])
        if ys:
            fig.add_trace(
                go.Box(x=xs, y=ys, name=o, marker_color=OUTCOME_COLOURS[o], boxpoints=False)
            )
    fig.update_layout(
        boxmode="group",
        title="Modality Shapley values by outcome",
        yaxis={"title": "contribution to the log-odds", "zeroline": True},
        height=320,
        margin={"l": 60, "r": legend_margin(outcomes), "t": 50, "b": 30},
        legend={"x": LEGEND_X},
    )
    return fig
