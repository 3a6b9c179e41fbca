"""Unpacking an uploaded case zip within the limits: sizes and depth checked before, and while,
anything is written."""

from __future__ import annotations

import zipfile
import zlib
from pathlib import Path, PurePosixPath
from typing import IO

from fuselens.app.ingest import limits
from fuselens.app.ingest.detect import name_hint
from fuselens.app.ingest.errors import IngestError, describe
from fuselens.app.ingest.report import FileReport

CHUNK = 1 << 20
TEXT_SUFFIXES = {".csv", ".tsv", ".txt", ".json", ".hea"}
# what zipfile raises on damaged or unsupported archives (encrypted: RuntimeError)
UNREADABLE = (zipfile.BadZipFile, EOFError, zlib.error, NotImplementedError, RuntimeError, OSError)


def _safe_member(name: str) -> PurePosixPath | None:
    """A member's relative path, or None when it is a folder, hidden, or would escape."""
    path = PurePosixPath(name.replace("\\", "/"))
    if name.endswith("/") or path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    if path.parts[0] == "__MACOSX" or path.name.startswith("."):
        return None
    return path


def _check_listing(archive: Path, infos: list[zipfile.ZipInfo]) -> None:
    """Refuse the whole zip from its directory: entry count, nesting and declared total size."""
    limits.check(archive, "unknown", "zip_members", len(infos), "the number of zip entries")
    depth = max((len(PurePosixPath(i.filename.replace("\\", "/")).parts) for i in infos), default=0)
    limits.check(archive, "unknown", "zip_depth", depth, "folder nesting in the zip")
    total = sum(i.file_size for i in infos)
    limits.check_bytes(archive, "unknown", "zip_total_mb", total, "the declared unpacked size")


def _check_member(info: zipfile.ZipInfo, out: Path) -> None:
    """Refuse a member from its declared size: any file, and text files read whole."""
    modality, size = name_hint(out), info.file_size
    limits.check_bytes(info.filename, modality, "file_mb", size, "the declared size")
    if out.suffix.lower() in TEXT_SUFFIXES:
        limits.check_bytes(info.filename, modality, "text_mb", size, "the declared text size")


def _copy(src: IO[bytes], out: Path, archive: Path, member: str, budget: int) -> int:
    """Stream ``src`` to ``out``, counting bytes, since a zip's sizes can lie; over a limit,
    ``out`` is deleted and :class:`IngestError` names the member or, for the total, the zip."""
    file_cap = limits.current().file_mb * limits.MB
    written = 0
    try:
        with out.open("wb") as dst:
            while chunk := src.read(CHUNK):
                written += len(chunk)
                if written > file_cap:
                    limits.check_bytes(member, name_hint(out), "file_mb", written, "unpacked size")
                if written > budget:
                    total = "the unpacked size of the zip"
                    limits.check_bytes(archive, "unknown", "zip_total_mb", written, total)
                dst.write(chunk)
    except BaseException:
        out.unlink(missing_ok=True)
        raise
    return written


def extract_zip(archive: str | Path, target: str | Path) -> list[FileReport]:
    """Unpack ``archive`` into ``target``; a report for each member skipped or refused.

    Raises :class:`IngestError` when the zip as a whole is unreadable or over a limit (what
    was unpacked before the total ran over stays in ``target``).
    """
    archive, target = Path(archive), Path(target)
    try:
        with zipfile.ZipFile(archive) as zf:
            return _extract(archive, zf, target)
    except UNREADABLE as exc:
        raise IngestError(archive, "unknown", f"not a readable zip: {describe(exc)}") from exc


def _extract(archive: Path, zf: zipfile.ZipFile, target: Path) -> list[FileReport]:
    infos = zf.infolist()
    _check_listing(archive, infos)
    budget = int(limits.current().zip_total_mb * limits.MB)
    reports: list[FileReport] = []
    for info in infos:
        rel = _safe_member(info.filename)
        if rel is None:
            if not info.is_dir() and not PurePosixPath(info.filename).name.startswith("."):
                problem = f"{info.filename}: unsafe path in the zip: skipped"
                reports.append(FileReport(info.filename, "unknown", False, problem))
            continue
        out = target.joinpath(*rel.parts)
        try:
            _check_member(info, out)
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src:
                budget -= _copy(src, out, archive, info.filename, budget)
        except IngestError as exc:
            if exc.path == str(archive):
                raise
            reports.append(FileReport(info.filename, exc.modality, False, str(exc)))
    return reports


def case_root(folder: str | Path) -> Path:
    """The folder to read: inside single subfolders (a zip of a case folder holds one)."""
    folder = Path(folder)
    for _ in range(limits.current().zip_depth + 1):
        entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
        if len(entries) != 1 or not entries[0].is_dir():
            break
        folder = entries[0]
    return folder
