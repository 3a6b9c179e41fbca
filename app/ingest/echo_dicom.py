"""Echo cine from a DICOM multi-frame ultrasound file (RGB, YBR or monochrome)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_color_lut, iter_pixels

from fuselens.app.ingest import dicom
from fuselens.app.ingest.body_part import check_body_part
from fuselens.app.ingest.echo_common import (
    build_cine,
    check_cine_size,
    to_grey,
    view_from_filename,
    view_from_text,
)
from fuselens.app.ingest.errors import IngestError, guarded
from fuselens.app.ingest.report import Reading
from fuselens.model_zoo.case import EchoCine

SUPPORTED = {"MONOCHROME1", "MONOCHROME2", "RGB", "YBR_FULL", "YBR_FULL_422", "PALETTE COLOR"}
SUPPORTED |= {"YBR_RCT", "YBR_ICT", "YBR_PARTIAL_420"}


def view_from_tags(ds: Dataset) -> str | None:
    """The view from ViewCodeSequence, then SeriesDescription / ViewName (never burnt-in text)."""
    for item in ds.get("ViewCodeSequence") or []:
        view = view_from_text(str(item.get("CodeMeaning", "")))
        if view:
            return view
    for keyword in ("ViewName", "SeriesDescription"):
        view = view_from_text(str(ds.get(keyword, "") or ""))
        if view:
            return view
    return None


def frame_rate(ds: Dataset) -> tuple[float | None, str]:
    """Frames per second from FrameTime, FrameTimeVector, CineRate or the display rate."""
    frame_time = float(ds.get("FrameTime", 0) or 0)
    if frame_time > 0:
        return 1000.0 / frame_time, "FrameTime"
    vector = [float(v) for v in (ds.get("FrameTimeVector") or [])][1:]
    if vector and np.mean(vector) > 0:
        return 1000.0 / float(np.mean(vector)), "FrameTimeVector"
    for keyword in ("CineRate", "RecommendedDisplayFrameRate"):
        value = float(ds.get(keyword, 0) or 0)
        if value > 0:
            return value, keyword
    return None, "default"


def pixel_spacing(ds: Dataset) -> tuple[float, float] | None:
    """Row and column spacing in mm from the first ultrasound region calibrated in cm."""
    for region in ds.get("SequenceOfUltrasoundRegions") or []:
        units = (region.get("PhysicalUnitsXDirection"), region.get("PhysicalUnitsYDirection"))
        if units == (3, 3):
            dx, dy = float(region.PhysicalDeltaX), float(region.PhysicalDeltaY)
            if dx > 0 and dy > 0:
                return abs(dy) * 10.0, abs(dx) * 10.0
    return None


@guarded("echo")
def read_echo_dicom(path: str | Path) -> Reading[EchoCine]:
    """All frames as uint8 grey; view from the tags or the file name, else ``"unknown"``."""
    header = dicom.read_dicom_header(path, "echo")
    body_part_warning = check_body_part(path, header, "echo")
    rows, cols = dicom.check_image_header(path, header, "echo")
    check_cine_size(path, dicom.number_of_frames(header), rows, cols)
    ds = dicom.read_dicom(path, "echo")
    dicom.check_pixel_data(path, ds, "echo")
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in SUPPORTED:
        raise IngestError(path, "echo", f"photometric interpretation {photometric!r} not supported")
    grey = []
    for frame in iter_pixels(ds):
        if photometric == "PALETTE COLOR":
            frame = apply_color_lut(frame, ds)
        elif photometric.startswith("MONOCHROME") and frame.dtype != np.uint8:
            frame = frame.astype(np.float64) * (255.0 / (2 ** int(ds.BitsStored) - 1))
        grey.append(to_grey(frame))
    frames = np.stack(grey)
    if photometric == "MONOCHROME1":
        frames = 255 - frames
    rate, rate_source = frame_rate(ds)
    view = view_from_tags(ds) or view_from_filename(path)
    reading = build_cine(path, frames, rate, view, pixel_spacing(ds))
    reading.details.update(dicom.dicom_details(ds))
    reading.details["frame_rate_source"] = rate_source
    if body_part_warning:
        reading.warnings.append(body_part_warning)
    reading.identifiers = dicom.identifiers(ds)
    reading.demographics = dicom.demographics(ds)
    return reading
