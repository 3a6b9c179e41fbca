"""Labs from JSON: ``{"items": [{name, value, unit, low, high}], "history", "medications"}``."""

from __future__ import annotations

import json
from pathlib import Path

from fuselens.app.ingest.errors import IngestError, guarded
from fuselens.app.ingest.labs_items import RawLab, build_labs
from fuselens.app.ingest.report import Reading
from fuselens.app.ingest.text import encoding_warnings, read_text
from fuselens.model_zoo.case import Labs


@guarded("labs")
def read_labs_json(path: str | Path) -> Reading[Labs]:
    """The labs object (or a bare list of items)."""
    path = Path(path)
    text, encoding = read_text(path, "labs")
    if not text.strip():
        raise IngestError(path, "labs", "empty file")
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise IngestError(path, "labs", f"not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    if isinstance(data, list):
        data = {"items": data}
    if not isinstance(data, dict) or not isinstance(data.get("items", []), list):
        raise IngestError(path, "labs", 'expected {"items": [...], "history": ..., ...}')
    raws = []
    for n, item in enumerate(data.get("items", []), start=1):
        if not isinstance(item, dict) or "name" not in item or "value" not in item:
            raise IngestError(path, "labs", f"item {n}: needs at least 'name' and 'value'")
        raws.append(
            RawLab(
                name=str(item["name"]),
                value=item["value"],
                unit=str(item.get("unit") or ""),
                low=item.get("low"),
                high=item.get("high"),
                where=f"item {n}: ",
            )
        )
    texts = {key: data.get(key) or "" for key in ("history", "medications")}
    for key, value in texts.items():
        if not isinstance(value, str):
            raise IngestError(path, "labs", f"'{key}' must be text")
    reading = build_labs(path, raws, texts["history"], texts["medications"])
    reading.details["format"] = "JSON"
    reading.warnings.extend(encoding_warnings(encoding))
    return reading
