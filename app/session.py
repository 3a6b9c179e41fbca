"""What one workstation session holds: the model, the open case and explained results.

Everything here runs without a browser: the Gradio callbacks only call these functions.
"""

from __future__ import annotations

import hashlib
import shutil
import tempfile
import time
import zipfile
from collections import OrderedDict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import pandas as pd
import torch

from fuselens.app.demo_cases import DemoCase, materialise
from fuselens.app.ingest import FileReport, load_case
from fuselens.explain.bundle import ExplanationBundle
from fuselens.explain.methods import DEFAULT_METHOD
from fuselens.explain.pipeline import explain_stages
from fuselens.model_zoo.case import PatientCase

MAX_ZIP_BYTES = 2 * 1024**3
MAX_ZIP_MEMBERS = 5000
DEVICES = ("auto", "cpu", "cuda")
STATUS_COLUMNS = ["File", "Read as", "Status", "Details"]
DETAIL_KEYS = (
    ("view", "view {}"),
    ("frames", "{} frames"),
    ("frame_rate", "{:g} frames/s"),
    ("leads", "{} leads"),
    ("sampling_rate", "{:g} Hz"),
    ("duration_s", "{:g} s"),
    ("view_position", "{} view"),
    ("shape", "{}"),
    ("items", "{} lab items"),
    ("format", "{}"),
)


@dataclass
class LoadedModel:
    """A contract model ready for the workstation, with what the header shows about it."""

    model: Any
    name: str
    device: str


@dataclass
class LoadedCase:
    """An opened case: the patient, a report per input file, and where it came from."""

    case: PatientCase
    reports: list[FileReport]
    key: str
    title: str
    story: str = ""
    folder: Path | None = None
    extras: dict[str, Any] = field(default_factory=dict)


def resolve_device(choice: str) -> str:
    """``auto`` -> ``cuda`` when a GPU is present, else ``cpu``; ``cuda`` must be present."""
    if choice not in DEVICES:
        raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {choice!r}")
    if choice == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if choice == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device is available")
    return choice


def model_display_name(name: str) -> str:
    """How the header names the model: the demo label or the checkpoint folder's name."""
    from fuselens.model_zoo.loading import is_factory_spec

    if name == "demo":
        return "FuseLens demo model (synthetic data)"
    if is_factory_spec(name) and not Path(name).exists():
        return f"model {name}"
    return f"checkpoint {Path(name).name}"


def load_workstation_model(name: str = "demo", device: str = "auto") -> LoadedModel:
    """Load ``name`` (``"demo"``, a checkpoint folder or ``MODULE:FACTORY``) on the resolved
    device."""
    from fuselens.model_zoo.loading import load_explainable

    resolved = resolve_device(device)
    model = load_explainable(name, device=resolved)
    return LoadedModel(model, model_display_name(str(name)), resolved)


def _digest_files(paths: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for path in sorted(paths, key=lambda p: p.as_posix()):
        h.update(path.name.encode("utf-8", "surrogateescape"))
        with path.open("rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:12]


def open_demo(demo: DemoCase, cache_dir: str | Path | None = None) -> LoadedCase:
    """Write (on first use) and read one demo case; synthetic cases get their planted truth."""
    folder = materialise(demo, cache_dir)
    case, reports = load_case(folder)
    if (folder / "truth.json").is_file():
        from fuselens.model_zoo.synth.truth import load_truth

        case.truth = load_truth(folder)
    case.case_id = f"demo-{demo.key}"
    return LoadedCase(
        case, reports, key=case.case_id, title=demo.title, story=demo.story, folder=folder
    )


def _safe_member(name: str) -> PurePosixPath | None:
    """A zip member's relative path, or None when it is a folder or would escape the target."""
    path = PurePosixPath(name.replace("\\", "/"))
    if name.endswith("/") or path.is_absolute() or ".." in path.parts or not path.parts:
        return None
    if path.parts[0] == "__MACOSX" or path.name.startswith("."):
        return None
    return path


def extract_zip(archive: Path, target: Path) -> list[str]:
    """Extract ``archive`` into ``target`` safely; returns problems (skipped members)."""
    problems: list[str] = []
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        if len(infos) > MAX_ZIP_MEMBERS:
            raise ValueError(f"{archive.name}: more than {MAX_ZIP_MEMBERS} files")
        if sum(i.file_size for i in infos) > MAX_ZIP_BYTES:
            raise ValueError(f"{archive.name}: more than {MAX_ZIP_BYTES // 1024**3} GiB unpacked")
        for info in infos:
            rel = _safe_member(info.filename)
            if rel is None:
                if not info.is_dir() and not PurePosixPath(info.filename).name.startswith("."):
                    problems.append(f"{info.filename}: unsafe path in the zip: skipped")
                continue
            out = target.joinpath(*rel.parts)
            out.parent.mkdir(parents=True, exist_ok=True)
            with zf.open(info) as src, out.open("wb") as dst:
                shutil.copyfileobj(src, dst)
    return problems


def _single_subfolder(folder: Path) -> Path:
    """A zip of a case folder holds one folder: read inside it."""
    entries = [p for p in folder.iterdir() if not p.name.startswith(".")]
    if len(entries) == 1 and entries[0].is_dir():
        return _single_subfolder(entries[0])
    return folder


def open_uploads(paths: Sequence[str | Path], work_dir: str | Path | None = None) -> LoadedCase:
    """Read uploaded files (any mix of single files and zips of a case folder) as one case.

    The case is named by a digest of the uploaded bytes, never by file or patient names.
    """
    files = [Path(p) for p in paths]
    if not files:
        raise ValueError("no files uploaded")
    digest = _digest_files(files)
    root = Path(tempfile.mkdtemp(prefix="fuselens-upload-", dir=work_dir))
    folder = root / "case"
    folder.mkdir()
    zip_reports: list[FileReport] = []
    for path in files:
        if path.suffix.lower() == ".zip":
            try:
                for problem in extract_zip(path, folder):
                    zip_reports.append(FileReport(path.name, "unknown", False, problem))
            except (zipfile.BadZipFile, ValueError, OSError) as exc:
                zip_reports.append(
                    FileReport(
                        path.name, "unknown", False, f"{path.name}: not a readable zip: {exc}"
                    )
                )
        else:
            shutil.copyfile(path, folder / path.name)
    case, reports = load_case(_single_subfolder(folder))
    case.case_id = f"upload-{digest}"
    reports = zip_reports + reports
    return LoadedCase(case, reports, key=case.case_id, title="Uploaded case", folder=folder)


def describe_report(report: FileReport) -> str:
    """One line saying what a file was read as (or why not), without identifying fields."""
    if not report.ok:
        return report.error
    parts = []
    for key, template in DETAIL_KEYS:
        value = report.details.get(key)
        if value is None or value == "":
            continue
        if key in ("leads", "items"):
            value = len(value)
        if key == "shape":
            value = " x ".join(str(v) for v in value)
        parts.append(template.format(value))
    parts.extend(f"warning: {w}" for w in report.warnings)
    return "; ".join(parts)


def status_table(reports: Sequence[FileReport]) -> pd.DataFrame:
    """The per-file status table: file name, modality, read or error, and what was found."""
    rows = [
        [
            Path(r.path).name,
            r.modality.upper() if r.modality in ("ecg", "cxr") else r.modality,
            "read" if r.ok else "error",
            describe_report(r),
        ]
        for r in reports
    ]
    return pd.DataFrame(rows, columns=STATUS_COLUMNS)


@dataclass
class ExplanationCache:
    """Finished explanation bundles by (case key, task, class), least recently used dropped."""

    capacity: int = 32
    _items: OrderedDict[tuple[str, ...], Any] = field(default_factory=OrderedDict)

    def get(self, key: tuple[str, ...]) -> Any | None:
        if key not in self._items:
            return None
        self._items.move_to_end(key)
        return self._items[key]

    def put(self, key: tuple[str, ...], bundle: Any) -> None:
        self._items[key] = bundle
        self._items.move_to_end(key)
        while len(self._items) > self.capacity:
            self._items.popitem(last=False)

    def holds(self, bundle: Any) -> bool:
        """Whether this very bundle is cached (a finished explanation)."""
        return any(b is bundle for b in self._items.values())

    def __contains__(self, key: tuple[str, ...]) -> bool:
        return key in self._items

    def __len__(self) -> int:
        return len(self._items)


@dataclass
class Current:
    """One browser session's open case and its latest (possibly unfinished) bundle."""

    loaded: LoadedCase
    bundle: ExplanationBundle | None = None
    slots: list[str] = field(default_factory=list)


class Workstation:
    """The model, demo catalogue, explanation cache and media folder shared by sessions."""

    def __init__(
        self,
        loaded_model: LoadedModel,
        catalogue: list[DemoCase],
        cases_dir: str | Path | None = None,
        media_dir: str | Path | None = None,
    ):
        self.model = loaded_model
        self.catalogue = {d.key: d for d in catalogue}
        self.cases_dir = cases_dir
        self.media_dir = Path(media_dir or tempfile.mkdtemp(prefix="fuselens-media-"))
        self.media_dir.mkdir(parents=True, exist_ok=True)
        self.cache = ExplanationCache()

    def open_demo(self, key: str) -> LoadedCase:
        """Open the demo case ``key`` (written under ``cases_dir`` on first use)."""
        return open_demo(self.catalogue[key], self.cases_dir)

    def open_uploads(self, paths: list[str]) -> LoadedCase:
        """Open uploaded files (copied under the media folder)."""
        return open_uploads(paths, self.media_dir)

    def settings(
        self, echo_opacity: list[float], cxr_opacity: float, method: str = DEFAULT_METHOD
    ) -> dict[str, Any]:
        """The overlay settings, map method and media folder
        :func:`fuselens.app.views.stage_panels` takes."""
        return {
            "echo_opacity": list(echo_opacity),
            "cxr_opacity": float(cxr_opacity),
            "method": method,
            "media_dir": self.media_dir,
        }

    def explain(
        self, loaded: LoadedCase, task: str, target: str, method: str = DEFAULT_METHOD
    ) -> Iterator[tuple[str, ExplanationBundle, bool]]:
        """``(stage, bundle, from_cache)``: the cached bundle at once, or each stage as done."""
        key = (loaded.key, task, target, method)
        cached = self.cache.get(key)
        if cached is not None:
            yield "cached", cached, True
            return
        bundle = None
        m = self.model
        for stage, bundle in explain_stages(
            m.model, loaded.case, task, target, methods=(method,), model_name=m.name
        ):
            yield stage, bundle, False
        if bundle is not None:
            self.cache.put(key, bundle)

    def is_finished(self, loaded: LoadedCase, bundle: ExplanationBundle) -> bool:
        """Whether ``bundle`` is the finished (cached) explanation of ``loaded``."""
        return bundle.case_id == loaded.case.case_id and self.cache.holds(bundle)

    def warm_up(self) -> float:
        """Run the model once on the first demo case so the first real request is quick."""
        t0 = time.perf_counter()
        synthetic = [d for d in self.catalogue.values() if d.seed is not None]
        if synthetic:
            from fuselens.model_zoo.predict import predict_case

            predict_case(self.model.model, self.open_demo(synthetic[0].key).case)
        return time.perf_counter() - t0
