"""What one input may cost, checked from sizes and headers before anything is decoded.

Every limit has a default and is settable by an environment variable ``FUSELENS_MAX_<NAME>``
(e.g. ``FUSELENS_MAX_TEXT_MB=128``), read each time a file is checked.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field
from pathlib import Path

from fuselens.app.ingest.errors import IngestError

MB = 1024**2


def _limit(default: float, unit: str) -> float:
    return field(default=default, metadata={"unit": unit})


@dataclass(frozen=True)
class Limits:
    """Defaults of every ingest limit; ``env_name`` says which variable overrides one."""

    file_mb: float = _limit(1024, "MB")  # one input file, or one zip member once unpacked
    zip_total_mb: float = _limit(2048, "MB")  # everything one zip unpacks to
    zip_members: int = _limit(5000, "entries")
    zip_depth: int = _limit(16, "nested folders")
    text_mb: float = _limit(64, "MB")  # a CSV, JSON or text file, read whole into memory
    ecg_values: int = _limit(8_000_000, "values")  # samples x leads
    ecg_seconds: float = _limit(600, "s")
    image_pixels: int = _limit(25_000_000, "pixels")  # one image or frame
    pixel_mb: float = _limit(160, "MB")  # decoded pixels of a DICOM, cine or frame folder


def env_name(name: str) -> str:
    """The environment variable that overrides limit ``name``."""
    return f"FUSELENS_MAX_{name.upper()}"


def current() -> Limits:
    """The defaults, overridden by any ``FUSELENS_MAX_<NAME>`` variable set now."""
    overrides: dict[str, float] = {}
    for spec in dataclasses.fields(Limits):
        text = os.environ.get(env_name(spec.name))
        if text is None or not text.strip():
            continue
        try:
            value = float(text)
        except ValueError as exc:
            raise ValueError(f"{env_name(spec.name)}={text!r} is not a number") from exc
        overrides[spec.name] = int(value) if spec.type == "int" else value
    return dataclasses.replace(Limits(), **overrides)


def defaults_table() -> list[tuple[str, float, str]]:
    """``(variable, default, unit)`` of every limit, for documentation."""
    return [
        (env_name(f.name), f.default, f.metadata["unit"])  # type: ignore[misc]
        for f in dataclasses.fields(Limits)
    ]


def check(path: str | Path, modality: str, name: str, value: float, what: str) -> None:
    """Refuse ``path`` with :class:`IngestError` when ``value`` exceeds limit ``name``."""
    limit = getattr(current(), name)
    if value <= limit:
        return
    unit = next(f.metadata["unit"] for f in dataclasses.fields(Limits) if f.name == name)
    raise IngestError(
        path,
        modality,
        f"{what} is {_number(value)} {unit}, over the limit of {_number(limit)} {unit} "
        f"(set {env_name(name)} to change it): refused before reading",
    )


def _number(value: float) -> str:
    return f"{int(value):,}" if float(value).is_integer() else f"{value:,.1f}"


def check_bytes(path: str | Path, modality: str, name: str, size: int, what: str) -> None:
    """:func:`check` for a size in bytes against a limit in MB."""
    check(path, modality, name, size / MB, what)


def check_ecg(path: str | Path, samples: int, leads: int, rate: float | None) -> None:
    """Refuse an ECG whose samples x leads, or duration at ``rate``, pass the limits."""
    what = f"{samples:,} samples x {leads} leads"
    check(path, "ecg", "ecg_values", samples * leads, what)
    if rate:
        check(path, "ecg", "ecg_seconds", samples / rate, f"the duration at {rate:g} Hz")
