"""Chest radiograph from a PNG or JPEG file (assumed bone bright, as exported for viewing)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from fuselens.app.ingest.errors import guarded
from fuselens.app.ingest.images import grey_unit, image_size
from fuselens.app.ingest.report import Reading
from fuselens.model_zoo.case import CXR


@guarded("cxr")
def read_cxr_image(path: str | Path) -> Reading[CXR]:
    """Grey float32 in [0, 1]; the size is read from the header before decoding."""
    path = Path(path)
    image_size(path, "cxr")
    grey, mode = grey_unit(path)
    cxr = CXR(image=grey.astype(np.float32), view_position="unknown")
    cxr.validate()
    warnings = []
    if mode not in {"L", "I", "I;16", "I;16B", "I;16L", "F", "1"}:
        warnings.append(f"{mode} image converted to grey by luminance")
    details = {
        "format": path.suffix.lstrip(".").upper(),
        "shape": list(cxr.image.shape),
        "image_mode": mode,
        "view_position": "unknown",
    }
    return Reading(part=cxr, warnings=warnings, details=details)
