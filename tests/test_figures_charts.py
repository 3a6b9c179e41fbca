"""Shapley bars, the interaction matrix and attention heat maps."""

from __future__ import annotations

import numpy as np
import pytest

from fuselens.app.figures.attention import attention_heatmap_figure
from fuselens.app.figures.contributions import (
    LOWERS_COLOR,
    RAISES_COLOR,
    interaction_matrix_figure,
    shapley_bar_figure,
)
from fuselens.app.figures.margins import bottom_margin, legend_margin
from fuselens.app.review.figures import calibration_figure
from fuselens.app.review.metrics import calibration


def test_shapley_bars_sorted_coloured_and_annotated() -> None:
    values = {"labs": 0.21, "ecg": -0.05, "echo": 0.32, "cxr": -0.11}
    fig = shapley_bar_figure(values, base_value=0.30, full_value=0.67, answer_label="HF")
    (bar,) = fig.data
    assert bar.orientation == "h"
    # plotly draws the first category at the bottom: the largest magnitude ends on top
    assert list(bar.y) == ["ECG", "Chest X-ray", "Labs", "Echo"]
    assert list(bar.x) == pytest.approx([-0.05, -0.11, 0.21, 0.32])
    assert list(bar.marker.color) == [LOWERS_COLOR, LOWERS_COLOR, RAISES_COLOR, RAISES_COLOR]
    assert list(bar.text) == ["-0.050", "-0.110", "+0.210", "+0.320"]
    title = fig.layout.title.text
    assert "“HF”" in title and "0.300" in title and "0.670" in title and "+0.370" in title
    lo, hi = fig.layout.xaxis.range
    assert lo == pytest.approx(-hi) and hi > 0.32


def test_shapley_bars_reject_bad_input() -> None:
    with pytest.raises(ValueError, match="no modality"):
        shapley_bar_figure({}, 0.0, 1.0, "HF")
    with pytest.raises(ValueError, match="finite"):
        shapley_bar_figure({"labs": float("nan")}, 0.0, 1.0, "HF")


def test_interaction_matrix_diverges_around_zero() -> None:
    m = np.array([[0.0, 0.08, -0.02], [0.08, 0.0, -0.15], [-0.02, -0.15, 0.0]])
    fig = interaction_matrix_figure(m, ["labs", "ecg", "echo"])
    (hm,) = fig.data
    assert hm.zmid == 0.0
    assert hm.zmin == pytest.approx(-0.15) and hm.zmax == pytest.approx(0.15)
    scale = [c for _, c in hm.colorscale]
    assert scale[0] != scale[-1]  # a two-sided scale, blue low and red high
    assert list(hm.x) == ["Labs", "ECG", "Echo"]
    assert hm.text[1][2] == "-0.150" and hm.text[0][1] == "+0.080"
    assert list(hm.colorbar.ticktext) == ["redundancy", "0", "synergy"]
    assert fig.layout.yaxis.scaleanchor == "x"


def test_interaction_matrix_shape_is_checked_and_nan_cells_left_blank() -> None:
    with pytest.raises(ValueError, match=r"\(2, 2\)"):
        interaction_matrix_figure(np.zeros((3, 3)), ["labs", "ecg"])
    m = np.array([[np.nan, 0.1], [0.1, np.nan]])
    fig = interaction_matrix_figure(m, ["labs", "ecg"])
    assert fig.data[0].text[0][0] == "" and fig.data[0].zmax == pytest.approx(0.1)


def test_attention_heatmap_annotates_values() -> None:
    att = np.array([[0.7, 0.2, 0.1], [0.25, 0.5, 0.25]])
    fig = attention_heatmap_figure(att, ["ECG", "Echo"], ["Labs", "ECG", "CXR"], "Layer 1")
    (hm,) = fig.data
    assert list(hm.y) == ["ECG", "Echo"] and list(hm.x) == ["Labs", "ECG", "CXR"]
    assert hm.text[0][0] == "0.70" and hm.text[1][2] == "0.25"
    assert hm.texttemplate == "%{text}"
    assert hm.zmin == 0.0 and hm.zmax == pytest.approx(0.7)
    assert fig.layout.title.text == "Layer 1"
    assert fig.layout.yaxis.autorange == "reversed"


def test_attention_heatmap_skips_text_on_large_maps_and_checks_shape() -> None:
    big = np.random.default_rng(0).random((40, 40))
    labels = [f"t{i}" for i in range(40)]
    fig = attention_heatmap_figure(big, labels, labels, "tokens")
    assert fig.data[0].text is None
    with pytest.raises(ValueError, match="does not match"):
        attention_heatmap_figure(big, labels[:3], labels, "tokens")


def test_margins_hold_the_labels_and_colour_bars_they_are_built_for() -> None:
    """plotly.js widens a margin too small for its labels and draws the figure again (the
    browser test checks the drawn ones); here: a longer label asks for a wider margin, and
    each colour bar sits at the plot's edge, its margin not growing with the plot's width."""
    short = attention_heatmap_figure(np.eye(2), ["a", "b"], ["a", "b"], "t")
    long = attention_heatmap_figure(np.eye(2), ["a", "a much longer token"], ["a", "b"], "t")
    assert long.layout.margin.l - short.layout.margin.l >= 6 * len("a much longer token") - 6
    columns = [f"token {i}" for i in range(20)]
    crowded = attention_heatmap_figure(np.eye(20), list("abcdefghijklmnopqrst"), columns, "t")
    assert crowded.layout.margin.b > short.layout.margin.b  # room for slanted column labels
    for fig in (short, interaction_matrix_figure(np.zeros((2, 2)), ["ecg", "cxr"])):
        assert fig.data[0].colorbar.x == 1.0
        assert fig.layout.margin.r >= 70  # padding, the 30 px bar, its ticks and labels


def test_legend_and_axis_title_margins_grow_with_what_they_hold() -> None:
    """A right-hand legend's margin follows its longest name, an x axis title deepens the
    bottom margin, and the calibration legend has a row of its own under the axis."""
    names = ["TP", "cluster 12 (1234)"]
    assert legend_margin(names) - legend_margin(["TP"]) >= 6 * (len(names[1]) - 2)
    assert bottom_margin(titled=True) >= bottom_margin() + 26
    rng = np.random.default_rng(0)
    p = rng.random(200)
    fig = calibration_figure(calibration((rng.random(200) < p).astype(int), p))
    assert fig.layout.legend.yref == "container" and fig.layout.legend.y == 0
    assert fig.layout.margin.b >= bottom_margin(titled=True) + 24
