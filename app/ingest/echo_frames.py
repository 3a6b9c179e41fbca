"""Echo cine from a folder of frame images, taken in natural order (2.png before 10.png)."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from fuselens.app.ingest.echo_common import build_cine, check_cine_size, view_from_filename
from fuselens.app.ingest.errors import IngestError, guarded
from fuselens.app.ingest.images import IMAGE_SUFFIXES, grey_unit, image_size
from fuselens.app.ingest.report import Reading
from fuselens.model_zoo.case import EchoCine


def natural_key(path: Path) -> list[int | str]:
    """Sort key that orders embedded numbers by value."""
    return [int(p) if p.isdigit() else p.lower() for p in re.split(r"(\d+)", path.name)]


def frame_files(folder: str | Path) -> list[Path]:
    """The image files of a folder, naturally sorted (hidden files skipped)."""
    files = [
        p
        for p in Path(folder).iterdir()
        if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    ]
    return sorted(files, key=natural_key)


@guarded("echo")
def read_echo_frames(folder: str | Path) -> Reading[EchoCine]:
    """All frames as uint8 grey; they must share one size. No frame rate: the default applies."""
    folder = Path(folder)
    if not folder.is_dir():
        raise IngestError(folder, "echo", "not a folder of frame images")
    files = frame_files(folder)
    if not files:
        raise IngestError(folder, "echo", "folder holds no frame images")
    height, width = image_size(files[0], "echo")
    check_cine_size(folder, len(files), height, width)
    grey = []
    for file in files:
        size = image_size(file, "echo")
        if size != (height, width):
            raise IngestError(
                folder,
                "echo",
                f"frame {file.name} is {size[0]} x {size[1]}, the first is {height} x {width}",
            )
        grey.append(np.rint(grey_unit(file, "echo")[0] * 255.0).astype(np.uint8))
    reading = build_cine(folder, np.stack(grey), None, view_from_filename(folder))
    reading.details.update({"format": "frame folder", "first_frame": files[0].name})
    return reading
