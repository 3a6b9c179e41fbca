"""Opening cases in the workstation: demo cases, uploaded files and zips, the file table."""

from __future__ import annotations

import shutil
import zipfile

import pytest
import torch

from fuselens.app.demo_cases import load_catalogue
from fuselens.app.session import (
    ExplanationCache,
    open_demo,
    open_uploads,
    resolve_device,
    status_table,
)


@pytest.fixture(scope="module")
def demos():
    return {d.key: d for d in load_catalogue()}


@pytest.fixture(scope="module")
def cases_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("demo_cases")


def test_open_demo_attaches_truth_and_a_neutral_case_id(demos, cases_dir):
    loaded = open_demo(demos["hf-clear"], cases_dir)
    assert loaded.case.case_id == "demo-hf-clear" == loaded.key
    assert loaded.case.truth is not None and loaded.case.truth.labels["heart_failure"] == 1
    assert loaded.case.modalities() == ["labs", "ecg", "echo", "cxr"]
    table = status_table(loaded.reports)
    assert list(table["Status"]) == ["read"] * len(loaded.reports)
    assert set(table["File"]) >= {"labs.csv", "ecg.dcm", "cxr.dcm", "echo_A4C.dcm"}
    ecg_row = table[table["File"] == "ecg.dcm"].iloc[0]
    assert ecg_row["Read as"] == "ECG" and "12 leads" in ecg_row["Details"]
    assert "500 Hz" in ecg_row["Details"]


def test_real_ecg_demo_has_no_truth(demos, cases_dir):
    loaded = open_demo(demos["real-ecg"], cases_dir)
    assert loaded.case.truth is None and loaded.case.modalities() == ["ecg"]


def test_uploaded_files_and_a_bad_file_each_get_a_status_line(demos, cases_dir, tmp_path):
    folder = open_demo(demos["hf-clear"], cases_dir).folder
    picked = [folder / "labs.csv", folder / "ecg.dcm"]
    bad = tmp_path / "notes.dcm"
    bad.write_bytes(b"this is not DICOM")
    loaded = open_uploads([*picked, bad], tmp_path)
    assert loaded.case.modalities() == ["labs", "ecg"]
    assert loaded.key.startswith("upload-") and "P000" not in loaded.key
    table = status_table(loaded.reports)
    rows = {r["File"]: r for _, r in table.iterrows()}
    assert rows["notes.dcm"]["Status"] == "error" and rows["notes.dcm"]["Details"]
    assert rows["labs.csv"]["Status"] == "read"
    again = open_uploads([*picked, bad], tmp_path)
    assert again.key == loaded.key


def test_zip_of_a_case_folder_opens_as_that_case(demos, cases_dir, tmp_path):
    folder = open_demo(demos["missing-modalities"], cases_dir).folder
    archive = tmp_path / "case.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for path in folder.iterdir():
            zf.write(path, f"Smith_John/{path.name}")
        zf.writestr("../escape.txt", "outside")
    loaded = open_uploads([archive], tmp_path)
    assert loaded.case.modalities() == ["labs", "echo"]
    assert "Smith" not in loaded.key
    table = status_table(loaded.reports)
    unsafe = table[table["Details"].str.contains("unsafe path")]
    assert len(unsafe) == 1 and unsafe.iloc[0]["Status"] == "error"
    assert not (tmp_path / "escape.txt").exists()


def test_broken_zip_is_reported_not_raised(tmp_path):
    archive = tmp_path / "broken.zip"
    archive.write_bytes(b"PK\x03\x04 truncated")
    loaded = open_uploads([archive], tmp_path)
    table = status_table(loaded.reports)
    assert table.iloc[0]["Status"] == "error" and "not a readable zip" in table.iloc[0]["Details"]
    assert loaded.case.modalities() == []


def test_upload_of_nothing_is_refused(tmp_path):
    with pytest.raises(ValueError, match="no files"):
        open_uploads([], tmp_path)


def test_resolve_device():
    assert resolve_device("cpu") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    with pytest.raises(ValueError):
        resolve_device("tpu")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA"):
            resolve_device("cuda")


def test_explanation_cache_drops_least_recently_used():
    cache = ExplanationCache(capacity=2)
    cache.put(("a", "t", "yes"), 1)
    cache.put(("b", "t", "yes"), 2)
    assert cache.get(("a", "t", "yes")) == 1
    cache.put(("c", "t", "yes"), 3)
    assert ("b", "t", "yes") not in cache and ("a", "t", "yes") in cache and len(cache) == 2
    assert cache.get(("b", "t", "yes")) is None


def test_upload_copies_do_not_touch_the_originals(demos, cases_dir, tmp_path):
    src = tmp_path / "src"
    shutil.copytree(open_demo(demos["none-clear"], cases_dir).folder, src)
    before = sorted(p.name for p in src.iterdir())
    open_uploads(sorted(src.iterdir()), tmp_path)
    assert sorted(p.name for p in src.iterdir()) == before
