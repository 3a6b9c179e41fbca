"""Which modality and reader a path needs, decided from its content (not its extension alone)."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable
from pathlib import Path
from typing import Any

from fuselens.app.ingest import dicom, limits
from fuselens.app.ingest.cxr_dicom import read_cxr_dicom
from fuselens.app.ingest.cxr_image import read_cxr_image
from fuselens.app.ingest.ecg_csv import TIME_COLUMNS, read_ecg_csv
from fuselens.app.ingest.ecg_dicom import read_ecg_dicom
from fuselens.app.ingest.ecg_npy import read_ecg_npy
from fuselens.app.ingest.ecg_wfdb import read_ecg_wfdb
from fuselens.app.ingest.echo_dicom import read_echo_dicom
from fuselens.app.ingest.echo_frames import frame_files, read_echo_frames
from fuselens.app.ingest.echo_video import read_echo_video
from fuselens.app.ingest.errors import IngestError
from fuselens.app.ingest.labs_csv import REQUIRED, read_labs_csv
from fuselens.app.ingest.labs_json import read_labs_json
from fuselens.app.ingest.labs_text import read_labs_text
from fuselens.app.ingest.leads import canonical_lead
from fuselens.app.ingest.report import Reading
from fuselens.app.ingest.text import bom_encoding, read_text

Reader = Callable[[str | Path], Reading[Any]]
DICOM_READERS: dict[str, Reader] = {
    "ecg": read_ecg_dicom,
    "echo": read_echo_dicom,
    "cxr": read_cxr_dicom,
}


def _video(head: bytes) -> bool:
    return (
        head[4:8] == b"ftyp"
        or (head[:4] == b"RIFF" and head[8:12] == b"AVI ")
        or head[:4] == b"\x1aE\xdf\xa3"
    )


def _image(head: bytes) -> bool:
    return head.startswith((b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"BM", b"II*\x00", b"MM\x00*"))


def _csv_kind(text: str) -> str | None:
    """``"labs"`` or ``"ecg"`` from the first non-comment line of a CSV, else None."""
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        return None
    header = [h.strip() for h in next(csv.reader(io.StringIO(lines[0])))]
    lowered = {h.lower() for h in header}
    if all(col in lowered for col in REQUIRED[:2]):
        return "labs"
    leads = [h for h in header if canonical_lead(h)]
    if leads and all(canonical_lead(h) or h.lower() in TIME_COLUMNS for h in header):
        return "ecg"
    return None


def name_hint(path: str | Path) -> str:
    """The modality a file name suggests (``ecg.csv`` -> ``"ecg"``), else ``"unknown"``."""
    name = Path(path).name.lower()
    words_of = (("labs", ("lab",)), ("ecg", ("ecg", "ekg")), ("echo", ("echo",)), ("cxr", ("cxr",)))
    for modality, words in words_of:
        if any(word in name for word in words):
            return modality
    return "unknown"


def _text_reader(path: Path, text: str) -> tuple[str, Reader]:
    stripped = text.strip()
    if not stripped:
        hint = name_hint(path)
        if hint == "labs":
            return "labs", read_labs_text if path.suffix.lower() != ".csv" else read_labs_csv
        raise IngestError(path, hint, "empty file")
    if stripped[0] in "{[":
        return "labs", read_labs_json
    kind = _csv_kind(text)
    if kind == "labs":
        return "labs", read_labs_csv
    if kind == "ecg":
        return "ecg", read_ecg_csv
    if path.suffix.lower() in {".csv", ".tsv"}:
        raise IngestError(
            path,
            name_hint(path),
            "CSV columns not recognised: expected labs (name,value,unit) "
            "or ECG leads (I, II, ..., V6)",
        )
    return "labs", read_labs_text


def detect(path: str | Path) -> tuple[str, Reader]:
    """``(modality, reader)`` for a file or frame folder, or :class:`IngestError`."""
    path = Path(path)
    if path.is_dir():
        if frame_files(path):
            return "echo", read_echo_frames
        raise IngestError(path, "unknown", "folder holds no frame images")
    if not path.is_file():
        raise IngestError(path, "unknown", "file not found")
    limits.check_bytes(path, name_hint(path), "file_mb", path.stat().st_size, "the file size")
    with path.open("rb") as fh:
        head = fh.read(4096)
    suffix = path.suffix.lower()
    if dicom.is_dicom(path):
        try:
            header = dicom.read_dicom_header(path)
        except IngestError as exc:
            raise IngestError(path, dicom.quick_modality(path), exc.problem) from exc
        modality, _ = dicom.dicom_modality(header)
        if "SOPClassUID" not in header and "Modality" not in header:
            raise IngestError(path, "unknown", "DICOM header holds no SOP class or modality")
        if modality not in DICOM_READERS:
            raise IngestError(
                path,
                "unknown",
                f"unsupported DICOM: {dicom.sop_class_name(header) or 'no SOP class'}, "
                f"modality {header.get('Modality', 'not given')}",
            )
        return modality, DICOM_READERS[modality]
    if suffix in {".dcm", ".dicom"}:
        raise IngestError(path, "unknown", "not a DICOM file (no 'DICM' marker at byte 128)")
    if head.startswith(b"\x93NUMPY"):
        return "ecg", read_ecg_npy
    if _image(head):
        return "cxr", read_cxr_image
    if _video(head):
        return "echo", read_echo_video
    if suffix == ".hea":
        return "ecg", read_ecg_wfdb
    if suffix == ".dat":
        if path.with_suffix(".hea").is_file():
            return "ecg", read_ecg_wfdb
        raise IngestError(path, "ecg", "WFDB signal file without its .hea header")
    if b"\x00" in head and bom_encoding(head) is None:
        raise IngestError(path, "unknown", "unsupported binary file")
    text, _ = read_text(path, name_hint(path))
    return _text_reader(path, text)
