"""Echo cine from an MP4 or AVI video, decoded by imageio's ffmpeg plugin."""

from __future__ import annotations

import math
from pathlib import Path

import imageio.v3 as iio
import numpy as np

from fuselens.app.ingest import limits
from fuselens.app.ingest.echo_common import build_cine, max_frames, to_grey, view_from_filename
from fuselens.app.ingest.errors import IngestError, guarded
from fuselens.app.ingest.report import Reading
from fuselens.model_zoo.case import EchoCine

VIDEO_SUFFIXES = {".mp4", ".avi", ".mov", ".m4v", ".mkv", ".webm"}


@guarded("echo")
def read_echo_video(path: str | Path) -> Reading[EchoCine]:
    """Every frame as uint8 grey; frame rate from the container, view from the file name."""
    path = Path(path)
    if not path.is_file():
        raise IngestError(path, "echo", "file not found")
    meta = iio.immeta(path, plugin="FFMPEG")
    width, height = meta.get("size", (0, 0))
    limits.check(path, "echo", "image_pixels", width * height, f"each {height} x {width} frame")
    most = max_frames(height, width)
    grey = []
    for frame in iio.imiter(path, plugin="FFMPEG"):
        grey.append(to_grey(frame))
        if len(grey) > most:
            what = f"more than {most} frames of {height} x {width}"
            limits.check_bytes(path, "echo", "pixel_mb", len(grey) * width * height, what)
    if not grey:
        raise IngestError(path, "echo", "video holds no frames")
    fps = meta.get("fps")
    rate = float(fps) if isinstance(fps, int | float) and math.isfinite(fps) and fps > 0 else None
    reading = build_cine(path, np.stack(grey), rate, view_from_filename(path))
    reading.details.update({"format": path.suffix.lstrip(".").upper(), "codec": meta.get("codec")})
    return reading
