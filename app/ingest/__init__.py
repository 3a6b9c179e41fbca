"""File ingest: every reader turns one input file into a part of a ``PatientCase``.

Bad input raises :class:`IngestError` (file, modality, problem) and never anything else;
:func:`read_file` and :func:`load_case` turn those errors into :class:`FileReport` entries.
"""

from fuselens.app.ingest.case_folder import case_inputs, load_case, read_file
from fuselens.app.ingest.cxr_dicom import read_cxr_dicom
from fuselens.app.ingest.cxr_image import read_cxr_image
from fuselens.app.ingest.detect import detect
from fuselens.app.ingest.ecg_csv import read_ecg_csv
from fuselens.app.ingest.ecg_dicom import read_ecg_dicom
from fuselens.app.ingest.ecg_npy import read_ecg_npy
from fuselens.app.ingest.ecg_wfdb import read_ecg_wfdb
from fuselens.app.ingest.echo_dicom import read_echo_dicom
from fuselens.app.ingest.echo_frames import read_echo_frames
from fuselens.app.ingest.echo_video import read_echo_video
from fuselens.app.ingest.errors import IngestError
from fuselens.app.ingest.labs_csv import read_labs_csv
from fuselens.app.ingest.labs_json import read_labs_json
from fuselens.app.ingest.labs_text import read_labs_text
from fuselens.app.ingest.report import FileReport, Reading

__all__ = [
    "FileReport",
    "IngestError",
    "Reading",
    "case_inputs",
    "detect",
    "load_case",
    "read_cxr_dicom",
    "read_cxr_image",
    "read_ecg_csv",
    "read_ecg_dicom",
    "read_ecg_npy",
    "read_ecg_wfdb",
    "read_echo_dicom",
    "read_echo_frames",
    "read_echo_video",
    "read_file",
    "read_labs_csv",
    "read_labs_json",
    "read_labs_text",
]
