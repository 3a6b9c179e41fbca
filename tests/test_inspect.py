"""``fuselens inspect``: JSON fields, errors naming the file, and no identifiers unless asked."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pydicom
import pytest

from fuselens.app.cli import main

REAL = ("waveform_ecg.dcm", "examples_ybr_color.dcm", "RG1_J2KR.dcm")


def run(capsys, *args: str) -> tuple[int, str, str]:
    code = main(["inspect", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_json_fields_for_each_modality(capsys, testdata):
    code, out, _ = run(capsys, *(testdata(n) for n in REAL), "--json")
    assert code == 0
    ecg, echo, cxr = json.loads(out)
    assert (ecg["modality"], ecg["ok"]) == ("ecg", True)
    assert ecg["leads"][0] == "I" and ecg["leads"][-1] == "V6" and len(ecg["leads"]) == 12
    assert ecg["sampling_rate"] == 1000 and ecg["samples"] == 10000
    assert (echo["modality"], echo["frames"], echo["view"]) == ("echo", 30, "unknown")
    assert echo["frame_rate"] == pytest.approx(30.0, abs=0.01)
    assert echo["photometric_interpretation"] == "YBR_FULL_422"
    assert (cxr["modality"], cxr["shape"]) == ("cxr", [1955, 1841])
    assert cxr["photometric_interpretation"] == "MONOCHROME1"
    assert all(obj["path"] for obj in (ecg, echo, cxr))


def test_text_output(capsys, testdata):
    code, out, _ = run(capsys, testdata("waveform_ecg.dcm"))
    assert code == 0
    assert "ecg (DICOM)" in out
    assert "leads: I, II, III, aVR, aVL, aVF, V1, V2, V3, V4, V5, V6" in out
    assert "sampling rate (Hz): 1000" in out


def test_never_shows_identifiers_unless_asked(capsys, testdata):
    paths = [testdata(n) for n in REAL]
    secrets = set()
    for path in paths:
        ds = pydicom.dcmread(path, stop_before_pixels=True)
        secrets |= {str(ds.PatientName), str(ds.PatientID)}
    for flags in ([], ["--json"]):
        code, out, err = run(capsys, *paths, *flags)
        assert code == 0
        for secret in secrets:
            assert secret not in out + err, secret
    code, out, _ = run(capsys, *paths, "--json", "--show-identifiers")
    shown = json.loads(out)
    assert shown[0]["identifiers"]["PatientID"] == str(pydicom.dcmread(paths[0]).PatientID)
    code, out, _ = run(capsys, paths[2], "--show-identifiers")
    assert str(pydicom.dcmread(paths[2]).PatientName) in out


def test_corrupt_file_exits_non_zero_naming_it(tmp_path, testdata):
    bad = tmp_path / "ecg_scan.dcm"
    bad.write_bytes(b"not a dicom at all")
    good = testdata("waveform_ecg.dcm")
    proc = subprocess.run(
        [sys.executable, "-m", "fuselens.app.cli", "inspect", good, str(bad)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode != 0
    assert "ecg_scan.dcm: unknown: not a DICOM file" in proc.stdout
    assert "leads: I, II" in proc.stdout  # the good file is still reported
    assert "1 of 2 inputs could not be read" in proc.stderr


def test_json_error_object(capsys, tmp_path, testdata):
    raw = Path(testdata("RG1_UNCR.dcm")).read_bytes()
    bad = tmp_path / "cxr.dcm"
    bad.write_bytes(raw[:50_000])
    code, out, _ = run(capsys, str(bad), "--json")
    assert code == 1
    (obj,) = json.loads(out)
    assert obj["ok"] is False and obj["modality"] == "cxr"
    assert obj["error"].startswith("cxr.dcm: cxr: truncated DICOM file")


def test_case_folder(capsys, tmp_path, testdata):
    folder = tmp_path / "P0001"
    folder.mkdir()
    shutil.copy(testdata("waveform_ecg.dcm"), folder / "ecg.dcm")
    (folder / "labs.csv").write_text("name,value,unit\nSodium,128,mmol/L\n")
    (folder / "truth.json").write_text("{}")
    code, out, _ = run(capsys, str(folder), "--json")
    assert code == 0
    objects = json.loads(out)
    assert sorted(o["modality"] for o in objects) == ["ecg", "labs"]
    assert all(o["case"] == "P0001" for o in objects)
    code, out, _ = run(capsys, str(folder))
    assert out.startswith("case P0001:") and "lab items: Sodium" in out
    ds = pydicom.dcmread(folder / "ecg.dcm", stop_before_pixels=True)
    assert str(ds.PatientID) not in out


def test_inspect_and_help_answer_without_loading_pytorch(testdata):
    """The CLI's light commands do not import the model stack (``import fuselens`` loads the
    public API's names on first use)."""
    code = (
        "import sys\n"
        "from fuselens.app.cli import main\n"
        f"assert main(['inspect', {testdata('waveform_ecg.dcm')!r}]) == 0\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in ('torch', 'scipy.signal', 'shap') if m in sys.modules))\n"
    )
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip().splitlines()[-1] == "[]"
