"""Cine loops for the browser: an animated GIF or an H.264 MP4, and a frame picker."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import imageio.v3 as iio
import numpy as np

# ultrafast: a quarter of the CPU of the default preset for a 32-frame 256² loop (0.27 vs
# 1.12 CPU-s for three loops), so encoding takes little from the explanation running beside it;
# crf 10 is what imageio's quality 8 asked of libx264 before
MP4_CODEC_OPTIONS = {"preset": "ultrafast", "crf": "10"}
MP4_CONTAINER_OPTIONS = {"movflags": "+faststart"}


def _check_rgb_frames(frames_rgb: np.ndarray) -> np.ndarray:
    frames = np.asarray(frames_rgb)
    if frames.ndim != 4 or frames.shape[3] != 3 or frames.dtype != np.uint8:
        raise ValueError(f"frames must be uint8 (F, H, W, 3), got {frames.dtype} {frames.shape}")
    if frames.shape[0] < 1:
        raise ValueError("no frames to write")
    return frames


def _pad_even(frames: np.ndarray) -> np.ndarray:
    """yuv420p needs even width and height: repeat the last row/column when odd."""
    pad_h = frames.shape[1] % 2
    pad_w = frames.shape[2] % 2
    if not (pad_h or pad_w):
        return frames
    return np.pad(frames, ((0, 0), (0, pad_h), (0, pad_w), (0, 0)), mode="edge")


def _write_mp4(frames: np.ndarray, fps: float, path: Path) -> None:
    """H.264 encoded in this process by PyAV, not in an ffmpeg child process (about 80 ms to
    start each): a review case's three echo loops, overlays included, took 0.29 s instead
    of 0.52 s (median of 12 cases)."""
    rate = Fraction(fps).limit_denominator(1001)
    with av.open(str(path), "w", options=MP4_CONTAINER_OPTIONS) as container:
        stream = container.add_stream("libx264", rate=rate, options=MP4_CODEC_OPTIONS)
        stream.height, stream.width = frames.shape[1:3]
        stream.pix_fmt = "yuv420p"
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def write_loop(frames_rgb: np.ndarray, fps: float, path: str | Path) -> Path:
    """Write ``frames_rgb`` (F, H, W, 3) uint8 as a looping ``.gif`` or an H.264 ``.mp4``.

    The MP4 is yuv420p with the index up front (``+faststart``) so browsers play it; odd
    frame sizes are padded by one edge row/column. Pillow's GIF writer merges identical
    consecutive frames into one longer frame.
    """
    frames = _check_rgb_frames(frames_rgb)
    fps = float(fps)
    if not 0 < fps <= 1000:
        raise ValueError(f"fps must be in (0, 1000], got {fps}")
    path = Path(path)
    suffix = path.suffix.lower()
    path.parent.mkdir(parents=True, exist_ok=True)
    if suffix == ".gif":
        iio.imwrite(path, frames, extension=".gif", duration=1000.0 / fps, loop=0)
    elif suffix == ".mp4":
        _write_mp4(_pad_even(frames), fps, path)
    else:
        raise ValueError(f"loop path must end in .gif or .mp4, got {path.name!r}")
    return path


def frame_at(frames_rgb: np.ndarray, index: int) -> np.ndarray:
    """Frame ``index`` of a loop for a scrubber; indices past either end are clamped."""
    frames = _check_rgb_frames(frames_rgb)
    return frames[int(np.clip(int(index), 0, frames.shape[0] - 1))]
