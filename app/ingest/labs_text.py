"""Labs from plain text: ``NT-proBNP: 1234 pg/mL`` lines or the TGMM sentence form.

A trailing flag such as ``(high)`` is accepted and dropped: flags are always derived again
from the reference ranges."""

from __future__ import annotations

import re
from pathlib import Path

from fuselens.app.ingest.errors import IngestError, guarded
from fuselens.app.ingest.labs_items import FREE_TEXT, RawLab, build_labs
from fuselens.app.ingest.report import Reading
from fuselens.app.ingest.text import encoding_warnings, read_text
from fuselens.model_zoo.case import Labs

_NUMBER = r"[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?"
SENTENCE = re.compile(
    rf"^(?P<name>.+?)\s+of the patient is\s+(?P<value>{_NUMBER})\s*(?P<unit>.*)$", re.I
)
COLON = re.compile(rf"^(?P<name>[^:]+):\s*(?P<value>{_NUMBER})\s*(?P<unit>.*)$")
FLAG = re.compile(r"\s*\((?:high|low|normal|h|l|n)\)$", re.I)
FREE_LINE = re.compile(r"^(?P<key>history|medications)\s*:\s*(?P<text>.*)$", re.I)


def parse_line(line: str) -> RawLab | tuple[str, str] | None:
    """A lab, a ``(history|medications, text)`` pair, or None when the line is not understood."""
    free = FREE_LINE.match(line)
    if free:
        return free.group("key").lower(), free.group("text").strip()
    match = SENTENCE.match(line) or COLON.match(line)
    if not match:
        return None
    unit = match.group("unit").strip()
    unit = unit[:-1].rstrip() if unit.endswith(".") else unit
    unit = FLAG.sub("", unit)
    return RawLab(name=match.group("name").strip(), value=match.group("value"), unit=unit)


@guarded("labs")
def read_labs_text(path: str | Path) -> Reading[Labs]:
    """Every non-blank line must be a lab, a History line or a Medications line."""
    path = Path(path)
    text, encoding = read_text(path, "labs")
    if not text.strip():
        raise IngestError(path, "labs", "empty file")
    raws: list[RawLab] = []
    free: dict[str, list[str]] = {key: [] for key in FREE_TEXT}
    for line_no, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        parsed = parse_line(line.strip())
        if parsed is None:
            raise IngestError(
                path,
                "labs",
                f"line {line_no} not understood: {line.strip()[:60]!r} (expected "
                "'<name>: <value> <unit>' or '<name> of the patient is <value> <unit>')",
            )
        if isinstance(parsed, tuple):
            free[parsed[0]].append(parsed[1])
        else:
            parsed.where = f"line {line_no}: "
            raws.append(parsed)
    reading = build_labs(path, raws, " ".join(free["history"]), " ".join(free["medications"]))
    reading.details["format"] = "text"
    reading.warnings.extend(encoding_warnings(encoding))
    return reading
