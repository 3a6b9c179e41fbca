"""What a reader returns (:class:`Reading`) and what a user is shown (:class:`FileReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from fuselens.model_zoo.case import Demographics, Identifiers

T = TypeVar("T")
NOT_LOADED = "(not loaded)"  # ends a case warning about a file that could not be read


@dataclass
class Reading(Generic[T]):
    """One file's contribution to a case: the part plus what was noticed while reading it."""

    part: T
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    identifiers: Identifiers = field(default_factory=Identifiers, repr=False)
    demographics: Demographics | None = None


@dataclass
class FileReport:
    """The outcome of reading one input file or frame folder."""

    path: str
    modality: str
    ok: bool
    error: str = ""
    warnings: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    identifiers: Identifiers = field(default_factory=Identifiers, repr=False, compare=False)
    unused: str = ""  # why a file that was read is left out of the model ("" when it is used)

    def to_dict(self, show_identifiers: bool = False) -> dict[str, Any]:
        """JSON-safe form; identifying fields only when ``show_identifiers``."""
        out: dict[str, Any] = {"path": self.path, "modality": self.modality, "ok": self.ok}
        if self.error:
            out["error"] = self.error
        out.update(self.details)
        if self.unused:
            out["unused"] = self.unused
        out["warnings"] = list(self.warnings)
        if show_identifiers:
            out["identifiers"] = self.identifiers.reveal()
        return out
