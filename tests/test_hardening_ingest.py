"""Issue 17: hostile inputs are refused by name before they are decoded or unpacked."""

from __future__ import annotations

import io
import shutil
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pydicom
import pytest
import wfdb
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pydicom.uid import DeflatedExplicitVRLittleEndian

from fuselens.app.ingest import IngestError, limits, load_case, read_file
from fuselens.app.ingest.archive import case_root, extract_zip
from fuselens.model_zoo.case import STANDARD_LEADS

US_MULTIFRAME = "1.2.840.10008.5.1.4.1.1.3.1"
LABS = "name,value,unit,low,high\nSodium,142,mmol/L,135,145\n"


def ecg_csv(seconds: float, rate: int = 250) -> str:
    """A 12-lead ECG CSV of ``seconds`` at ``rate`` Hz, small amplitudes in mV."""
    n = int(seconds * rate)
    signal = 0.5 * np.sin(np.linspace(0, 2 * np.pi * seconds, n))
    lines = [f"# sampling_rate={rate}", ",".join(STANDARD_LEADS)]
    lines += [",".join([f"{v:.3f}"] * len(STANDARD_LEADS)) for v in signal]
    return "\n".join(lines) + "\n"


def zip_of(path: Path, members: dict[str, bytes]) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
    return path


def never(*args, **kwargs):
    """Stands in for a decoder that a refused file must never reach."""
    raise AssertionError("decoded a file that should have been refused")


def report_of(reports: list, name: str):
    return next(r for r in reports if Path(r.path).name == name)


def test_zip_bomb_ecg_csv_is_refused_by_duration(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSELENS_MAX_ECG_SECONDS", "30")
    case = tmp_path / "case"
    case.mkdir()
    (case / "ecg.csv").write_text(ecg_csv(40))
    (case / "labs.csv").write_text(LABS)
    loaded, reports = load_case(case)
    ecg = report_of(reports, "ecg.csv")
    assert not ecg.ok and ecg.modality == "ecg"
    assert "ecg.csv" in ecg.error and "FUSELENS_MAX_ECG_SECONDS" in ecg.error
    assert loaded.labs is not None and loaded.ecg is None


def test_zip_bomb_ecg_csv_is_refused_by_samples_before_parsing(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSELENS_MAX_ECG_VALUES", "11000")
    path = tmp_path / "ecg.csv"
    path.write_text(ecg_csv(4))
    monkeypatch.setattr("fuselens.app.ingest.ecg_csv._table", never)
    _, _, report = read_file(path)
    assert not report.ok and "FUSELENS_MAX_ECG_VALUES" in report.error


def test_zip_bomb_ecg_csv_is_refused_by_text_size(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSELENS_MAX_TEXT_MB", "0.1")
    path = tmp_path / "ecg.csv"
    path.write_text(ecg_csv(20))
    _, _, report = read_file(path)
    assert not report.ok and report.modality == "ecg"
    assert "FUSELENS_MAX_TEXT_MB" in report.error and "MB" in report.error


def test_zip_bomb_member_is_refused_from_its_declared_size(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSELENS_MAX_FILE_MB", "1")
    archive = zip_of(tmp_path / "case.zip", {"ecg.csv": b"0" * 3_000_000, "labs.csv": LABS})
    out = tmp_path / "out"
    out.mkdir()
    reports = extract_zip(archive, out)
    assert [r.path for r in reports] == ["ecg.csv"]
    assert reports[0].modality == "ecg" and "FUSELENS_MAX_FILE_MB" in reports[0].error
    assert sorted(p.name for p in out.iterdir()) == ["labs.csv"]


def test_zip_bomb_total_size_is_refused_before_unpacking(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSELENS_MAX_ZIP_TOTAL_MB", "1")
    members = {"a.csv": b"0" * 600_000, "b.csv": b"0" * 600_000}
    archive = zip_of(tmp_path / "case.zip", members)
    with pytest.raises(IngestError, match="FUSELENS_MAX_ZIP_TOTAL_MB") as info:
        extract_zip(archive, tmp_path)
    assert info.value.path == str(archive)
    assert not (tmp_path / "a.csv").exists()


def test_zip_bomb_lying_sizes_never_writes_past_the_declared_size(tmp_path):
    archive = zip_of(tmp_path / "case.zip", {"zeros.bin": bytes(2_000_000)})
    data = bytearray(archive.read_bytes())
    central = data.rfind(b"PK\x01\x02")
    data[central + 24 : central + 28] = struct.pack("<I", 1000)  # uncompressed size: 1000
    archive.write_bytes(bytes(data))
    out = tmp_path / "out"
    out.mkdir()
    with pytest.raises(IngestError, match="not a readable zip"):
        extract_zip(archive, out)
    assert not list(out.iterdir())


def test_zip_bomb_streaming_count_refuses_a_member_past_the_limit(tmp_path, monkeypatch):
    archive = zip_of(tmp_path / "case.zip", {"ecg.csv": b"0,0\n"})
    monkeypatch.setenv("FUSELENS_MAX_FILE_MB", "1")
    monkeypatch.setattr("fuselens.app.ingest.archive.CHUNK", 1 << 16)
    # a member that unpacks past its declared size (zipfile itself stops at the declared size)
    monkeypatch.setattr(zipfile.ZipFile, "open", lambda self, info: io.BytesIO(bytes(3 << 20)))
    out = tmp_path / "out"
    out.mkdir()
    reports = extract_zip(archive, out)
    assert "unpacked size" in reports[0].error and "FUSELENS_MAX_FILE_MB" in reports[0].error
    assert not (out / "ecg.csv").exists()


def test_zip_bomb_nested_folders_is_refused_without_recursion(tmp_path):
    name = "d/" * 1100 + "labs.csv"
    archive = zip_of(tmp_path / "case.zip", {name: LABS})
    with pytest.raises(IngestError, match="FUSELENS_MAX_ZIP_DEPTH"):
        extract_zip(archive, tmp_path / "out")


def test_zip_bomb_entry_count_is_refused(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSELENS_MAX_ZIP_MEMBERS", "10")
    archive = zip_of(tmp_path / "case.zip", {f"{n}.txt": b"x" for n in range(11)})
    with pytest.raises(IngestError, match="FUSELENS_MAX_ZIP_MEMBERS"):
        extract_zip(archive, tmp_path)


def test_nested_case_folder_is_found_without_recursion(tmp_path):
    archive = zip_of(tmp_path / "case.zip", {"a/b/c/labs.csv": LABS})
    extract_zip(archive, tmp_path / "out")
    assert case_root(tmp_path / "out") == tmp_path / "out" / "a" / "b" / "c"


def write_cine(path: Path, frames: int, size: int, syntax=DeflatedExplicitVRLittleEndian) -> Path:
    ds = pydicom.Dataset()
    ds.file_meta = pydicom.dataset.FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = syntax
    ds.file_meta.MediaStorageSOPClassUID = US_MULTIFRAME
    ds.file_meta.MediaStorageSOPInstanceUID = pydicom.uid.generate_uid()
    ds.SOPClassUID = US_MULTIFRAME
    ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID
    ds.Modality = "US"
    ds.set_pixel_data(np.zeros((frames, size, size), np.uint8), "MONOCHROME2", 8)
    ds.FrameTime = 33.3
    ds.save_as(path, enforce_file_format=True)
    return path


def test_deflated_dicom_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSELENS_MAX_PIXEL_MB", "1")
    path = write_cine(tmp_path / "echo_A4C.dcm", 30, 256)
    assert path.stat().st_size < 100_000
    monkeypatch.setattr(pydicom.filereader.zlib, "decompress", never)
    _, _, report = read_file(path)
    assert not report.ok and report.modality == "echo"
    assert "30 frames of 256 x 256" in report.error and "FUSELENS_MAX_PIXEL_MB" in report.error


def test_deflated_dicom_within_limits_still_reads(tmp_path):
    path = write_cine(tmp_path / "echo_A4C.dcm", 4, 64)
    _, part, report = read_file(path)
    assert report.ok, report.error
    assert part.frames.shape == (4, 64, 64) and part.view == "A4C"


def test_deflated_dicom_with_a_long_header_still_reads(tmp_path, testdata):
    ds = pydicom.dcmread(testdata("waveform_ecg.dcm"))
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    path = tmp_path / "ecg.dcm"
    ds.save_as(path)
    _, part, report = read_file(path)
    assert report.ok, report.error
    assert part.signal.shape[0] == 12


def test_dicom_frame_count_bomb_is_refused_from_its_header(tmp_path, monkeypatch, testdata):
    monkeypatch.setenv("FUSELENS_MAX_PIXEL_MB", "10")
    ds = pydicom.dcmread(testdata("examples_ybr_color.dcm"))
    ds.NumberOfFrames = 10_000
    path = tmp_path / "loop.dcm"
    ds.save_as(path)
    _, _, report = read_file(path)
    assert not report.ok and "10000 frames" in report.error and "PIXEL_MB" in report.error


def test_png_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSELENS_MAX_IMAGE_PIXELS", "10000")
    path = tmp_path / "cxr.png"
    Image.new("L", (200, 200)).save(path)
    monkeypatch.setattr(Image.Image, "load", never)
    _, _, report = read_file(path)
    assert not report.ok and report.modality == "cxr"
    assert "200 x 200" in report.error and "FUSELENS_MAX_IMAGE_PIXELS" in report.error


def test_png_bomb_6300_squared_is_refused_by_default(tmp_path):
    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    ihdr = struct.pack(">IIBBBBB", 6300, 6300, 8, 0, 0, 0, 0)
    idat = zlib.compress(bytes(6301 * 10))
    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")
    path = tmp_path / "cxr.png"
    path.write_bytes(png)
    _, _, report = read_file(path)
    assert not report.ok and "FUSELENS_MAX_IMAGE_PIXELS" in report.error


def test_wfdb_bomb_is_refused_from_its_header(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSELENS_MAX_ECG_SECONDS", "5")
    signal = np.zeros((10 * 100, 2))
    wfdb.wrsamp("rec", fs=100, units=["mV", "mV"], sig_name=["I", "II"], p_signal=signal,
                fmt=["16", "16"], write_dir=str(tmp_path))  # fmt: skip
    monkeypatch.setattr(wfdb, "rdrecord", never)
    _, _, report = read_file(tmp_path / "rec.hea")
    assert not report.ok and "FUSELENS_MAX_ECG_SECONDS" in report.error


def test_npy_ecg_bomb_is_refused_before_loading(tmp_path, monkeypatch):
    monkeypatch.setenv("FUSELENS_MAX_ECG_VALUES", "1000")
    np.save(tmp_path / "ecg.npy", np.zeros((12, 500)))
    (tmp_path / "ecg.json").write_text('{"sampling_rate": 500}')
    _, _, report = read_file(tmp_path / "ecg.npy")
    assert not report.ok and "FUSELENS_MAX_ECG_VALUES" in report.error


def test_limits_are_settable_and_a_bad_value_is_named(monkeypatch):
    monkeypatch.setenv("FUSELENS_MAX_ZIP_MEMBERS", "12")
    assert limits.current().zip_members == 12
    monkeypatch.setenv("FUSELENS_MAX_ZIP_MEMBERS", "lots")
    with pytest.raises(ValueError, match="FUSELENS_MAX_ZIP_MEMBERS"):
        limits.current()


def test_readme_lists_every_limit_default():
    readme = (Path(__file__).parents[1] / "README.md").read_text(encoding="utf-8")
    for variable, default, _ in limits.defaults_table():
        assert f"`{variable}`" in readme and f"{default:,}" in readme, variable


@pytest.mark.parametrize("encoding", ["latin-1", "utf-16"])
def test_labs_csv_in_another_encoding_is_read(tmp_path, encoding):
    path = tmp_path / "labs.csv"
    text = "name,value,unit\nZinc,12,µmol/L\nTemperature,38.5,°C\nHistory,Fieber seit gestern,\n"
    path.write_text(text, encoding=encoding)
    _, part, report = read_file(path)
    assert report.ok, report.error
    assert [i.unit for i in part.items] == ["µmol/L", "°C"]
    assert any("not UTF-8" in w for w in report.warnings)


def test_binary_file_is_still_refused(tmp_path):
    path = tmp_path / "blob.bin"
    path.write_bytes(bytes(range(256)) * 4)
    _, _, report = read_file(path)
    assert not report.ok and "binary" in report.error


def case_with_loop(tmp_path: Path, testdata, name: str) -> Path:
    case = tmp_path / "case"
    case.mkdir()
    shutil.copy(testdata("color3d_jpeg_baseline.dcm"), case / name)
    (case / "labs.csv").write_text(LABS)
    return case


def test_echo_view_unknown_is_flagged_read_but_not_used(tmp_path, testdata):
    case, reports = load_case(case_with_loop(tmp_path, testdata, "loop.dcm"))
    echo = report_of(reports, "loop.dcm")
    assert echo.ok and "read but not used: view unknown" in echo.unused
    assert "echo_<VIEW>" in echo.unused and "views.json" in echo.unused
    assert echo.to_dict()["unused"] == echo.unused
    assert any(w.startswith("loop.dcm: read but not used") for w in case.warnings)


def test_echo_view_given_in_views_json_is_used(tmp_path, testdata):
    folder = case_with_loop(tmp_path, testdata, "loop.dcm")
    (folder / "views.json").write_text('{"loop.dcm": "a4c", "gone.dcm": "A2C"}')
    case, reports = load_case(folder)
    echo = report_of(reports, "loop.dcm")
    assert list(case.echo) == ["A4C"] and echo.unused == ""
    assert echo.details["view_source"] == "views.json"
    assert [Path(r.path).name for r in reports] == ["labs.csv", "loop.dcm"]
    assert "views.json: gone.dcm: no such file" in case.warnings


def test_echo_view_from_file_name_is_used(tmp_path, testdata):
    case, reports = load_case(case_with_loop(tmp_path, testdata, "echo_A4C.dcm"))
    assert list(case.echo) == ["A4C"] and report_of(reports, "echo_A4C.dcm").unused == ""


def test_echo_views_json_with_a_wrong_view_is_named(tmp_path, testdata):
    folder = case_with_loop(tmp_path, testdata, "loop.dcm")
    (folder / "views.json").write_text('{"loop.dcm": "apical"}')
    case, _ = load_case(folder)
    assert any("views.json: loop.dcm: view 'apical' is not one of" in w for w in case.warnings)


def test_second_loop_of_a_view_is_read_but_not_used(tmp_path):
    folder = tmp_path / "case"
    folder.mkdir()
    write_cine(folder / "echo_A4C.dcm", 3, 64)
    write_cine(folder / "echo_a4c_again.dcm", 3, 64)
    _, reports = load_case(folder)
    assert "already has an A4C loop" in report_of(reports, "echo_a4c_again.dcm").unused


def test_fuzz_found_damaged_pixel_spacing_is_ignored_not_fatal(tmp_path, testdata):
    ds = pydicom.dcmread(testdata("RG1_UNCR.dcm"))
    ds.ImagerPixelSpacing = ds.PixelSpacing = ["7.77", "0.1"]
    path = tmp_path / "cxr.dcm"
    ds.save_as(path)
    path.write_bytes(path.read_bytes().replace(b"7.77", b"\xe8.77"))
    _, part, report = read_file(path)
    assert report.ok, report.error
    assert part.pixel_spacing_mm is None and any("not a usable" in w for w in report.warnings)


def test_fuzz_found_damaged_png_is_named_without_its_path(tmp_path):
    path = tmp_path / "cxr.png"
    png = io.BytesIO()
    Image.new("L", (64, 64)).save(png, format="PNG")
    path.write_bytes(png.getvalue()[:20] + b"\xa0" * 20)
    _, _, report = read_file(path)
    assert not report.ok and "image" in report.error and str(tmp_path) not in report.error


def test_fuzz_found_damaged_wfdb_header_is_named(tmp_path):
    wfdb.wrsamp("rec", fs=100, units=["mV"], sig_name=["I"], p_signal=np.zeros((200, 1)),
                fmt=["16"], write_dir=str(tmp_path))  # fmt: skip
    hea = tmp_path / "rec.hea"
    hea.write_text(hea.read_text().replace("rec 1 100", "rec x 100"))
    _, _, report = read_file(hea)
    assert not report.ok and "not a valid WFDB header" in report.error


def test_fuzz_found_damaged_npy_header_is_named(tmp_path):
    np.save(tmp_path / "ecg.npy", np.zeros((12, 500)))
    (tmp_path / "ecg.json").write_text('{"sampling_rate": 500}')
    data = (tmp_path / "ecg.npy").read_bytes()
    (tmp_path / "ecg.npy").write_bytes(data[:30])
    _, _, report = read_file(tmp_path / "ecg.npy")
    assert not report.ok and "not a valid .npy array" in report.error


def test_fuzz_found_multivalued_sop_class_does_not_crash_detection(tmp_path, testdata):
    ds = pydicom.dcmread(testdata("examples_ybr_color.dcm"))
    ds.SOPClassUID = [US_MULTIFRAME, US_MULTIFRAME]
    ds.Modality = "OT"
    path = tmp_path / "loop.dcm"
    ds.save_as(path)
    _, _, report = read_file(path)
    assert "unexpected error" not in report.error


SEED_LABS = LABS.encode() + b"Potassium,4.4,mmol/L,3.5,5.1\n"


FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@settings(max_examples=60, deadline=None, suppress_health_check=FIXTURE_OK)
@given(st.binary(max_size=64), st.integers(0, len(SEED_LABS)), st.integers(0, 8))
def test_fuzzed_text_inputs_never_crash(tmp_path, insert, at, cut):
    data = SEED_LABS[:at] + insert + SEED_LABS[at + cut :]
    for name in ("labs.csv", "ecg.csv", "notes.txt"):
        path = tmp_path / name
        path.write_bytes(data)
        _, _, report = read_file(path)
        assert "unexpected error" not in report.error


def test_fuzzed_zip_never_crashes(tmp_path):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as zf:
        zf.writestr("labs.csv", LABS)
    data = buffer.getvalue()
    for n in range(0, len(data), 7):
        damaged = tmp_path / f"{n}.zip"
        damaged.write_bytes(data[:n] + b"\xff" + data[n + 1 :])
        try:
            extract_zip(damaged, tmp_path / f"out{n}")
        except IngestError:
            pass
