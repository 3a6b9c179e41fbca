"""``fuselens inspect``: what a file or case folder holds, or why it cannot be read."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from fuselens.app.ingest import FileReport, load_case, read_file
from fuselens.app.ingest.echo_frames import frame_files

LABELS = (
    ("shape", "shape"),
    ("leads", "leads"),
    ("sampling_rate", "sampling rate (Hz)"),
    ("samples", "samples"),
    ("duration_s", "duration (s)"),
    ("frames", "frames"),
    ("view", "view"),
    ("frame_rate", "frame rate (frames/s)"),
    ("frame_rate_source", "frame rate from"),
    ("view_position", "view position"),
    ("pixel_spacing", "pixel spacing (mm)"),
    ("photometric_interpretation", "photometric interpretation"),
    ("transfer_syntax", "transfer syntax"),
    ("sop_class", "SOP class"),
    ("multiplex_group", "waveform group"),
    ("items", "lab items"),
    ("flags", "flags"),
    ("history", "history"),
    ("medications", "medications"),
    ("demographics", "demographics"),
)


def _show(value: Any) -> str:
    if isinstance(value, list) and value and all(isinstance(v, int | float) for v in value):
        return " x ".join(f"{v:g}" for v in value)
    if isinstance(value, list):
        return ", ".join(map(str, value))
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, bool):
        return "yes" if value else "no"
    return f"{value:g}" if isinstance(value, float) else str(value)


def _text_lines(report: FileReport, show_identifiers: bool) -> list[str]:
    if not report.ok:
        return [f"{report.path}: ERROR {report.error}"]
    fmt = report.details.get("format", "")
    lines = [f"{report.path}: {report.modality}" + (f" ({fmt})" if fmt else "")]
    for key, label in LABELS:
        if key in report.details:
            lines.append(f"  {label}: {_show(report.details[key])}")
    lines.extend(f"  warning: {w}" for w in report.warnings)
    if show_identifiers:
        for key, value in report.identifiers.reveal().items():
            lines.append(f"  identifier {key}: {value}")
    return lines


def _is_case_folder(path: Path) -> bool:
    return path.is_dir() and not frame_files(path)


def collect(paths: Sequence[str]) -> list[tuple[str | None, FileReport]]:
    """``(case_id or None, report)`` for every file given or found in a case folder."""
    out: list[tuple[str | None, FileReport]] = []
    for raw in paths:
        path = Path(raw)
        if _is_case_folder(path):
            case, reports = load_case(path)
            out.extend((case.case_id, r) for r in reports)
            if not reports:
                error = f"{path.name}: unknown: case folder holds no input files"
                out.append((case.case_id, FileReport(str(path), "unknown", False, error)))
        else:
            out.append((None, read_file(path)[2]))
    return out


def run_inspect(paths: Sequence[str], as_json: bool, show_identifiers: bool = False) -> int:
    """Print what each path holds; 1 when any file could not be read, else 0."""
    results = collect(paths)
    if as_json:
        objects = []
        for case_id, report in results:
            obj = report.to_dict(show_identifiers=show_identifiers)
            if case_id is not None:
                obj["case"] = case_id
            objects.append(obj)
        print(json.dumps(objects, indent=2, default=str))
    else:
        current_case: str | None = None
        for case_id, report in results:
            if case_id is not None and case_id != current_case:
                print(f"case {case_id}:")
            current_case = case_id
            for line in _text_lines(report, show_identifiers):
                print(("  " if case_id is not None else "") + line)
    failed = [r for _, r in results if not r.ok]
    if failed:
        print(f"{len(failed)} of {len(results)} inputs could not be read", file=sys.stderr)
        return 1
    return 0
