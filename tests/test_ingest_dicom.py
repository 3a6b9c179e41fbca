"""DICOM safety: damaged files, identifiers kept apart, modality from the header not the name."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pydicom
import pytest
from pydicom.uid import (
    ComputedRadiographyImageStorage,
    SecondaryCaptureImageStorage,
    UltrasoundMultiFrameImageStorage,
)

from fuselens.app.ingest import (
    IngestError,
    read_cxr_dicom,
    read_ecg_dicom,
    read_echo_dicom,
    read_file,
)
from fuselens.app.ingest.dicom import dicom_modality, identifiers, read_dicom_header


def test_truncated_pixel_data(testdata, tmp_path):
    raw = Path(testdata("RG1_UNCR.dcm")).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(IngestError, match="truncated DICOM file: pixel data holds") as info:
        read_cxr_dicom(path)
    assert str(info.value).startswith("cut.dcm: cxr: ")


def test_truncated_compressed_echo(testdata, tmp_path):
    raw = Path(testdata("examples_ybr_color.dcm")).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(raw[: len(raw) // 2])
    with pytest.raises(IngestError, match="truncated") as info:
        read_echo_dicom(path)
    assert info.value.modality == "echo"


def test_truncated_waveform_named_by_modality(testdata, tmp_path):
    raw = Path(testdata("waveform_ecg.dcm")).read_bytes()
    path = tmp_path / "cut.dcm"
    path.write_bytes(raw[: len(raw) // 2])
    modality, part, report = read_file(path)
    assert part is None and not report.ok and modality == "ecg"
    assert report.error.startswith("cut.dcm: ecg: truncated or corrupt DICOM file")


def test_non_dicom_named_dcm(tmp_path):
    path = tmp_path / "scan.dcm"
    path.write_text("this is a text file, not an image")
    with pytest.raises(IngestError, match="not a DICOM file"):
        read_cxr_dicom(path)
    modality, part, report = read_file(path)
    assert (modality, part, report.ok) == ("unknown", None, False)
    assert "not a DICOM file" in report.error


def test_dicom_without_pixel_data(tmp_path, write_dicom):
    path = write_dicom(
        tmp_path / "nopix.dcm",
        ComputedRadiographyImageStorage,
        "CR",
        Rows=512,
        Columns=512,
        PhotometricInterpretation="MONOCHROME2",
    )
    with pytest.raises(IngestError, match="no pixel data"):
        read_cxr_dicom(path)
    assert "no pixel data" in read_file(path)[2].error


def test_missing_file():
    with pytest.raises(IngestError, match="file not found"):
        read_ecg_dicom("/nonexistent/ecg.dcm")


def test_identifiers_extracted_and_redacted(testdata):
    path = testdata("waveform_ecg.dcm")
    ds = pydicom.dcmread(path)
    reading = read_ecg_dicom(path)
    fields = reading.identifiers.reveal()
    assert fields["PatientName"] == str(ds.PatientName)
    assert fields["PatientID"] == str(ds.PatientID)
    assert fields["InstitutionName"] == str(ds.InstitutionName)
    assert str(ds.PatientID) not in repr(reading.identifiers)
    assert str(ds.PatientID) not in repr(reading) + str(reading.details)
    report = read_file(path)[2]
    assert str(ds.PatientID) not in str(report.to_dict())
    assert report.to_dict(show_identifiers=True)["identifiers"]["PatientID"] == str(ds.PatientID)


def test_modality_from_header_not_extension(testdata, tmp_path):
    for name, expected in [
        ("waveform_ecg.dcm", "ecg"),
        ("examples_ybr_color.dcm", "echo"),
        ("RG1_UNCR.dcm", "cxr"),
    ]:
        disguised = tmp_path / f"{expected}_file.png"  # wrong extension on purpose
        shutil.copy(testdata(name), disguised)
        modality, part, report = read_file(disguised)
        assert modality == expected and report.ok, report.error
        assert dicom_modality(read_dicom_header(disguised))[1] == "sop_class"


def test_modality_from_content_for_secondary_capture(tmp_path, write_dicom):
    frames = np.zeros((4, 32, 32), np.uint8)
    frames[:, 8:24, 8:24] = 120
    path = write_dicom(tmp_path / "sc.dcm", SecondaryCaptureImageStorage, "OT", frames)
    assert dicom_modality(read_dicom_header(path)) == ("echo", "content")
    modality, part, report = read_file(path)
    assert modality == "echo" and report.ok and part.frames.shape == (4, 32, 32)


def test_unsupported_dicom(tmp_path, write_dicom):
    path = write_dicom(
        tmp_path / "rt.dcm", "1.2.840.10008.5.1.4.1.1.481.3", "RTSTRUCT"
    )  # RT Structure Set
    modality, part, report = read_file(path)
    assert not report.ok and "unsupported DICOM" in report.error


def test_identifiers_only_from_identifying_fields(tmp_path, write_dicom):
    path = write_dicom(
        tmp_path / "us.dcm",
        UltrasoundMultiFrameImageStorage,
        "US",
        np.zeros((3, 32, 32), np.uint8),
        InstitutionName="General Hospital",
        AccessionNumber="ACC123",
        PatientBirthDate="19500101",
    )
    fields = identifiers(pydicom.dcmread(path)).reveal()
    assert fields["AccessionNumber"] == "ACC123" and fields["PatientBirthDate"] == "19500101"
    assert fields["PatientName"] == "Testperson^Alice"
    assert "Modality" not in fields
