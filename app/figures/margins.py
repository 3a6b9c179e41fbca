"""Figure margins that already hold a figure's tick labels and colour bar.

A label or colour bar that does not fit its margin makes plotly.js widen the margin and draw
the whole figure a second time: on an opened review case that was about a third of the
browser's Plotly time. An estimate that falls short costs only that second drawing.
"""

from __future__ import annotations

import math
from collections.abc import Iterable

GLYPH_PX = 6.5  # mean glyph width of Plotly's 12 px default font (Open Sans), rounded up
AXIS_TITLE_PX = 26  # a rotated axis title (or a colour bar's side title) with its padding
EDGE_PX = 10  # the figure's own edge
TICK_PX = 12  # a colour bar's tick marks and the gap to their labels
TICK_ROW_PX = 16  # a row of x tick labels under the plot, with its gap
X_TITLE_PX = 40  # an x axis title under its tick labels, with its padding
LEGEND_ITEM_PX = 50  # a legend entry's symbol, padding and border, beside its name
LEGEND_ROW_PX = 30  # a horizontal legend's row, at the figure's bottom edge
# A colour bar at x=1 sits at the plot's right edge, so the margin it needs does not grow
# with the plot's width (plotly's default, x=1.02, adds 2 % of the width).
COLORBAR_X = 1.0
LEGEND_X = 1.0  # the same for a legend on the right


def text_px(labels: Iterable[object]) -> int:
    """Width in pixels of the longest of ``labels`` in Plotly's default font."""
    return math.ceil(max((len(str(s)) for s in labels), default=0) * GLYPH_PX)


def label_margin(labels: Iterable[object], titled: bool = False) -> int:
    """A left margin for y tick ``labels`` (and the axis title beside them)."""
    return EDGE_PX + text_px(labels) + (AXIS_TITLE_PX if titled else 0)


def colorbar_margin(
    tick_labels: Iterable[object], side_title: bool = False, thickness: int = 30
) -> int:
    """A right margin for a colour bar at :data:`COLORBAR_X`: its padding, bar, ticks and
    tick labels, and a title written along its side."""
    ticks = TICK_PX + text_px(tick_labels)
    return EDGE_PX + thickness + ticks + (AXIS_TITLE_PX if side_title else 0)


def bottom_margin(titled: bool = False) -> int:
    """A bottom margin for a row of x tick labels (and the axis title under them)."""
    return TICK_ROW_PX + (X_TITLE_PX if titled else 0)


def legend_margin(names: Iterable[object]) -> int:
    """A right margin for a vertical legend at :data:`LEGEND_X` listing ``names``."""
    return EDGE_PX + LEGEND_ITEM_PX + text_px(names)
