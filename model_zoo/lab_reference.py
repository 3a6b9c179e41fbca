"""Lab reference ranges and accepted units, read from ``assets/lab_reference_ranges.csv``."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

ASSETS_DIR = Path(__file__).resolve().parents[1] / "assets"
REFERENCE_CSV = ASSETS_DIR / "lab_reference_ranges.csv"


@dataclass(frozen=True)
class LabReference:
    name: str
    unit: str
    accepted_units: tuple[str, ...]
    low: float | None
    high: float | None


def _opt_float(text: str) -> float | None:
    return float(text) if text.strip() else None


@lru_cache(maxsize=1)
def _table() -> dict[str, LabReference]:
    table: dict[str, LabReference] = {}
    with REFERENCE_CSV.open(newline="") as fh:
        for row in csv.DictReader(fh):
            ref = LabReference(
                name=row["name"],
                unit=row["unit"],
                accepted_units=tuple(u for u in row["accepted_units"].split("|") if u),
                low=_opt_float(row["low"]),
                high=_opt_float(row["high"]),
            )
            for key in [row["name"], *row["aliases"].split("|")]:
                if key.strip():
                    table[key.strip().lower()] = ref
    return table


def lookup(name: str) -> LabReference | None:
    """The reference entry for a lab name or one of its aliases (case-insensitive)."""
    return _table().get(name.strip().lower())


def known_lab_names() -> list[str]:
    return sorted({ref.name for ref in _table().values()})
