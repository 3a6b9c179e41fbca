"""Downloads of an explained case: the self-contained HTML report and the bundle as a zip,
and what ``fuselens explain`` writes (the bundle and the report in a folder).

Exports are checked for identifying DICOM fields before they are offered: a file that
contains one is deleted and the export refused. ``fuselens explain`` names a case after its
folder, so a folder named after the patient gets a pseudonym instead (:func:`safe_case_id`),
and the same check runs before anything reaches the output folder.
"""

from __future__ import annotations

import re
import secrets
import shutil
import tempfile
import zipfile
from collections.abc import Iterable
from pathlib import Path

from fuselens.app.identifier_text import identifier_leaks
from fuselens.explain.bundle import BUNDLE_JSON, BUNDLE_NPZ, ExplanationBundle
from fuselens.explain.html_report import render_html, write_html
from fuselens.model_zoo.case import Identifiers, PatientCase


class IdentifierLeak(RuntimeError):
    """An export would contain an identifying field of the patient."""


def _safe_name(case_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", case_id)[:60] or "case"


def _check(path: Path, texts: Iterable[str], identifiers: Identifiers) -> None:
    leaks = identifier_leaks(texts, identifiers)
    if leaks:
        path.unlink(missing_ok=True)
        raise IdentifierLeak(f"{path.name} would contain {', '.join(leaks)}: not exported")


def safe_case_id(case: PatientCase) -> str:
    """The case's id, or a random ``case-<hex>`` pseudonym when it holds an identifying value
    (a folder named after the patient ID)."""
    if identifier_leaks([case.case_id], case.identifiers):
        return f"case-{secrets.token_hex(4)}"
    return case.case_id


def write_explanation(
    case: PatientCase,
    bundle: ExplanationBundle,
    out_dir: str | Path,
    allow_identifiers: bool = False,
) -> tuple[Path, Path]:
    """``bundle.json``, ``arrays.npz`` and ``report.html`` in ``out_dir``: ``(folder, html)``.

    Unless ``allow_identifiers``, :class:`IdentifierLeak` names the identifying fields the
    files would contain, and nothing is written.
    """
    out = Path(out_dir)
    texts = {"report.html": render_html(bundle, case)}
    with tempfile.TemporaryDirectory(prefix="fuselens-explain-") as tmp:
        saved = bundle.save(tmp)
        texts[BUNDLE_JSON] = (saved / BUNDLE_JSON).read_text(encoding="utf-8")
        leaks = {name: identifier_leaks([text], case.identifiers) for name, text in texts.items()}
        found = [f"{name} would contain {', '.join(got)}" for name, got in leaks.items() if got]
        if found and not allow_identifiers:
            raise IdentifierLeak(f"{'; '.join(found)}: nothing written")
        out.mkdir(parents=True, exist_ok=True)
        for name in (BUNDLE_JSON, BUNDLE_NPZ):
            shutil.move(saved / name, out / name)
    path = out / "report.html"
    path.write_text(texts["report.html"], encoding="utf-8")
    return out, path


def export_html(case: PatientCase, bundle: ExplanationBundle, out_dir: str | Path) -> Path:
    """The self-contained HTML report under a fresh folder in ``out_dir``."""
    folder = Path(tempfile.mkdtemp(prefix="export-", dir=out_dir))
    path = write_html(bundle, case, folder / f"fuselens-{_safe_name(bundle.case_id)}.html")
    _check(path, [path.read_text(encoding="utf-8")], case.identifiers)
    return path


def export_bundle_zip(case: PatientCase, bundle: ExplanationBundle, out_dir: str | Path) -> Path:
    """``bundle.json`` + ``arrays.npz`` zipped, under a fresh folder in ``out_dir``."""
    folder = Path(tempfile.mkdtemp(prefix="export-", dir=out_dir))
    saved = bundle.save(folder / "bundle")
    path = folder / f"fuselens-{_safe_name(bundle.case_id)}-bundle.zip"
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for file in sorted(saved.iterdir()):
            zf.write(file, arcname=file.name)
    texts = [(saved / BUNDLE_JSON).read_text(encoding="utf-8")]
    shutil.rmtree(saved)
    _check(path, texts, case.identifiers)
    return path


def export_all(
    case: PatientCase, bundle: ExplanationBundle, out_dir: str | Path
) -> tuple[Path, Path]:
    """``(html, zip)`` downloads of one explained case."""
    return export_html(case, bundle, out_dir), export_bundle_zip(case, bundle, out_dir)
