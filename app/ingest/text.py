"""Text files in common encodings: BOMs honoured, UTF-8 first, then Windows-1252 or a guess."""

from __future__ import annotations

import codecs
from pathlib import Path

from charset_normalizer import from_bytes

from fuselens.app.ingest import limits
from fuselens.app.ingest.errors import IngestError

LEGACY = "cp1252"
BOMS = (
    (codecs.BOM_UTF32_LE, "utf-32"),
    (codecs.BOM_UTF32_BE, "utf-32"),
    (codecs.BOM_UTF8, "utf-8-sig"),
    (codecs.BOM_UTF16_LE, "utf-16"),
    (codecs.BOM_UTF16_BE, "utf-16"),
)


def bom_encoding(head: bytes) -> str | None:
    """The encoding a byte-order mark at the start of ``head`` names, else None."""
    return next((name for bom, name in BOMS if head.startswith(bom)), None)


def _guess(path: str | Path, modality: str, data: bytes) -> str:
    """Windows-1252 (what spreadsheets export in Western Europe) when it fits, else the
    encoding charset-normalizer finds; short texts are too little for it to tell alone."""
    try:
        data.decode(LEGACY)
        return LEGACY
    except UnicodeDecodeError:
        match = from_bytes(data).best()
    if match is None:
        raise IngestError(path, modality, "not text: not UTF-8 and no other encoding recognised")
    return match.encoding


def decode(path: str | Path, modality: str, data: bytes) -> tuple[str, str]:
    """``(text, encoding)``: by BOM, else UTF-8, else a legacy or detected encoding."""
    encoding = bom_encoding(data)
    if encoding is None:
        try:
            return data.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:
            encoding = _guess(path, modality, data)
    try:
        return data.decode(encoding), encoding
    except UnicodeDecodeError as exc:
        raise IngestError(path, modality, f"not valid {encoding} text: {exc.reason}") from exc


def read_text(path: str | Path, modality: str) -> tuple[str, str]:
    """``(text, encoding)`` of a text file no larger than the ``text_mb`` limit."""
    path = Path(path)
    limits.check_bytes(path, modality, "text_mb", path.stat().st_size, "the text file size")
    return decode(path, modality, path.read_bytes())


def encoding_warnings(encoding: str) -> list[str]:
    """A warning when a file was not plain UTF-8, so the user can check its characters."""
    if encoding in {"utf-8", "utf-8-sig", "ascii"}:
        return []
    return [f"read as {encoding} text (not UTF-8): check units such as µmol/L"]
