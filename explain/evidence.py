"""Short, JSON-ready summaries of where a map points: lab items, leads x time, view x frame
and image region. The grounded report and the HTML report quote them."""

from __future__ import annotations

from typing import Any

import numpy as np

from fuselens.model_zoo.case import Labs

HOT = 0.5  # a map value at least this share of its peak counts as "hot"


def bbox(hot: np.ndarray) -> list[int]:
    """``[row0, col0, row1, col1]`` (end exclusive) of the True cells of a 2-D mask."""
    rows, cols = np.nonzero(hot)
    if rows.size == 0:
        return [0, 0, 0, 0]
    return [int(rows.min()), int(cols.min()), int(rows.max()) + 1, int(cols.max()) + 1]


def runs(flags: np.ndarray) -> list[tuple[int, int]]:
    """``(start, end)`` (end exclusive) of each run of True in a 1-D array."""
    padded = np.concatenate([[False], flags.astype(bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True)]


def labs_evidence(
    labs: Labs, items: list[str], values: np.ndarray, source: str, k: int = 3
) -> dict[str, Any]:
    """The ``k`` lab lines pushing most towards the answer, with their values."""
    by_name = {i.name: i for i in labs.items}
    top = [int(i) for i in np.argsort(-np.asarray(values))[:k] if values[i] > 0]
    out = []
    for i in top:
        item = by_name.get(items[i])
        out.append(
            {
                "name": items[i],
                "value": item.value if item else None,
                "unit": item.unit if item else "",
                "attribution": float(values[i]),
            }
        )
    return {"items": out, "source": source}


# Words of the lab text's template ("<name> of the patient is <value>") and function words:
# they carry no evidence of their own, so they are never offered as the top evidence.
EMPTY_WORDS = frozenset(
    "of the patient is a an and or in on at to with for by was were be are no not".split()
)


def meaningful(token: str) -> bool:
    """Whether a word piece can stand as evidence: it has a letter or digit and is not a
    template or function word."""
    word = token.removeprefix("##").lower()
    return any(c.isalnum() for c in word) and word not in EMPTY_WORDS


def top_tokens(tokens: list[str], values: np.ndarray, k: int = 5) -> list[dict[str, Any]]:
    """The ``k`` meaningful word pieces pushing most towards the answer."""
    order = [int(i) for i in np.argsort(-np.asarray(values)) if values[i] > 0]
    top = [i for i in order if meaningful(tokens[i])][:k]
    return [{"token": tokens[i], "attribution": float(values[i])} for i in top]


def ecg_evidence(cam: np.ndarray, leads: list[str], rate_hz: float, k: int = 3) -> dict[str, Any]:
    """Top ``k`` leads by mean map value and, in each, the hot time windows (seconds)."""
    score = cam.mean(axis=1)
    top = [int(i) for i in np.argsort(-score)[:k] if score[i] > 0]
    windows = []
    for i in top:
        peak = float(cam[i].max())
        for a, b in runs(cam[i] >= HOT * peak)[:4]:
            windows.append(
                {"lead": leads[i], "start_s": round(a / rate_hz, 3), "end_s": round(b / rate_hz, 3)}
            )
    return {
        "leads": [{"lead": leads[i], "score": float(score[i])} for i in top],
        "windows": windows,
    }


def echo_evidence(cams: dict[str, np.ndarray], k: int = 3) -> dict[str, Any]:
    """The view with the most map mass, its ``k`` hottest frames and the hot region's box."""
    if not cams:
        return {}
    view = max(cams, key=lambda v: float(cams[v].mean()))
    cam = cams[view]
    per_frame = cam.reshape(cam.shape[0], -1).mean(1)
    frames = sorted(int(i) for i in np.argsort(-per_frame)[:k])
    best = cam[int(np.argmax(per_frame))]
    return {"view": view, "frames": frames, "bbox": bbox(best >= HOT * best.max())}


def region_name(row: float, col: float, shape: tuple[int, int], view: str = "PA") -> str:
    """Zone (upper/middle/lower) of a point on a radiograph and, for PA/AP views, the side
    (the patient's right is on the image's left)."""
    zone = ("upper", "middle", "lower")[min(2, int(3 * row / shape[0]))]
    if view.upper() not in ("PA", "AP", ""):
        return f"{zone} zone"
    side = "right" if col < shape[1] / 2 else "left"
    return f"{side} {zone} zone"


def cxr_evidence(cam: np.ndarray, view: str = "PA") -> dict[str, Any]:
    """Box of the hot region and the named zone of the map's peak."""
    r, c = np.unravel_index(int(np.argmax(cam)), cam.shape)
    return {
        "bbox": bbox(cam >= HOT * cam.max()),
        "region": region_name(float(r), float(c), cam.shape, view),
    }
