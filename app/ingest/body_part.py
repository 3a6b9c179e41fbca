"""Whether a DICOM header's BodyPartExamined is the chest, another named region, or unknown text."""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path

from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes

from fuselens.app.ingest.errors import IngestError

CHEST_WORDS = ("CHEST", "THORAX", "TORAX", "LUNG", "HEART", "CARDIAC", "MEDIASTIN")
# Defined terms of PS3.16 Annex L that are abbreviations, not CID 4031 code meanings.
ANNEX_L_ABBREVIATIONS = {
    "CSPINE": "cervical spine",
    "TSPINE": "thoracic spine",
    "LSPINE": "lumbar spine",
    "SSPINE": "sacral spine",
    "CTSPINE": "cervico-thoracic spine",
    "TLSPINE": "thoraco-lumbar spine",
    "LSSPINE": "lumbo-sacral spine",
    "ARM": "arm",
    "LEG": "leg",
    "TMJ": "temporomandibular joint",
    "WHOLEBODY": "entire body",
}
SLOT_NAMES = {"cxr": "chest X-ray", "echo": "echocardiogram"}


def _letters(text: str) -> str:
    return re.sub(r"[^A-Z]", "", text.upper())


@cache
def named_regions() -> dict[str, str]:
    """DICOM CID 4031 "Common Anatomic Regions" and Annex L abbreviations, keyed by letters."""
    concepts = codes.CID4031.concepts
    regions = {_letters(keyword): code.meaning.lower() for keyword, code in concepts.items()}
    regions.update(ANNEX_L_ABBREVIATIONS)
    return regions


def region_named(value: str) -> str | None:
    """The anatomic region a BodyPartExamined value names, None when it names none we know."""
    key = _letters(value)
    if len(key) < 3:
        return None
    regions = named_regions()
    if key in regions:
        return regions[key]
    for region_key, name in regions.items():
        if len(region_key) >= 3 and (region_key.startswith(key) or key.startswith(region_key)):
            return name
    return None


def is_chest(value: str) -> bool:
    """True when a BodyPartExamined value names the chest, its organs, or a span holding it."""
    key = _letters(value)
    return any(word in key for word in CHEST_WORDS)


def check_body_part(path: str | Path, ds: Dataset, modality: str) -> str | None:
    """Refuse a header that records a region other than the chest; warn on text we cannot place.

    Returns the warning, or None when BodyPartExamined is absent, blank or the chest.
    """
    value = str(ds.get("BodyPartExamined", "") or "").strip()
    if not value or is_chest(value):
        return None
    slot = SLOT_NAMES.get(modality, modality)
    region = region_named(value)
    if region is not None:
        named = f" ({region})" if _letters(region) != _letters(value) else ""
        raise IngestError(
            path,
            modality,
            f"BodyPartExamined {value!r}{named} is not the chest: "
            f"the {slot} input takes chest studies",
        )
    return f"BodyPartExamined {value!r} is not a term known for the chest: check this is a {slot}"
