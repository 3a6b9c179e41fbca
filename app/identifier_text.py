"""A patient's identifying values (the DICOM fields kept in ``Identifiers``) found in text."""

from __future__ import annotations

import re
from collections.abc import Iterable

from fuselens.model_zoo.case import Identifiers, PatientCase

MIN_IDENTIFIER_CHARS = 4
MIN_NUMERIC_IDENTIFIER_CHARS = 6


def _identifier_patterns(identifiers: Identifiers) -> list[tuple[str, re.Pattern[str]]]:
    """A pattern per identifying value long enough to be told apart from ordinary text
    (numbers from 6 digits); DICOM person names (``Family^Given``) also match by part."""
    out = []
    for key, value in identifiers.reveal().items():
        candidates = {value.strip(), *(v.strip() for v in value.split("^"))}
        for text in candidates:
            shortest = MIN_NUMERIC_IDENTIFIER_CHARS if text.isdigit() else MIN_IDENTIFIER_CHARS
            if len(text) >= shortest:
                pattern = re.compile(r"(?<![\w.])" + re.escape(text) + r"(?!\w)", re.IGNORECASE)
                out.append((key, pattern))
    return out


def identifier_leaks(texts: Iterable[str], identifiers: Identifiers) -> list[str]:
    """Names of the identifying fields whose values occur in any of ``texts``."""
    patterns = _identifier_patterns(identifiers)
    found = set()
    for text in texts:
        for key, pattern in patterns:
            if pattern.search(text):
                found.add(key)
    return sorted(found)


def redact(texts: Iterable[str], identifiers: Identifiers) -> list[str]:
    """``texts`` with each identifying value replaced by its field's name in brackets (whole
    values before their parts)."""
    patterns = sorted(_identifier_patterns(identifiers), key=lambda kp: -len(kp[1].pattern))
    out = []
    for text in texts:
        for key, pattern in patterns:
            text = pattern.sub(f"[{key}]", text)
        out.append(text)
    return out


def redacted_warnings(case: PatientCase) -> list[str]:
    """The case's ingest warnings with its identifying values redacted (what a review or a
    study stores and prints)."""
    return redact(case.warnings, case.identifiers)
