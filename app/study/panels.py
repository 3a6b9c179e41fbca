"""The panels a study arm shows, rendered once per case at ``study create`` with the
workstation's own builders (one source for a panel, whichever mode shows it).

Files of a case in the study's media folder:

- every arm (the case itself): ``labs.json``, ``ecg.json``, ``echo_<view>.mp4`` (and
  ``echo.json``, each view's frame rate and size), ``cxr.png``;
- ``heatmaps``, per map method: ``cxr_heat_<method>.png`` and ``echo_<view>_heat_<method>.mp4``
  (the workstation's overlay at opacity 1, the map alone: the page lays it over the image
  at the reader's opacity, which is the workstation's blend), ``ecg_heat_<method>.json``
  (the 12-lead print shaded with the map);
- ``lab_text``: ``lab_text.json`` (the lab text as SHAP-coloured segments);
- ``modality_contributions``: ``contributions.json`` and ``interactions.json`` (figures);
- ``attention``: ``attention_0.json``, ``attention_1.json`` (figures);
- ``report``: ``report.json`` (its sentences and the checks panel, as HTML).

:func:`file_panel` says which panel (and method) a file belongs to, so the server serves a
file only to a reader whose current arm shows it. The regions readers' marks are scored
against (the model's map above half its peak, the case's planted evidence) are written
apart from the media (:func:`write_regions`), never served.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from fuselens.explain.bundle import ExplanationBundle, ModalityMaps
from fuselens.model_zoo.case import PatientCase

CASE_MEDIA = re.compile(r"^(labs\.json|ecg\.json|echo\.json|cxr\.png|echo_[A-Za-z0-9]+\.mp4)$")
PANEL_MEDIA: dict[str, re.Pattern[str]] = {
    "heatmaps": re.compile(
        r"^(cxr_heat_(?P<m1>[a-z0-9_]+)\.png|echo_[A-Za-z0-9]+_heat_(?P<m2>[a-z0-9_]+)\.mp4"
        r"|ecg_heat_(?P<m3>[a-z0-9_]+)\.json)$"
    ),
    "lab_text": re.compile(r"^lab_text\.json$"),
    "modality_contributions": re.compile(r"^(contributions|interactions)\.json$"),
    "attention": re.compile(r"^attention_[01]\.json$"),
    "report": re.compile(r"^report\.json$"),
}
REGION_FRACTION = 0.5  # the model's region: its map at or above half its peak


def file_panel(name: str) -> tuple[str | None, str | None] | None:
    """``(panel, method)`` of a media file: ``(None, None)`` for the case's own media,
    ``None`` for a name that is no study media."""
    if CASE_MEDIA.match(name):
        return None, None
    for panel, pattern in PANEL_MEDIA.items():
        m = pattern.match(name)
        if m:
            method = next((v for k, v in m.groupdict().items() if v), None)
            return panel, method
    return None


def _figure(fig: Any, path: Path) -> str | None:
    if fig is None:
        return None
    path.write_text(fig.to_json(), encoding="utf-8")
    return path.name


def _heatmaps(case: PatientCase, maps: ModalityMaps, out: Path) -> list[str]:
    from PIL import Image

    from fuselens.app.figures.loops import write_loop
    from fuselens.app.image_views import cxr_panel, ecg_panel, echo_cam, echo_rgb_frames

    m, written = maps.method, []
    if case.cxr is not None and maps.cxr is not None:
        Image.fromarray(cxr_panel(case, maps, 1.0)).save(out / f"cxr_heat_{m}.png")
        written.append(f"cxr_heat_{m}.png")
    for view, cine in sorted(case.echo.items()):
        cam = echo_cam(maps, view)
        if cam is not None:
            name = f"echo_{view}_heat_{m}.mp4"
            write_loop(echo_rgb_frames(cine, cam, 1.0), cine.frame_rate, out / name)
            written.append(name)
    if case.ecg is not None and maps.ecg is not None:
        written.append(_figure(ecg_panel(case, maps), out / f"ecg_heat_{m}.json"))
    return written


def _report(bundle: ExplanationBundle) -> dict[str, Any] | None:
    from markdown_it import MarkdownIt

    from fuselens.app.report_views import report_checks_markdown

    report = bundle.report
    if report is None:
        return None
    checks = report_checks_markdown(report)
    return {
        "sentences": [{"text": s.text, "modality": s.modality} for s in report.sentences],
        "checks_html": MarkdownIt("commonmark", {"html": False}).render(checks),
    }


def render_panels(
    case: PatientCase, bundle: ExplanationBundle, methods: list[str], out_dir: Path
) -> list[str]:
    """Write the explanation panels of ``case`` (its ``bundle``; heat maps of ``methods``)
    into ``out_dir``; returns the file names written."""
    from fuselens.app.views import attention_panels, lab_text_panel, shapley_panels

    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[str | None] = []
    for method in methods:
        if method in bundle.maps:
            written += _heatmaps(case, bundle.maps[method], out_dir)
    if case.labs is not None and bundle.text is not None:
        segments = [[t, s] for t, s in lab_text_panel(case, bundle)]
        (out_dir / "lab_text.json").write_text(json.dumps({"segments": segments}), "utf-8")
        written.append("lab_text.json")
    bars, matrix = shapley_panels(bundle)
    written += [_figure(bars, out_dir / "contributions.json")]
    written += [_figure(matrix, out_dir / "interactions.json")]
    for i, fig in enumerate(attention_panels(bundle)):
        written.append(_figure(fig, out_dir / f"attention_{i}.json"))
    report = _report(bundle)
    if report is not None:
        (out_dir / "report.json").write_text(json.dumps(report), encoding="utf-8")
        written.append("report.json")
    return [w for w in written if w]


def _mask_fit(mask: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A bool (h, w) or (F, h, w) evidence mask resized (nearest) to ``shape`` of the same rank
    (frames by nearest index)."""
    import cv2

    a = np.asarray(mask, dtype=np.uint8)
    if a.ndim == 2:
        return cv2.resize(a, (shape[1], shape[0]), interpolation=cv2.INTER_NEAREST) > 0
    frames = np.linspace(0, a.shape[0] - 1, shape[0]).round().astype(int)
    return np.stack([_mask_fit(a[f], shape[1:]) for f in frames])


def case_regions(
    case: PatientCase, maps: ModalityMaps | None, truth: dict[str, Any] | None
) -> dict[str, dict[str, Any]]:
    """``{"model": regions, "truth": regions}`` at the displayed geometry, in the form
    :func:`fuselens.app.study.marks.mark_agreement` reads: the model's region is its map at
    or above ``REGION_FRACTION`` of its peak, the truth the case's planted evidence."""
    from fuselens.app.figures.overlays import downsized_shape, resample_cam_frames, resize_cam
    from fuselens.app.image_views import CXR_DISPLAY_SIDE, ECHO_DISPLAY_SIDE, display_size
    from fuselens.app.study.marks import heat_region

    out: dict[str, dict[str, Any]] = {"model": {}, "truth": {}}
    truth = truth or {}
    if case.cxr is not None:
        shape = downsized_shape(case.cxr.image.shape, CXR_DISPLAY_SIDE)
        if maps is not None and maps.cxr is not None:
            heat = resize_cam(maps.cxr, *shape)  # as the overlay draws it
            out["model"]["cxr"] = heat_region(heat, REGION_FRACTION)
        if truth.get("cxr") is not None:
            out["truth"]["cxr"] = _mask_fit(truth["cxr"], shape)
    for view, cine in case.echo.items():
        n, (h, w) = cine.frames.shape[0], display_size(cine.frames.shape[1:], ECHO_DISPLAY_SIDE)
        if maps is not None and view in maps.echo:
            frames = resample_cam_frames(maps.echo[view], n)  # as the overlay loop draws it
            heat = np.stack([resize_cam(f, h, w) for f in frames])
            out["model"].setdefault("echo", {})[view] = heat_region(heat, REGION_FRACTION)
        if view in (truth.get("echo") or {}):
            out["truth"].setdefault("echo", {})[view] = _mask_fit(truth["echo"][view], (n, h, w))
    if case.ecg is not None:
        if maps is not None and maps.ecg is not None:
            out["model"]["ecg"] = {
                "mask": heat_region(np.asarray(maps.ecg, dtype=np.float32), REGION_FRACTION),
                "leads": list(maps.ecg_leads),
                "rate": float(maps.ecg_rate_hz),
            }
        if truth.get("ecg") is not None:
            out["truth"]["ecg"] = {
                "mask": np.asarray(truth["ecg"], dtype=bool),
                "leads": list(case.ecg.lead_names),
                "rate": float(case.ecg.sampling_rate),
            }
    return out


def _flat(regions: dict[str, dict[str, Any]]) -> dict[str, np.ndarray]:
    arrays: dict[str, np.ndarray] = {}
    for source, parts in regions.items():
        if "cxr" in parts:
            arrays[f"{source}|cxr"] = parts["cxr"]
        for view, mask in parts.get("echo", {}).items():
            arrays[f"{source}|echo|{view}"] = mask
        if "ecg" in parts:
            ecg = parts["ecg"]
            arrays[f"{source}|ecg"] = ecg["mask"]
            arrays[f"{source}|ecg_leads"] = np.array(ecg["leads"])
            arrays[f"{source}|ecg_rate"] = np.array(ecg["rate"])
    return arrays


def save_regions(path: Path, regions: dict[str, dict[str, Any]]) -> None:
    """Write :func:`case_regions` as a compressed ``.npz`` (bool masks)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, **_flat(regions))


def load_regions(path: Path) -> dict[str, dict[str, Any]]:
    """What :func:`save_regions` wrote."""
    out: dict[str, dict[str, Any]] = {"model": {}, "truth": {}}
    with np.load(path, allow_pickle=False) as npz:
        for key in npz.files:
            source, part, *rest = key.split("|")
            if part == "cxr":
                out[source]["cxr"] = npz[key]
            elif part == "echo":
                out[source].setdefault("echo", {})[rest[0]] = npz[key]
            elif part == "ecg":
                out[source].setdefault("ecg", {})["mask"] = npz[key]
            elif part == "ecg_leads":
                out[source].setdefault("ecg", {})["leads"] = [str(v) for v in npz[key]]
            elif part == "ecg_rate":
                out[source].setdefault("ecg", {})["rate"] = float(npz[key])
    return out
