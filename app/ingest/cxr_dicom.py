"""Chest radiograph from DICOM CR/DX: modality LUT, VOI LUT or window, MONOCHROME1 inverted."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from pydicom.pixels import apply_modality_lut, apply_voi_lut

from fuselens.app.ingest import dicom
from fuselens.app.ingest.body_part import check_body_part
from fuselens.app.ingest.errors import IngestError, guarded
from fuselens.app.ingest.report import Reading
from fuselens.model_zoo.case import CXR

LATERAL_VIEWS = {"LL", "RL", "LATERAL", "LAT", "LLD", "RLD"}  # DICOM ViewPosition terms


def voi_output_range(ds: Dataset) -> tuple[float, float] | None:
    """The value range ``apply_voi_lut`` maps into, None when it leaves values unchanged."""
    if ds.get("VOILUTSequence"):
        bits = int(ds.VOILUTSequence[0].LUTDescriptor[2])
        return 0.0, float(2**bits - 1)
    if "WindowCenter" not in ds and "WindowWidth" not in ds:
        return None
    if ds.get("ModalityLUTSequence"):
        bits = int(ds.ModalityLUTSequence[0].LUTDescriptor[2])
        low, high = 0.0, float(2**bits - 1)
    elif int(ds.get("PixelRepresentation", 0)) == 0:
        low, high = 0.0, float(2 ** int(ds.BitsStored) - 1)
    else:
        low, high = -float(2 ** (int(ds.BitsStored) - 1)), float(2 ** (int(ds.BitsStored) - 1) - 1)
    if "RescaleSlope" in ds and "RescaleIntercept" in ds:
        slope, intercept = float(ds.RescaleSlope), float(ds.RescaleIntercept)
        low, high = sorted((low * slope + intercept, high * slope + intercept))
    return low, high


def _positive_pair(value: object) -> tuple[float, float] | None:
    """Two positive numbers, or None for anything else (a damaged tag is no spacing)."""
    try:
        pair = tuple(float(v) for v in value)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return None
    return (pair[0], pair[1]) if len(pair) == 2 and min(pair) > 0 else None


def pixel_spacing(ds: Dataset) -> tuple[tuple[float, float] | None, str | None]:
    """``(spacing_mm, warning)`` from PixelSpacing or ImagerPixelSpacing; zeros are no spacing."""
    unusable = []
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        value = ds.get(keyword)
        if value is None:
            continue
        spacing = _positive_pair(value)
        if spacing is not None:
            return spacing, None
        unusable.append(f"{keyword} {list(value) if isinstance(value, list | tuple) else value}")
    if unusable:
        return None, f"{' and '.join(unusable)} not a usable pixel spacing: ignored"
    return None, None


def windowed_unit(ds: Dataset, pixels: np.ndarray) -> np.ndarray:
    """Modality LUT, then VOI LUT or window, scaled to [0, 1] with bone bright."""
    arr = apply_modality_lut(pixels, ds)
    out_range = voi_output_range(ds)
    arr = apply_voi_lut(arr, ds).astype(np.float64)
    low, high = out_range if out_range else (float(arr.min()), float(arr.max()))
    unit = np.clip((arr - low) / (high - low), 0.0, 1.0) if high > low else np.zeros_like(arr)
    if str(ds.PhotometricInterpretation) == "MONOCHROME1":
        unit = 1.0 - unit
    return unit


@guarded("cxr")
def read_cxr_dicom(path: str | Path) -> Reading[CXR]:
    """A CR/DX chest radiograph as float32 [0, 1]; body part and size are checked before any
    pixel is decoded."""
    header = dicom.read_dicom_header(path, "cxr")
    body_part_warning = check_body_part(path, header, "cxr")
    dicom.check_image_header(path, header, "cxr")
    ds = dicom.read_dicom(path, "cxr")
    dicom.check_pixel_data(path, ds, "cxr")
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if photometric not in {"MONOCHROME1", "MONOCHROME2"}:
        raise IngestError(path, "cxr", f"photometric interpretation {photometric!r}: expected grey")
    warnings = [body_part_warning] if body_part_warning else []
    pixels = ds.pixel_array
    if dicom.number_of_frames(ds) > 1:
        pixels = pixels[0]
        warnings.append(f"{dicom.number_of_frames(ds)} frames: only the first is used")
    image = windowed_unit(ds, pixels).astype(np.float32)
    spacing, spacing_warning = pixel_spacing(ds)
    if spacing_warning:
        warnings.append(spacing_warning)
    cxr = CXR(
        image=image,
        view_position=str(ds.get("ViewPosition", "") or "unknown"),
        pixel_spacing_mm=spacing,
    )
    if cxr.view_position.strip().upper() in LATERAL_VIEWS:
        warnings.append(
            f"ViewPosition {cxr.view_position}: a lateral radiograph; check that the model "
            "was trained on lateral views (the demo model saw frontal ones)"
        )
    cxr.validate()
    details = dicom.dicom_details(ds)
    details.update({"shape": list(image.shape), "view_position": cxr.view_position})
    if spacing is not None:
        details["pixel_spacing"] = list(spacing)
    reading = Reading(part=cxr, warnings=warnings, details=details)
    reading.identifiers = dicom.identifiers(ds)
    reading.demographics = dicom.demographics(ds)
    return reading
