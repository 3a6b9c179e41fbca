"""CXR readers: real MONOCHROME1 CR (uncompressed and JPEG 2000), written DICOMs, PNG/JPEG."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from pydicom.uid import ComputedRadiographyImageStorage, DigitalXRayImageStorageForPresentation

from fuselens.app.ingest import IngestError, read_cxr_dicom, read_cxr_image, read_file


@pytest.fixture(scope="module")
def rg1(request):
    from pydicom.data import get_testdata_file

    return {name: read_cxr_dicom(get_testdata_file(f"RG1_{name}.dcm")) for name in ("UNCR", "J2KR")}


def test_real_cr_shape_and_range(rg1):
    reading = rg1["UNCR"]
    image = reading.part.image
    assert image.shape == (1955, 1841) and image.dtype == np.float32
    assert 0.0 <= image.min() and image.max() <= 1.0 and image.std() > 0.05
    assert reading.details["photometric_interpretation"] == "MONOCHROME1"
    assert reading.part.view_position == "PA"
    # RG1 stores PixelSpacing 0\0: reported as unusable, not passed on
    assert reading.part.pixel_spacing_mm is None
    assert any("PixelSpacing" in w for w in reading.warnings)


def test_monochrome1_inverted_bone_white(rg1):
    image = rg1["UNCR"].part.image
    h, w = image.shape
    spine = image[h // 4 : 3 * h // 4, 9 * w // 20 : 11 * w // 20].mean()
    right_lung = image[h // 4 : 3 * h // 5, w // 5 : 7 * w // 20].mean()
    left_lung = image[h // 4 : 3 * h // 5, 13 * w // 20 : 4 * w // 5].mean()
    assert spine > right_lung + 0.15 and spine > left_lung + 0.15


def test_uncompressed_and_jpeg2000_agree(rg1):
    a, b = rg1["UNCR"].part.image, rg1["J2KR"].part.image
    assert np.abs(a - b).max() < 1e-6  # JPEG 2000 lossless
    assert "JPEG 2000" in rg1["J2KR"].details["transfer_syntax"]


def test_monochrome2_dx_window_and_spacing(tmp_path, write_dicom):
    ramp = np.tile(np.arange(0, 4096, 32, dtype=np.uint16), (64, 1))  # 64 x 128, 0..4064
    path = write_dicom(
        tmp_path / "dx.dcm",
        DigitalXRayImageStorageForPresentation,
        "DX",
        ramp,
        WindowCenter=2048,
        WindowWidth=1024,
        PixelSpacing=[0.2, 0.25],
        BitsStored=12,
        HighBit=11,
    )
    reading = read_cxr_dicom(path)
    image = reading.part.image
    assert image[0, 0] == 0.0 and image[0, -1] == 1.0  # outside the window: clipped
    mid = image[0, 64]  # raw 2048: the window centre
    assert 0.45 < mid < 0.55
    assert reading.part.pixel_spacing_mm == (0.2, 0.25)
    assert reading.details["pixel_spacing"] == [0.2, 0.25]


def test_huge_dicom_refused_from_header(tmp_path, write_dicom):
    path = write_dicom(
        tmp_path / "huge.dcm",
        ComputedRadiographyImageStorage,
        "CR",
        np.zeros((4, 4), np.uint16),
        Rows=10_000,
        Columns=10_000,
    )
    with pytest.raises(IngestError, match="10000 x 10000") as info:
        read_cxr_dicom(path)
    assert info.value.modality == "cxr"


def test_huge_png_refused_from_header(tmp_path):
    path = tmp_path / "huge.png"
    Image.new("1", (10_000, 10_000)).save(path)
    with pytest.raises(IngestError, match="10000 x 10000"):
        read_cxr_image(path)
    assert not read_file(path)[2].ok


def test_png_8_and_16_bit_and_jpeg(tmp_path):
    ramp8 = np.tile(np.arange(256, dtype=np.uint8), (40, 1))
    Image.fromarray(ramp8).save(tmp_path / "a.png")
    image = read_cxr_image(tmp_path / "a.png").part.image
    np.testing.assert_allclose(image, ramp8 / 255.0, atol=1e-6)

    ramp16 = np.tile(np.arange(0, 65536, 256, dtype=np.uint16), (40, 1))
    Image.fromarray(ramp16).save(tmp_path / "b.png")
    image = read_cxr_image(tmp_path / "b.png").part.image
    np.testing.assert_allclose(image, ramp16 / 65535.0, atol=1e-6)

    Image.fromarray(np.stack([ramp8] * 3, axis=2)).save(tmp_path / "c.jpg", quality=95)
    modality, part, report = read_file(tmp_path / "c.jpg")
    assert modality == "cxr" and report.ok and part.image.shape == (40, 256)
    assert np.abs(part.image - ramp8 / 255.0).max() < 0.05


def test_radiograph_of_another_body_part_refused_before_decoding(testdata, monkeypatch):
    from fuselens.app.ingest import cxr_dicom

    def decode(*args, **kwargs):
        raise AssertionError("pixel data read before the header was checked")

    monkeypatch.setattr(cxr_dicom.dicom, "read_dicom", decode)
    # pydicom-data's RG3: a CR of the distal tibia, BodyPartExamined EXTREMITY
    with pytest.raises(IngestError, match="BodyPartExamined 'EXTREMITY' is not the chest") as info:
        read_cxr_dicom(testdata("RG3_J2KR.dcm"))
    assert info.value.modality == "cxr" and info.value.path.endswith("RG3_J2KR.dcm")


@pytest.mark.parametrize(
    ("body_part", "refused", "warned"),
    [
        ("CHEST", None, False),
        ("PORT CHEST", None, False),
        ("Thorax", None, False),
        ("", None, False),
        ("KNEE", "'KNEE' is not the chest", False),
        ("ANKLE", r"'ANKLE' \(ankle joint\) is not the chest", False),
        ("LSPINE", r"\(lumbar spine\)", False),
        ("TORACE", None, True),
    ],
)
def test_body_part_examined(tmp_path, write_dicom, body_part, refused, warned):
    path = write_dicom(
        tmp_path / "cr.dcm",
        ComputedRadiographyImageStorage,
        "CR",
        np.tile(np.arange(0, 4096, 32, dtype=np.uint16), (64, 1)),
        BodyPartExamined=body_part,
    )
    if refused:
        with pytest.raises(IngestError, match=refused):
            read_cxr_dicom(path)
        return
    reading = read_cxr_dicom(path)
    assert reading.part.image.shape == (64, 128)
    assert any("BodyPartExamined" in w for w in reading.warnings) == warned


def test_a_lateral_radiograph_is_read_with_a_warning(tmp_path, write_dicom):
    ramp = np.tile(np.arange(0, 4096, 32, dtype=np.uint16), (64, 1))
    cr = ComputedRadiographyImageStorage
    lateral = write_dicom(tmp_path / "ll.dcm", cr, "CR", ramp, ViewPosition="LL")
    frontal = write_dicom(tmp_path / "pa.dcm", cr, "CR", ramp, ViewPosition="PA")
    assert any("LL: a lateral radiograph" in w for w in read_cxr_dicom(lateral).warnings)
    assert not any("lateral" in w for w in read_cxr_dicom(frontal).warnings)
