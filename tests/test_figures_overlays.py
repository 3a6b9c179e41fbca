"""Heat-map overlays on images and echo loops, loop files and the frame picker."""

from __future__ import annotations

from pathlib import Path

import imageio.v2 as iio2
import imageio.v3 as iio
import numpy as np
import pytest
from PIL import Image
from pydicom import dcmread
from pydicom.data import get_testdata_file

from fuselens.app.figures.loops import frame_at, write_loop
from fuselens.app.figures.overlays import (
    cam_overlay,
    cxr_overlay,
    echo_overlay_frames,
    resample_cam_frames,
    resize_cam,
)
from fuselens.model_zoo.case import CXR


@pytest.fixture(scope="module")
def echo_frames() -> np.ndarray:
    """pydicom's real 30-frame ultrasound clip as grey uint8 (F, H, W)."""
    rgb = dcmread(get_testdata_file("examples_ybr_color.dcm")).pixel_array
    return rgb.mean(axis=-1).astype(np.uint8)


def _gradient_image(h: int = 64, w: int = 80) -> np.ndarray:
    return np.tile(np.linspace(0.2, 0.8, w, dtype=np.float32), (h, 1))


def _corner_cam() -> np.ndarray:
    cam = np.zeros((8, 10), dtype=np.float32)
    cam[:4, :5] = 1.0
    return cam


def test_red_where_the_cam_is_high_blue_where_low() -> None:
    out = cam_overlay(_gradient_image(), _corner_cam(), opacity=0.6)
    assert out.shape == (64, 80, 3) and out.dtype == np.uint8
    hot = out[5:25, 5:30].astype(int)
    cold = out[40:60, 50:75].astype(int)
    assert (hot[..., 0] > hot[..., 2] + 40).all()
    assert (cold[..., 2] > cold[..., 0] + 40).all()


def test_opacity_zero_is_the_image_and_more_opacity_is_more_heat() -> None:
    img = _gradient_image()
    plain = cam_overlay(img, _corner_cam(), opacity=0.0)
    np.testing.assert_array_equal(plain[..., 0], np.round(img * 255).astype(np.uint8))
    np.testing.assert_array_equal(plain[..., 0], plain[..., 2])
    redness = []
    for opacity in (0.2, 0.5, 0.9):
        out = cam_overlay(img, _corner_cam(), opacity).astype(int)
        redness.append(float((out[5:25, 5:30, 0] - out[5:25, 5:30, 2]).mean()))
    assert redness[0] < redness[1] < redness[2]
    with pytest.raises(ValueError, match="opacity"):
        cam_overlay(img, _corner_cam(), 1.5)


def test_uint8_and_float_images_give_the_same_overlay() -> None:
    img = np.round(_gradient_image() * 255).astype(np.uint8)
    a = cam_overlay(img, _corner_cam(), 0.5)
    b = cam_overlay(img.astype(np.float32) / 255.0, _corner_cam(), 0.5)
    np.testing.assert_array_equal(a, b)


def test_cam_values_are_checked() -> None:
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        cam_overlay(_gradient_image(), _corner_cam() * 4, 0.5)
    with pytest.raises(ValueError, match="NaN"):
        cam_overlay(_gradient_image(), np.full((4, 4), np.nan), 0.5)
    with pytest.raises(ValueError, match="float image"):
        cam_overlay(_gradient_image() * 3, _corner_cam(), 0.5)


def test_resize_cam_keeps_the_hot_region_in_place() -> None:
    big = resize_cam(_corner_cam(), 80, 100)
    assert big.shape == (80, 100)
    assert big[:35, :45].min() > 0.99 and big[45:, 55:].max() == 0.0


def test_cxr_overlay_downsizes_keeping_aspect() -> None:
    image = np.random.default_rng(0).random((1955, 1841), dtype=np.float32)
    out = cxr_overlay(CXR(image), _corner_cam(), 0.5, max_side=1024)
    assert out.shape == (1024, round(1841 * 1024 / 1955), 3)
    assert out[:300, :300, 0].mean() > out[:300, :300, 2].mean()


def test_resample_cam_frames_interpolates_in_time() -> None:
    cam = np.stack([np.zeros((4, 4)), np.ones((4, 4))]).astype(np.float32)
    out = resample_cam_frames(cam, 5)
    np.testing.assert_allclose(out[:, 0, 0], [0, 0.25, 0.5, 0.75, 1.0])
    assert resample_cam_frames(cam[:1], 3).shape == (3, 4, 4)


def test_echo_overlay_follows_the_cam_over_frames(echo_frames: np.ndarray) -> None:
    n, h, w = echo_frames.shape
    cam = np.zeros((4, 6, 6), dtype=np.float32)
    cam[0, :3, :3] = 1.0  # top-left early
    cam[3, 3:, 3:] = 1.0  # bottom-right late
    out = echo_overlay_frames(echo_frames, cam, 0.6)
    assert out.shape == (n, h, w, 3) and out.dtype == np.uint8

    def red(frame: np.ndarray, ys: slice, xs: slice) -> float:
        f = frame.astype(int)
        return float((f[ys, xs, 0] - f[ys, xs, 2]).mean())

    top_left = (slice(0, h // 4), slice(0, w // 4))
    bottom_right = (slice(3 * h // 4, h), slice(3 * w // 4, w))
    assert red(out[0], *top_left) > 50 > red(out[0], *bottom_right)
    assert red(out[-1], *bottom_right) > 50 > red(out[-1], *top_left)
    one_map = echo_overlay_frames(echo_frames[:3], cam[0], 0.6)
    np.testing.assert_array_equal(one_map[0], out[0])


def test_mp4_loop_is_browser_h264_with_every_frame(echo_frames: np.ndarray, tmp_path: Path) -> None:
    frames = echo_overlay_frames(echo_frames, np.full((4, 4), 0.5), 0.3)
    path = write_loop(frames, 25.0, tmp_path / "loop.mp4")
    reader = iio2.get_reader(path, format="FFMPEG")
    meta = reader.get_meta_data()
    reader.close()
    assert meta["codec"] == "h264" and meta["pix_fmt"].startswith("yuv420p")
    assert meta["fps"] == pytest.approx(25.0)
    back = np.stack(list(iio.imiter(path, plugin="FFMPEG")))
    assert back.shape == frames.shape
    assert np.abs(back.astype(int) - frames.astype(int)).mean() < 6
    data = path.read_bytes()
    assert data.find(b"moov") < data.find(b"mdat")  # the index first, so it plays at once


def test_gif_loop_keeps_every_distinct_frame_and_the_timing(
    echo_frames: np.ndarray, tmp_path: Path
) -> None:
    frames = echo_overlay_frames(echo_frames, np.full((4, 4), 0.5), 0.3)
    repeats = sum(bool((frames[i] == frames[i - 1]).all()) for i in range(1, len(frames)))
    assert repeats == 2  # the real clip repeats two frames; the GIF writer merges those
    path = write_loop(frames, 25.0, tmp_path / "loop.gif")
    back = iio.imread(path, index=None)
    assert back.shape[0] == frames.shape[0] - repeats
    assert back.shape[1:3] == frames.shape[1:3]
    with Image.open(path) as gif:
        durations = []
        for i in range(gif.n_frames):
            gif.seek(i)
            durations.append(gif.info["duration"])
        assert gif.info.get("loop") == 0
    assert sum(durations) == pytest.approx(len(frames) * 40)
    assert np.abs(back[0, ..., :3].astype(int) - frames[0].astype(int)).mean() < 12


def test_mp4_pads_odd_frame_sizes_and_keeps_a_fractional_rate(tmp_path: Path) -> None:
    frames = np.random.default_rng(1).integers(0, 255, (5, 33, 47, 3), dtype=np.uint8)
    path = write_loop(frames, 29.97, tmp_path / "odd.mp4")
    reader = iio2.get_reader(path, format="FFMPEG")
    assert reader.get_meta_data()["size"] == (48, 34)
    assert reader.get_meta_data()["fps"] == pytest.approx(29.97)
    assert reader.count_frames() == 5
    reader.close()


def test_loop_arguments_are_checked(tmp_path: Path) -> None:
    frames = np.zeros((3, 8, 8, 3), dtype=np.uint8)
    with pytest.raises(ValueError, match=".gif or .mp4"):
        write_loop(frames, 10, tmp_path / "x.avi")
    with pytest.raises(ValueError, match="fps"):
        write_loop(frames, 0, tmp_path / "x.gif")
    with pytest.raises(ValueError, match="uint8"):
        write_loop(frames[..., 0], 10, tmp_path / "x.gif")


def test_frame_at_picks_and_clamps() -> None:
    frames = np.arange(4, dtype=np.uint8)[:, None, None, None] * np.ones((1, 2, 2, 3), np.uint8)
    assert frame_at(frames, 2)[0, 0, 0] == 2
    assert frame_at(frames, -3)[0, 0, 0] == 0
    assert frame_at(frames, 99)[0, 0, 0] == 3
