"""Case folders: any mix of inputs -> one PatientCase; bad files reported, the rest still loads."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pydicom
import pytest
from pydicom.uid import UltrasoundMultiFrameImageStorage

from fuselens.app.ingest import IngestError, load_case
from fuselens.app.ingest.case_folder import case_inputs

LABS = "name,value,unit\nNT-proBNP,3100,pg/mL\nHistory,Hypertension,\n"


@pytest.fixture
def case_dir(tmp_path, testdata, write_dicom):
    folder = tmp_path / "P0007"
    folder.mkdir()
    shutil.copy(testdata("waveform_ecg.dcm"), folder / "ecg.dcm")
    shutil.copy(testdata("examples_ybr_color.dcm"), folder / "clip1.dcm")
    shutil.copy(testdata("examples_ybr_color.dcm"), folder / "clip2.dcm")
    write_dicom(
        folder / "echo_A4C.dcm",
        UltrasoundMultiFrameImageStorage,
        "US",
        np.full((3, 32, 32), 90, np.uint8),
        FrameTime=40.0,
    )
    shutil.copy(testdata("RG1_UNCR.dcm"), folder / "cxr.dcm")
    (folder / "labs.csv").write_text(LABS)
    (folder / "broken.dcm").write_bytes(b"\x00" * 64)
    np.savez(folder / "evidence.npz", mask=np.zeros(3))
    (folder / "truth.json").write_text(json.dumps({"labels": {"hf": 1}}))
    (folder / "manifest.json").write_text("{}")
    (folder / "README.md").write_text("# notes")
    return folder


def test_load_mixed_case(case_dir, testdata):
    case, reports = load_case(case_dir)
    assert case.case_id == "P0007"
    assert case.modalities() == ["labs", "ecg", "echo", "cxr"]
    assert sorted(case.echo) == ["A4C", "unknown", "unknown_2"]
    assert all(key == cine.view for key, cine in case.echo.items())
    case.validate()
    by_name = {r.path.rsplit("/", 1)[-1]: r for r in reports}
    assert set(by_name) == {
        "broken.dcm",
        "clip1.dcm",
        "clip2.dcm",
        "cxr.dcm",
        "ecg.dcm",
        "echo_A4C.dcm",
        "labs.csv",
    }
    assert not by_name["broken.dcm"].ok and "not a DICOM file" in by_name["broken.dcm"].error
    assert all(r.ok for name, r in by_name.items() if name != "broken.dcm")
    assert by_name["clip2.dcm"].details["view"] == "unknown_2"
    assert any("broken.dcm" in w for w in case.warnings)
    first = pydicom.dcmread(case_dir / "clip1.dcm")  # first DICOM in natural order
    assert case.identifiers.reveal()["PatientID"] == str(first.PatientID)
    # ecg.dcm is from another (anonymised) patient: flagged, without printing either ID
    ecg_id = str(pydicom.dcmread(case_dir / "ecg.dcm").PatientID)
    assert "PatientID differs from other files: is this one patient?" in by_name["ecg.dcm"].warnings
    assert not any("differs" in w for w in by_name["clip2.dcm"].warnings)
    text = repr(case) + json.dumps(case.to_summary()) + " ".join(case.warnings)
    assert ecg_id not in text


def test_second_ecg_is_reported_not_used(case_dir, testdata):
    shutil.copy(testdata("waveform_ecg.dcm"), case_dir / "ecg_copy.dcm")
    case, reports = load_case(case_dir)
    copy = next(r for r in reports if r.path.endswith("ecg_copy.dcm"))
    assert copy.ok and any("already has ECG from another file" in w for w in copy.warnings)


def test_radiograph_of_another_body_part_is_reported_and_the_rest_loads(case_dir, testdata):
    (case_dir / "cxr.dcm").unlink()
    shutil.copy(testdata("RG3_J2KR.dcm"), case_dir / "knee_or_chest.dcm")
    case, reports = load_case(case_dir)
    assert case.cxr is None and case.modalities() == ["labs", "ecg", "echo"]
    report = next(r for r in reports if r.path.endswith("knee_or_chest.dcm"))
    assert not report.ok and report.modality == "cxr"
    assert "'EXTREMITY' is not the chest" in report.error
    assert any("knee_or_chest.dcm" in w for w in case.warnings)


def test_ignored_and_sidecar_files(tmp_path):
    for name in ["ecg.npy", "ecg.json", "rec.hea", "rec.dat", "evidence.npz", "notes.md", ".x"]:
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in case_inputs(tmp_path)] == ["ecg.npy", "rec.hea"]


def test_not_a_folder(tmp_path):
    with pytest.raises(IngestError, match="not a case folder"):
        load_case(tmp_path / "missing")
