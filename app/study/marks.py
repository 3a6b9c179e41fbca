"""Where readers' marks land, and over-reliance on the AI with and without explanations.

A reader may mark what convinced them; each mark is a mapping of one of these forms:

- ``{"modality": "cxr", "x": 120.5, "y": 80.0}``: a point on the chest X-ray in displayed-image
  pixel coordinates (x = column, y = row, origin top-left; pixel (row i, column j) covers
  x in [j, j + 1] and y in [i, i + 1]);
- ``{"modality": "echo", "view": "A4C", "frame": 12, "x": ..., "y": ...}``: a point on one
  frame of an echo view, in the same coordinates;
- ``{"modality": "ecg", "lead": "V5", "t": 1.25}``: a lead and a time in seconds; sample k of
  a lead lies at k / rate seconds.

A case has two sets of regions, ``"model"`` (where the model's heat map is high, see
:func:`heat_region`) and ``"truth"`` (where the finding is). Each set is a mapping with
optional keys ``"cxr"`` (bool array (H, W)), ``"echo"`` (mapping view -> bool array
(T, H, W)) and ``"ecg"`` (mapping with ``"mask"``: bool array (n_leads, n_samples),
``"leads"``: the lead names of its rows, ``"rate"``: samples per second).

A mark hits a region when a True element lies within a tolerance of it: within ``radius`` =
``radius_fraction`` x the frame's diagonal (pixels, Euclidean distance to the element's
square) for images, on the marked frame only for echo (frame index clipped into range), and
on the marked lead within ``ecg_tolerance_s`` of t for the ECG. A mark on a modality, view or
lead that has no region is "no region": counted apart, not as a miss. A region that exists
but is all False (a model that highlights nothing, a case without a finding) is missed.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd

from fuselens.app.study.metrics import answers_table, wilson_interval

MODALITIES = ("cxr", "echo", "ecg")
TARGETS = ("model", "truth")
_SLACK = 1e-9  # "within" includes the boundary despite floating-point rounding


def heat_region(heat: np.ndarray, fraction: float = 0.5) -> np.ndarray:
    """Where a heat map is at least ``fraction`` of its maximum.

    All False when the maximum is not positive or not finite (including a map with NaN).
    For an echo view pass the whole (T, H, W) map, so frames share one maximum.
    """
    if not 0 < fraction <= 1:
        raise ValueError(f"fraction must be in (0, 1], got {fraction!r}")
    heat = np.asarray(heat, dtype=float)
    top = heat.max() if heat.size else math.nan
    if not math.isfinite(top) or top <= 0:
        return np.zeros(heat.shape, dtype=bool)
    return heat >= fraction * top


def _number(mark: Mapping[str, Any], key: str) -> float:
    if key not in mark:
        raise ValueError(f"{mark['modality']} mark lacks {key!r}")
    value = mark[key]
    numeric = isinstance(value, int | float | np.integer | np.floating)
    if isinstance(value, bool) or not numeric or not math.isfinite(value):
        raise ValueError(f"{key!r} must be a finite number, got {value!r}")
    return float(value)


def _name(mark: Mapping[str, Any], key: str) -> str:
    if key not in mark:
        raise ValueError(f"{mark['modality']} mark lacks {key!r}")
    if not isinstance(mark[key], str) or not mark[key]:
        raise ValueError(f"{key!r} must be a non-empty string, got {mark[key]!r}")
    return mark[key]


def check_mark(mark: Any) -> dict[str, Any]:
    """The mark with its fields checked and typed; a ValueError says what is wrong."""
    if not isinstance(mark, Mapping):
        raise ValueError(f"a mark must be a mapping, got {mark!r}")
    modality = mark.get("modality")
    if modality == "cxr":
        return {"modality": "cxr", "x": _number(mark, "x"), "y": _number(mark, "y")}
    if modality == "echo":
        frame = _number(mark, "frame")
        if not frame.is_integer():
            raise ValueError(f"'frame' must be a whole number, got {mark['frame']!r}")
        point = {"x": _number(mark, "x"), "y": _number(mark, "y")}
        return {"modality": "echo", "view": _name(mark, "view"), "frame": int(frame), **point}
    if modality == "ecg":
        return {"modality": "ecg", "lead": _name(mark, "lead"), "t": _number(mark, "t")}
    raise ValueError(f"unknown modality {modality!r}; use 'cxr', 'echo' or 'ecg'")


def _bool_array(region: Any, ndim: int, what: str) -> np.ndarray:
    region = np.asarray(region)
    if region.dtype != bool or region.ndim != ndim:
        raise ValueError(
            f"{what} region must be a {ndim}-D bool array (see heat_region), "
            f"got {region.ndim}-D {region.dtype}"
        )
    return region


def _near_point(image: np.ndarray, x: float, y: float, radius_fraction: float) -> bool:
    rows, cols = np.nonzero(image)
    if rows.size == 0:
        return False
    dx = np.maximum(np.maximum(cols - x, x - (cols + 1)), 0)
    dy = np.maximum(np.maximum(rows - y, y - (rows + 1)), 0)
    radius = radius_fraction * math.hypot(*image.shape)
    return bool(np.hypot(dx, dy).min() <= radius + _SLACK)


def mark_hits(
    mark: Mapping[str, Any],
    regions: Mapping[str, Any],
    radius_fraction: float = 0.03,
    ecg_tolerance_s: float = 0.04,
) -> bool | None:
    """Whether a mark hits one set of regions (a case's "model" or "truth"); None = no region."""
    mark = check_mark(mark)
    if mark["modality"] == "cxr":
        if regions.get("cxr") is None:
            return None
        image = _bool_array(regions["cxr"], 2, "cxr")
        return _near_point(image, mark["x"], mark["y"], radius_fraction)
    if mark["modality"] == "echo":
        views = regions.get("echo") or {}
        if views.get(mark["view"]) is None:
            return None
        clip = _bool_array(views[mark["view"]], 3, f"echo {mark['view']}")
        frame = clip[min(max(mark["frame"], 0), clip.shape[0] - 1)]
        return _near_point(frame, mark["x"], mark["y"], radius_fraction)
    ecg = regions.get("ecg")
    if ecg is None:
        return None
    if not all(k in ecg for k in ("mask", "leads", "rate")):
        raise ValueError("ecg region needs 'mask', 'leads' and 'rate'")
    leads, mask = list(ecg["leads"]), _bool_array(ecg["mask"], 2, "ecg")
    rate = float(ecg["rate"])
    if mask.shape[0] != len(leads) or not rate > 0:
        raise ValueError("ecg region needs one mask row per lead and a positive rate")
    if mark["lead"] not in leads:
        return None
    samples = np.flatnonzero(mask[leads.index(mark["lead"])])
    if samples.size == 0:
        return False
    return bool(np.abs(samples - mark["t"] * rate).min() <= ecg_tolerance_s * rate + _SLACK)


def mark_agreement(
    rows: pd.DataFrame | Iterable[Mapping[str, Any]],
    regions_of: Mapping[Any, Mapping[str, Any]],
    radius_fraction: float = 0.03,
    ecg_tolerance_s: float = 0.04,
    alpha: float = 0.05,
) -> pd.DataFrame:
    """Share of readers' marks that hit the model's and the true regions, per arm x modality.

    ``rows`` carry ``reader``, ``case``, ``arm`` and ``marks`` (a list of marks, or empty /
    None / NaN for none); ``regions_of`` maps a case to ``{"model": ..., "truth": ...}``; a
    case or target missing there has no region. Each arm (in order of first appearance)
    gets four rows, modality "cxr", "echo", "ecg" and "all" (its marks pooled). Per target T
    in ("model", "truth"): ``T_n`` marks with a region, ``T_no_region`` marks without,
    ``T_hits``, ``T_share`` = hits / ``T_n`` (nan when 0) and its Wilson interval
    ``T_low``, ``T_high``. The interval treats marks as independent, ignoring that a reader
    or a case contributes several.
    """
    records, arms = [], []
    for row in rows.to_dict(orient="records") if isinstance(rows, pd.DataFrame) else rows:
        missing = [k for k in ("reader", "case", "arm", "marks") if k not in row]
        if missing:
            raise ValueError(f"answer row lacks {', '.join(missing)}: {dict(row)!r}")
        reader, case, arm, marks = row["reader"], row["case"], row["arm"], row["marks"]
        if arm not in arms:
            arms.append(arm)
        if marks is None or (isinstance(marks, float) and math.isnan(marks)):
            continue
        if not isinstance(marks, list | tuple):
            raise ValueError(
                f"reader {reader!r}, case {case!r}: marks must be a list, got {marks!r}"
            )
        targets = regions_of.get(case) or {}
        for i, mark in enumerate(marks):
            try:
                mark = check_mark(mark)
            except ValueError as err:
                raise ValueError(f"reader {reader!r}, case {case!r}, mark {i}: {err}") from None
            record = {"arm": arm, "modality": mark["modality"]}
            for target in TARGETS:
                try:
                    record[target] = mark_hits(
                        mark, targets.get(target) or {}, radius_fraction, ecg_tolerance_s
                    )
                except ValueError as err:
                    raise ValueError(f"case {case!r}, {target} regions: {err}") from None
            records.append(record)
    table = pd.DataFrame(records, columns=["arm", "modality", *TARGETS])
    out = []
    for arm in arms:
        of_arm = table[table["arm"] == arm]
        for modality in (*MODALITIES, "all"):
            g = of_arm if modality == "all" else of_arm[of_arm["modality"] == modality]
            summary: dict[str, Any] = {"arm": arm, "modality": modality, "n_marks": len(g)}
            for target in TARGETS:
                judged = g[target].dropna().astype(bool)
                n, hits = len(judged), int(judged.sum())
                low, high = wilson_interval(hits, n, alpha)
                summary.update(
                    {
                        f"{target}_n": n,
                        f"{target}_no_region": len(g) - n,
                        f"{target}_hits": hits,
                        f"{target}_share": hits / n if n else math.nan,
                        f"{target}_low": low,
                        f"{target}_high": high,
                    }
                )
            out.append(summary)
    per_target = ("n", "no_region", "hits", "share", "low", "high")
    columns = ["arm", "modality", "n_marks"]
    columns += [f"{t}_{c}" for t in TARGETS for c in per_target]
    return pd.DataFrame(out, columns=columns)


def newcombe_difference(
    k_a: int, n_a: int, k_b: int, n_b: int, alpha: float = 0.05
) -> tuple[float, float, float]:
    """k_a/n_a - k_b/n_b with Newcombe's hybrid score interval (method 10); nan if an n is 0."""
    if n_a == 0 or n_b == 0:
        return math.nan, math.nan, math.nan
    p_a, p_b = k_a / n_a, k_b / n_b
    low_a, high_a = wilson_interval(k_a, n_a, alpha)
    low_b, high_b = wilson_interval(k_b, n_b, alpha)
    diff = p_a - p_b
    low = diff - math.sqrt((p_a - low_a) ** 2 + (high_b - p_b) ** 2)
    high = diff + math.sqrt((high_a - p_a) ** 2 + (p_b - low_b) ** 2)
    return diff, low, high


def over_reliance_differences(
    answers: pd.DataFrame | Iterable[Mapping[str, Any]], alpha: float = 0.05
) -> pd.DataFrame:
    """Difference in the pooled rate of following a wrong AI answer, for each pair of arms.

    Arms that show an AI answer (some row with ``ai_answer`` not missing) are paired in order
    of first appearance in the table; ``difference`` = ``rate_a`` - ``rate_b`` with a
    Newcombe (hybrid Wilson score) interval. A rate pools readers: readers who gave the AI's
    answer / rows where the shown AI answer differed from the truth (nan when there are none).
    """
    table = answers_table(answers)
    shown = table[table["ai_answer"].notna()]
    wrong = shown[shown["ai_answer"].astype(int) != shown["truth"]]
    followed = wrong["diagnosis"] == wrong["ai_answer"].astype(int)
    arms = [arm for arm in table["arm"].unique() if arm in set(shown["arm"])]
    counts = {
        arm: (int((wrong["arm"] == arm).sum()), int(followed[wrong["arm"] == arm].sum()))
        for arm in arms
    }
    rows = []
    for a, b in combinations(arms, 2):
        (n_a, k_a), (n_b, k_b) = counts[a], counts[b]
        diff, low, high = newcombe_difference(k_a, n_a, k_b, n_b, alpha)
        rows.append(
            {
                "arm_a": a,
                "arm_b": b,
                "n_wrong_ai_a": n_a,
                "n_followed_a": k_a,
                "rate_a": k_a / n_a if n_a else math.nan,
                "n_wrong_ai_b": n_b,
                "n_followed_b": k_b,
                "rate_b": k_b / n_b if n_b else math.nan,
                "difference": diff,
                "difference_low": low,
                "difference_high": high,
            }
        )
    columns = ["arm_a", "arm_b", "n_wrong_ai_a", "n_followed_a", "rate_a"]
    columns += ["n_wrong_ai_b", "n_followed_b", "rate_b", "difference"]
    return pd.DataFrame(rows, columns=[*columns, "difference_low", "difference_high"])
