"""Echo readers: DICOM multi-frame US (real and written clips), video, frame folders."""

from __future__ import annotations

import imageio.v3 as iio
import numpy as np
import pydicom
import pytest
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import UltrasoundImageStorage, UltrasoundMultiFrameImageStorage

from fuselens.app.ingest import (
    IngestError,
    read_echo_dicom,
    read_echo_frames,
    read_echo_video,
    read_file,
)
from fuselens.app.ingest.echo_common import view_from_filename, view_from_text


def cine(frames: int = 6, height: int = 48, width: int = 64) -> np.ndarray:
    """A moving bright disc on a dark background, uint8 (F, H, W)."""
    yy, xx = np.mgrid[:height, :width]
    out = np.zeros((frames, height, width), np.uint8)
    for f in range(frames):
        r = 8 + 2 * f
        out[f][(yy - height // 2) ** 2 + (xx - width // 2) ** 2 < r * r] = 200
    return out


def view_item(meaning: str) -> Dataset:
    item = Dataset()
    item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning = "399214001", "SCT", meaning
    return item


def test_real_a4c_jpeg_baseline_clip(testdata):
    reading = read_echo_dicom(testdata("color3d_jpeg_baseline.dcm"))
    cine_ = reading.part
    assert cine_.frames.shape == (120, 480, 640) and cine_.frames.dtype == np.uint8
    # the burnt-in "PLA" (and the PatientName "PLA") must not be taken as the view
    assert cine_.view != "PLAX" and cine_.view == "unknown"
    assert cine_.frame_rate == pytest.approx(30.0, abs=0.01)
    assert reading.details["photometric_interpretation"] == "YBR_FULL_422"
    assert "JPEG Baseline" in reading.details["transfer_syntax"]
    assert 10 < cine_.frames.mean() < 80  # mostly dark ultrasound sector


def test_ybr_clip_is_grey_luminance(testdata):
    path = testdata("examples_ybr_color.dcm")
    cine_ = read_echo_dicom(path).part
    assert cine_.frames.shape == (30, 240, 320)
    rgb = pydicom.dcmread(path).pixel_array[3].astype(np.float64)  # pydicom converts YBR -> RGB
    luminance = rgb @ np.array([0.299, 0.587, 0.114])
    assert np.abs(cine_.frames[3].astype(np.float64) - luminance).max() <= 1.0


def test_monochrome_multiframe_with_view_code(tmp_path, write_dicom):
    frames = cine()
    path = write_dicom(
        tmp_path / "study.dcm",
        UltrasoundMultiFrameImageStorage,
        "US",
        frames,
        ViewCodeSequence=[view_item("Apical two chamber")],
        CineRate=50,
    )
    reading = read_echo_dicom(path)
    assert reading.part.view == "A2C"
    assert reading.part.frame_rate == 50.0 and reading.details["frame_rate_source"] == "CineRate"
    np.testing.assert_array_equal(reading.part.frames, frames)
    assert reading.warnings == []


def test_rgb_multiframe_view_from_series_description(tmp_path, write_dicom):
    grey = cine()
    rgb = np.repeat(grey[..., None], 3, axis=3)
    path = write_dicom(
        tmp_path / "x.dcm",
        UltrasoundMultiFrameImageStorage,
        "US",
        rgb,
        photometric="RGB",
        SeriesDescription="PLAX 2D",
        FrameTime=20.0,
    )
    reading = read_echo_dicom(path)
    assert reading.part.view == "PLAX" and reading.part.frame_rate == pytest.approx(50.0)
    np.testing.assert_array_equal(reading.part.frames, grey)


def test_view_from_file_name_and_default_frame_rate(tmp_path, write_dicom):
    path = write_dicom(tmp_path / "echo_A4C.dcm", UltrasoundMultiFrameImageStorage, "US", cine())
    reading = read_echo_dicom(path)
    assert reading.part.view == "A4C"
    assert reading.part.frame_rate == 30.0
    assert any("no frame rate" in w for w in reading.warnings)


def test_ultrasound_of_another_body_part_is_not_an_echo(tmp_path, write_dicom):
    abdomen = tmp_path / "abdomen.dcm"
    write_dicom(abdomen, UltrasoundMultiFrameImageStorage, "US", cine(), BodyPartExamined="ABDOMEN")
    with pytest.raises(IngestError, match="'ABDOMEN' is not the chest: the echocardiogram input"):
        read_echo_dicom(abdomen)
    heart = write_dicom(
        tmp_path / "heart.dcm",
        UltrasoundMultiFrameImageStorage,
        "US",
        cine(),
        BodyPartExamined="HEART",
    )
    assert not any("BodyPartExamined" in w for w in read_echo_dicom(heart).warnings)


@pytest.mark.parametrize(
    ("text", "view"),
    [
        ("Apical four chamber", "A4C"),
        ("Apical 2 chamber", "A2C"),
        ("Parasternal long axis", "PLAX"),
        ("Parasternal short axis", "PSAX"),
        ("Echo 2D", None),
        ("PLA", None),
    ],
)
def test_view_from_text(text, view):
    assert view_from_text(text) == view


def test_view_from_filename_tokens():
    assert view_from_filename("p01_plax_clip.mp4") == "PLAX"
    assert view_from_filename("color3d_jpeg_baseline.dcm") is None
    assert view_from_filename("display.dcm") is None  # "plax" inside a word is not a token


def test_one_frame_dicom_is_an_error(tmp_path, write_dicom):
    path = write_dicom(tmp_path / "one.dcm", UltrasoundImageStorage, "US", cine(frames=2)[1])
    with pytest.raises(IngestError, match="1 frame: a cine loop needs at least 2") as info:
        read_echo_dicom(path)
    assert info.value.modality == "echo"
    modality, part, report = read_file(path)
    assert modality == "echo" and part is None and not report.ok


def test_mp4_round_trip(tmp_path):
    frames = cine(frames=12, height=64, width=80)
    path = tmp_path / "patient_a2c.mp4"
    iio.imwrite(path, np.repeat(frames[..., None], 3, axis=3), plugin="FFMPEG", fps=25)
    reading = read_echo_video(path)
    assert reading.part.frames.shape == (12, 64, 80)
    assert reading.part.frame_rate == 25.0 and reading.part.view == "A2C"
    # lossy codec: close, not exact
    assert np.abs(reading.part.frames.astype(int) - frames).mean() < 6
    assert read_file(path)[0] == "echo"


def test_avi_round_trip(tmp_path):
    frames = cine(frames=5)
    path = tmp_path / "clip.avi"
    iio.imwrite(path, frames, plugin="FFMPEG", fps=40, codec="mjpeg")
    reading = read_echo_video(path)
    assert reading.part.frames.shape == (5, 48, 64) and reading.part.frame_rate == 40.0


def test_one_frame_video_is_an_error(tmp_path):
    path = tmp_path / "still.mp4"
    iio.imwrite(path, np.zeros((1, 48, 64, 3), np.uint8), plugin="FFMPEG", fps=25)
    with pytest.raises(IngestError, match="1 frame: a cine loop needs at least 2"):
        read_echo_video(path)


def test_frame_folder_natural_order(tmp_path):
    folder = tmp_path / "plax_frames"
    folder.mkdir()
    for k in range(1, 13):  # 1..12: lexical order would put 10, 11, 12 before 2
        Image.fromarray(np.full((40, 50), 10 * k, np.uint8)).save(folder / f"frame{k}.png")
    reading = read_echo_frames(folder)
    assert reading.part.frames[:, 0, 0].tolist() == [10 * k for k in range(1, 13)]
    assert reading.part.view == "PLAX"
    assert any("no frame rate" in w for w in reading.warnings)
    modality, part, report = read_file(folder)
    assert modality == "echo" and report.ok and report.details["frames"] == 12


def test_frame_folder_size_mismatch(tmp_path):
    for k, size in enumerate([(40, 50), (40, 50), (41, 50)]):
        Image.fromarray(np.zeros(size, np.uint8)).save(tmp_path / f"{k}.png")
    with pytest.raises(IngestError, match="2.png is 41 x 50"):
        read_echo_frames(tmp_path)


def test_uncompressed_ybr_full_converted_to_grey(tmp_path, write_dicom):
    from pydicom.pixels import convert_color_space

    grey = cine()
    rgb = np.stack([grey, grey // 2, 255 - grey], axis=3)
    ybr = convert_color_space(rgb.copy(), "RGB", "YBR_FULL", per_frame=True)  # works in place
    path = write_dicom(
        tmp_path / "ybr.dcm", UltrasoundMultiFrameImageStorage, "US", ybr, photometric="YBR_FULL"
    )
    frames = read_echo_dicom(path).part.frames
    luminance = rgb.astype(np.float64) @ np.array([0.299, 0.587, 0.114])
    assert np.abs(frames - luminance).max() <= 2.0
