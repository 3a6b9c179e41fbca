"""Safe DICOM reading, identifying fields, and modality classification from the header."""

from __future__ import annotations

import re
import warnings
import zlib
from pathlib import Path
from typing import Any

import pydicom
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError
from pydicom.filebase import DicomBytesIO
from pydicom.filereader import read_dataset, read_file_meta_info, read_partial
from pydicom.pixels.utils import get_expected_length
from pydicom.uid import UID, DeflatedExplicitVRLittleEndian

from fuselens.app.ingest import limits
from fuselens.app.ingest.errors import IngestError, describe
from fuselens.model_zoo.case import Demographics, Identifiers

ECG_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.9.1.1",  # 12-lead ECG Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.1.2",  # General ECG Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.1.3",  # Ambulatory ECG Waveform Storage
    "1.2.840.10008.5.1.4.1.1.9.1.4",  # General 32-bit ECG Waveform Storage
}
US_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.3.1",  # Ultrasound Multi-frame Image Storage
    "1.2.840.10008.5.1.4.1.1.3",  # Ultrasound Multi-frame Image Storage (retired)
    "1.2.840.10008.5.1.4.1.1.6.1",  # Ultrasound Image Storage
    "1.2.840.10008.5.1.4.1.1.6",  # Ultrasound Image Storage (retired)
}
CXR_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.1",  # Computed Radiography Image Storage
    "1.2.840.10008.5.1.4.1.1.1.1",  # Digital X-Ray Image Storage - For Presentation
    "1.2.840.10008.5.1.4.1.1.1.1.1",  # Digital X-Ray Image Storage - For Processing
}
MODALITY_TAGS = {"ECG": "ecg", "US": "echo", "CR": "cxr", "DX": "cxr"}
PIXEL_GROUP = 0x7FE0
HEADER_STEPS = (64 * 1024, 1024**2, 16 * 1024**2)  # inflated bytes tried for a deflated header
CHUNK = 1 << 20

IDENTIFYING_FIELDS = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientAddress",
    "PatientTelephoneNumbers",
    "OtherPatientIDs",
    "OtherPatientNames",
    "PatientMotherBirthName",
    "MedicalRecordLocator",
    "InstitutionName",
    "InstitutionAddress",
    "InstitutionalDepartmentName",
    "AccessionNumber",
    "ReferringPhysicianName",
    "PerformingPhysicianName",
    "OperatorsName",
    "PhysiciansOfRecord",
    "StudyID",
    "StationName",
    "DeviceSerialNumber",
    "StudyInstanceUID",
    "SeriesInstanceUID",
    "SOPInstanceUID",
)


def is_dicom(path: str | Path) -> bool:
    """True when the file carries the ``DICM`` marker at byte 128."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(132)
    except OSError:
        return False
    return len(head) == 132 and head[128:132] == b"DICM"


def _dataset_offset(meta: Dataset) -> int:
    """Where the dataset starts: preamble, ``DICM``, group length element, file meta."""
    return 128 + 4 + 12 + int(meta.FileMetaInformationGroupLength)


def _inflate(path: str | Path, modality: str, meta: Dataset, limit: int) -> tuple[bytes, bool]:
    """Up to ``limit`` inflated bytes of a deflated dataset, and whether that was all of it."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    out = bytearray()
    with open(path, "rb") as fh:
        fh.seek(_dataset_offset(meta))
        while len(out) <= limit and not inflater.eof:
            chunk = inflater.unconsumed_tail or fh.read(CHUNK)
            if not chunk:
                break
            try:
                out += inflater.decompress(chunk, limit + 1 - len(out))
            except zlib.error as exc:
                raise IngestError(path, modality, f"corrupt deflated DICOM: {exc}") from exc
    whole = len(out) <= limit
    del out[limit:]
    return bytes(out), whole


def _inflated_size(path: str | Path, modality: str, meta: Dataset) -> int:
    """The inflated length of a deflated dataset, counted while streaming (nothing kept)."""
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    size = 0
    with open(path, "rb") as fh:
        fh.seek(_dataset_offset(meta))
        while not inflater.eof:
            chunk = inflater.unconsumed_tail or fh.read(CHUNK)
            if not chunk:
                break
            try:
                size += len(inflater.decompress(chunk, CHUNK))
            except zlib.error as exc:
                raise IngestError(path, modality, f"corrupt deflated DICOM: {exc}") from exc
    return size


def _at_pixels(tag: Any, vr: Any, length: int) -> bool:
    return tag.group >= PIXEL_GROUP


def _partial_header(head: bytes) -> Dataset | None:
    """The header parsed from a prefix of the inflated dataset; None when the prefix ends
    before the pixel data (or inside an element)."""
    buffer = DicomBytesIO(head)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = read_dataset(buffer, False, True, stop_when=_at_pixels)
        except Exception:  # cut inside an element: try a longer prefix
            return None
    if caught or buffer.tell() >= len(head):
        return None
    return ds


def _deflated_header(path: str | Path, modality: str, meta: Dataset) -> Dataset:
    """The header of a deflated file from its first inflated bytes, never the whole dataset."""
    for step in HEADER_STEPS:
        head, whole = _inflate(path, modality, meta, step)
        ds = read_dataset(DicomBytesIO(head), False, True) if whole else _partial_header(head)
        if ds is not None:
            ds.file_meta = meta
            return ds
    raise IngestError(path, modality, "DICOM header is larger than 16 MB: refused")


def _meta(path: str | Path, modality: str) -> Dataset:
    try:
        return read_file_meta_info(path)
    except Exception as exc:  # pydicom raises many kinds on damaged files
        raise IngestError(path, modality, f"not a valid DICOM file: {describe(exc)}") from exc


def _dcmread(path: str | Path, modality: str, stop_before_pixels: bool) -> Dataset:
    meta = _meta(path, modality)
    deflated = meta.get("TransferSyntaxUID") == DeflatedExplicitVRLittleEndian
    if deflated and "FileMetaInformationGroupLength" in meta:
        if stop_before_pixels:
            return _deflated_header(path, modality, meta)
        size = _inflated_size(path, modality, meta)
        limits.check_bytes(path, modality, "pixel_mb", size, "the inflated dataset")
    if stop_before_pixels:
        return pydicom.dcmread(path, stop_before_pixels=True, defer_size="1 MB")
    return pydicom.dcmread(path)


def _read(path: str | Path, modality: str, stop_before_pixels: bool) -> Dataset:
    if not Path(path).is_file():
        raise IngestError(path, modality, "file not found")
    if not is_dicom(path):
        raise IngestError(path, modality, "not a DICOM file (no 'DICM' marker at byte 128)")
    limits.check_bytes(path, modality, "file_mb", Path(path).stat().st_size, "the file size")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            ds = _dcmread(path, modality, stop_before_pixels)
        except IngestError:
            raise
        except InvalidDicomError as exc:
            raise IngestError(path, modality, f"not a valid DICOM file: {describe(exc)}") from exc
        except Exception as exc:  # pydicom raises many kinds on damaged files
            raise IngestError(
                path, modality, f"truncated or corrupt DICOM file: {describe(exc)}"
            ) from exc
    if any("end of file" in str(w.message).lower() for w in caught):
        raise IngestError(path, modality, "truncated DICOM file: it ends inside the pixel data")
    return ds


def read_dicom_header(path: str | Path, modality: str = "unknown") -> Dataset:
    """The header only (no pixel data), or :class:`IngestError`."""
    return _read(path, modality, stop_before_pixels=True)


def read_dicom(path: str | Path, modality: str = "unknown") -> Dataset:
    """The whole dataset, or :class:`IngestError` for a missing, non-DICOM or truncated file."""
    return _read(path, modality, stop_before_pixels=False)


def sop_class_name(ds: Dataset) -> str:
    uid = ds.get("SOPClassUID")
    return uid.name if isinstance(uid, UID) else str(uid or "")  # a damaged tag may hold a list


def dicom_modality(ds: Dataset) -> tuple[str, str]:
    """``(modality, how)``: from the SOP Class UID, else the Modality tag, else the content."""
    uid = str(ds.get("SOPClassUID", ""))
    for classes, modality in (
        (ECG_SOP_CLASSES, "ecg"),
        (US_SOP_CLASSES, "echo"),
        (CXR_SOP_CLASSES, "cxr"),
    ):
        if uid in classes:
            return modality, "sop_class"
    tag = str(ds.get("Modality", "")).upper()
    if tag in MODALITY_TAGS:
        return MODALITY_TAGS[tag], "modality_tag"
    if "WaveformSequence" in ds:
        return "ecg", "content"
    if "Rows" in ds and "Columns" in ds:
        if int(ds.get("NumberOfFrames", 1) or 1) > 1:
            return "echo", "content"
        if str(ds.get("PhotometricInterpretation", "")).startswith("MONOCHROME"):
            return "cxr", "content"
    return "unknown", "none"


def quick_modality(path: str | Path) -> str:
    """The modality from group 0008 alone (SOP class, Modality): enough to name a damaged file."""
    try:
        with open(path, "rb") as fh:
            ds = read_partial(fh, stop_when=lambda tag, vr, length: tag.group > 0x0008)
    except Exception:  # a file too damaged to classify stays "unknown"
        return "unknown"
    modality, how = dicom_modality(ds)
    return modality if how in {"sop_class", "modality_tag"} else "unknown"


def identifiers(ds: Dataset) -> Identifiers:
    """Identifying fields, kept apart from the case."""
    fields: dict[str, str] = {}
    for keyword in IDENTIFYING_FIELDS:
        value = ds.get(keyword)
        if value is not None and str(value).strip():
            fields[keyword] = str(value)
    return Identifiers(fields)


def demographics(ds: Dataset) -> Demographics | None:
    """Age (from PatientAge, e.g. ``063Y``) and sex, when the header has them."""
    age_text = str(ds.get("PatientAge", "") or "")
    sex = str(ds.get("PatientSex", "") or "").upper()
    match = re.fullmatch(r"(\d{1,3})([DWMY])", age_text.strip())
    age = None
    if match:
        per_year = {"D": 365.25, "W": 52.18, "M": 12.0, "Y": 1.0}[match.group(2)]
        age = round(int(match.group(1)) / per_year, 2)
    if age is None and sex not in {"M", "F", "O"}:
        return None
    return Demographics(age=age, sex=sex if sex in {"M", "F", "O"} else "")


def dicom_details(ds: Dataset) -> dict[str, Any]:
    """Non-identifying header facts worth showing."""
    out: dict[str, Any] = {"format": "DICOM", "sop_class": sop_class_name(ds)}
    if "Modality" in ds:
        out["dicom_modality"] = str(ds.Modality)
    meta = getattr(ds, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        out["transfer_syntax"] = meta.TransferSyntaxUID.name
    if "PhotometricInterpretation" in ds:
        out["photometric_interpretation"] = str(ds.PhotometricInterpretation)
    return out


def number_of_frames(ds: Dataset) -> int:
    try:
        return int(ds.get("NumberOfFrames", 1) or 1)
    except (TypeError, ValueError):
        return 1


def _header_int(ds: Dataset, keyword: str, default: int) -> int:
    try:
        return int(ds.get(keyword, default) or default)
    except (TypeError, ValueError):
        return default


def check_image_header(path: str | Path, ds: Dataset, modality: str) -> tuple[int, int]:
    """Rows and columns from the header, refusing images too large to decode."""
    if "Rows" not in ds or "Columns" not in ds:
        raise IngestError(
            path, modality, "no image size (Rows/Columns) in the DICOM header: truncated file?"
        )
    rows, cols = int(ds.Rows), int(ds.Columns)
    if rows < 1 or cols < 1:
        raise IngestError(path, modality, f"image size {rows} x {cols} is empty")
    limits.check(path, modality, "image_pixels", rows * cols, f"each {rows} x {cols} frame")
    frames = max(number_of_frames(ds), 1)
    samples = max(_header_int(ds, "SamplesPerPixel", 1), 1)
    bits = max(_header_int(ds, "BitsAllocated", 8), 1)
    decoded = frames * rows * cols * samples * bits // 8
    what = f"the decoded pixel data ({frames} frames of {rows} x {cols} x {samples} x {bits} bits)"
    limits.check_bytes(path, modality, "pixel_mb", decoded, what)
    return rows, cols


def check_pixel_data(path: str | Path, ds: Dataset, modality: str) -> None:
    """Pixel data present and, for uncompressed data, as long as the header says."""
    if "PixelData" not in ds:
        raise IngestError(path, modality, "DICOM file has no pixel data")
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    if syntax is not None and not syntax.is_compressed:
        expected = get_expected_length(ds, unit="bytes")
        actual = len(ds.PixelData)
        if actual < expected:
            raise IngestError(
                path,
                modality,
                f"truncated DICOM file: pixel data holds {actual:,} of {expected:,} bytes",
            )
