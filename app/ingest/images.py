"""Still images (PNG, JPEG, ...) through Pillow: size checked from the header before decoding."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
from PIL import Image

from fuselens.app.ingest import limits
from fuselens.app.ingest.errors import IngestError, describe

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
# what Pillow raises on damaged files (a broken PNG chunk is a SyntaxError)
DAMAGED = (OSError, SyntaxError, ValueError)


def image_size(path: str | Path, modality: str) -> tuple[int, int]:
    """``(height, width)`` read from the header only, refusing images too large to decode."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        try:
            with Image.open(path) as im:
                width, height = im.size
        except Image.DecompressionBombError as exc:
            raise IngestError(path, modality, "image is too large to decode") from exc
        except DAMAGED as exc:
            raise IngestError(path, modality, damaged_image(exc)) from exc
    limits.check(path, modality, "image_pixels", width * height, f"the {height} x {width} image")
    return height, width


def damaged_image(exc: BaseException) -> str:
    """What is wrong with an image Pillow cannot read, without the file's full path."""
    if isinstance(exc, Image.UnidentifiedImageError):
        return "not a readable image: format not recognised (damaged file?)"
    return f"damaged image file: {describe(exc)}"


def grey_unit(path: str | Path, modality: str = "cxr") -> tuple[np.ndarray, str]:
    """The image as float64 grey in [0, 1] (colour by luminance, 16-bit kept), and its mode."""
    try:
        return _grey_unit(path)
    except DAMAGED as exc:
        raise IngestError(path, modality, damaged_image(exc)) from exc


def _grey_unit(path: str | Path) -> tuple[np.ndarray, str]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        with Image.open(path) as im:
            im.load()
            mode = im.mode
            if mode.startswith("I;16"):
                return np.asarray(im, dtype=np.float64) / 65535.0, mode
            if mode in {"I", "F"}:
                arr = np.asarray(im, dtype=np.float64)
                top = 255.0 if arr.max() <= 255 else 65535.0 if arr.max() <= 65535 else arr.max()
                return np.clip(arr / top, 0.0, 1.0), mode
            return np.asarray(im.convert("L"), dtype=np.float64) / 255.0, mode
